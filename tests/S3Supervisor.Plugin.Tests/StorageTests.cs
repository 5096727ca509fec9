using Amazon.Runtime;
using S3Supervisor.Common;
using S3Supervisor.Plugin.Storage;

namespace S3Supervisor.Plugin.Tests;

public sealed class VolumeHandleTests
{
    [Theory]
    [InlineData("pvc-1@https:s3.example.com")]
    [InlineData("pvc-1@http:10.0.0.5:7480;eu-1")]
    [InlineData("shared:pvc-1@https:s3.example.com:9000")]
    [InlineData("shared:pvc-1@http:[::1]:7480;us-east-1")]
    public void TryParse_CanonicalId_RoundTrips(string id)
    {
        var handle = VolumeHandle.TryParse(id);
        Assert.NotNull(handle);
        Assert.Equal(id, handle.Format());
        Validate.VolumeId(id);
    }

    [Fact]
    public void TryParse_PrefixVolume_SplitsParts()
    {
        var handle = VolumeHandle.TryParse("shared:pvc-1@http:10.0.0.5:7480;eu-1")!;
        Assert.Equal("shared", handle.Bucket);
        Assert.Equal("pvc-1", handle.Prefix);
        Assert.Equal(new Uri("http://10.0.0.5:7480/"), handle.Endpoint);
        Assert.Equal("eu-1", handle.Region);
        Assert.False(handle.IsBucketPerVolume);
    }

    [Theory]
    [InlineData("")]
    [InlineData("static-volume")]
    [InlineData("bucket/prefix")]
    [InlineData("@https:s3.example.com")]
    [InlineData("Bad_Bucket@https:s3.example.com")]
    [InlineData("bucket:@https:s3.example.com")]
    [InlineData("bucket@ftp:s3.example.com")]
    [InlineData("bucket@https:")]
    [InlineData("bucket@https:s3.example.com;")]
    [InlineData("bucket@https:s3.example.com:443")]
    [InlineData("bucket@https:user:pw@s3.example.com")]
    [InlineData("bucket:a/b@https:s3.example.com")]
    [InlineData("bucket:..@https:s3.example.com")]
    public void TryParse_NotOurs_Null(string id) => Assert.Null(VolumeHandle.TryParse(id));
}

public sealed class ResourceNamesTests
{
    [Fact]
    public void Bucket_PvcName_Unchanged() =>
        Assert.Equal("pvc-0a1b2c3d-0000-4000-8000-000000000001", ResourceNames.Bucket("", "pvc-0a1b2c3d-0000-4000-8000-000000000001"));

    [Theory]
    [InlineData("", "PVC-ABC")]
    [InlineData("", "a")]
    [InlineData("", "my volume/with..odd__chars!")]
    [InlineData("k8s-", "pvc-0a1b2c3d-0000-4000-8000-000000000001-and-a-much-longer-tail")]
    [InlineData("", "192.168.1.1")]
    [InlineData("", "xn--bucket")]
    [InlineData("", "vol-s3alias")]
    [InlineData("", "---")]
    public void Bucket_AnyName_ValidS3BucketName(string prefix, string name) => VolumeSourceRules.Bucket(ResourceNames.Bucket(prefix, name));

    [Fact]
    public void Bucket_NamesDifferingInCase_DifferentBuckets() =>
        Assert.NotEqual(ResourceNames.Bucket("", "PVC-abc"), ResourceNames.Bucket("", "pvc-abc"));

    [Fact]
    public void Bucket_LongNamesWithSameStart_DifferentBuckets()
    {
        var stem = new string('a', 70);
        Assert.NotEqual(ResourceNames.Bucket("", stem + "1"), ResourceNames.Bucket("", stem + "2"));
    }

    [Fact]
    public void Prefix_OddName_SafeAndStable()
    {
        var prefix = ResourceNames.Prefix("My Volume/Name");
        Assert.Equal(prefix, VolumeSourceRules.Prefix(prefix));
        Assert.DoesNotContain('/', prefix);
        Assert.Equal(prefix, ResourceNames.Prefix("My Volume/Name"));
    }
}

public sealed class VolumeMarkerTests
{
    [Fact]
    public void FromText_ToText_RoundTrips()
    {
        var marker = VolumeMarker.For("pvc-1", 1234);
        Assert.Equal(marker, VolumeMarker.FromText(marker.ToText()));
        Assert.Equal(marker, VolumeMarker.FromTags(marker.ToTags()));
        Assert.True(marker.IsFor("pvc-1"));
        Assert.False(marker.IsFor("pvc-2"));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("s3supervisor.io/capacity-bytes=1")]
    [InlineData("s3supervisor.io/volume-name-sha256=short\ns3supervisor.io/capacity-bytes=1")]
    public void FromText_Incomplete_Null(string? text) => Assert.Null(VolumeMarker.FromText(text));
}

public sealed class S3ObjectStoreFactoryTests
{
    [Fact]
    public void CreateConfig_Endpoint_PathStyleWithSigningRegion()
    {
        var config = S3ObjectStoreFactory.CreateConfig(new S3Endpoint(new Uri("http://127.0.0.1:7480/"), "", ForcePathStyle: true));
        Assert.True(config.ForcePathStyle);
        Assert.Equal("http://127.0.0.1:7480/", config.ServiceURL);
        Assert.Equal(S3Endpoint.DefaultRegion, config.AuthenticationRegion);
        Assert.Equal(RequestChecksumCalculation.WHEN_REQUIRED, config.RequestChecksumCalculation);
        Assert.Null(config.HttpClientFactory);
    }

    [Fact]
    public void CreateConfig_InsecureSkipTlsVerify_CustomHttpClient()
    {
        var config = S3ObjectStoreFactory.CreateConfig(new S3Endpoint(new Uri("https://s3.local/"), "eu-1", InsecureSkipTlsVerify: true));
        Assert.Equal("eu-1", config.AuthenticationRegion);
        Assert.NotNull(config.HttpClientFactory);
    }

    [Fact]
    public void CreateCredentials_SessionToken_SessionCredentials()
    {
        Assert.IsType<SessionAWSCredentials>(S3ObjectStoreFactory.CreateCredentials(new S3Credentials("a", "b", "t")));
        Assert.IsType<BasicAWSCredentials>(S3ObjectStoreFactory.CreateCredentials(new S3Credentials("a", "b")));
    }

    [Fact]
    public void S3Credentials_ToString_HidesValues()
    {
        var text = new S3Credentials("AKIAEXAMPLE", "topsecret", "token").ToString();
        Assert.DoesNotContain("AKIAEXAMPLE", text);
        Assert.DoesNotContain("topsecret", text);
    }
}

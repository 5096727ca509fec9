using S3Supervisor.Api.V1;
using S3Supervisor.Common;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Tests.Mounts;

public sealed class ParsingTests
{
    [Fact]
    public void MountInfo_FuseLineWithEscapes_ParsesEveryField()
    {
        var line = "812 29 0:77 /sub\\040dir /var/lib/kubelet/pods/a\\040b/mount ro,nosuid,nodev,relatime shared:455 master:1 - fuse.s3fs s3fs rw,user_id=0,group_id=0,allow_other";
        var entry = MountInfo.ParseLine(line)!;
        Assert.Equal(812, entry.MountId);
        Assert.Equal("0:77", entry.Device);
        Assert.Equal("/sub dir", entry.Root);
        Assert.Equal("/var/lib/kubelet/pods/a b/mount", entry.MountPoint);
        Assert.True(entry.ReadOnly);
        Assert.True(entry.IsFuse);
        Assert.Equal(["shared:455", "master:1"], entry.OptionalFields);
        Assert.Equal("s3fs", entry.Source);
    }

    [Fact]
    public void MountInfo_At_ReturnsTopmostMount()
    {
        var table = MountInfo.Parse("""
            1 0 8:1 / / rw - ext4 /dev/sda1 rw
            2 1 0:50 / /mnt rw - fuse.s3fs s3fs rw
            3 1 0:51 / /mnt rw - fuse.s3fs s3fs rw
            """);
        Assert.Equal("0:51", MountInfo.At(table, "/mnt")!.Device);
        Assert.Null(MountInfo.At(table, "/other"));
    }

    [Fact]
    public void S3fsArguments_Defaults_PathStyleAllowOtherPasswdUrlRegion()
    {
        var source = new VolumeSource { Bucket = "data", Prefix = "a/b", Endpoint = "http://127.0.0.1:7480/", Region = "us-east-1", Options = new MountOptions() };
        var args = S3fsArguments.Build(source, "/k/globalmount", "/run/s/v/passwd", null);
        Assert.Equal("data:/a/b", args[0]);
        Assert.Equal("/k/globalmount", args[1]);
        Assert.Equal("-f", args[2]);
        Assert.Equal("-o", args[3]);
        Assert.Equal("url=http://127.0.0.1:7480,passwd_file=/run/s/v/passwd,endpoint=us-east-1,use_path_request_style,allow_other", args[4]);
    }

    [Fact]
    public void S3fsArguments_TypedOptions_MapToS3fsNames()
    {
        var options = VolumeContext.ParseOptions("uid=1000,gid=2000,umask=027,allow_other=false,use_path_request_style=false,storage_class=STANDARD_IA,sse=s3,ro,retries=3,public_bucket");
        var source = new VolumeSource { Bucket = "data", Endpoint = "https://s3.example", Options = options };
        var o = S3fsArguments.Build(source, "/m", "/p", null)[4].Split(',');
        Assert.Contains("uid=1000", o);
        Assert.Contains("gid=2000", o);
        Assert.Contains("umask=027", o);
        Assert.Contains("storage_class=standard_ia", o);
        Assert.Contains("use_sse=1", o);
        Assert.Contains("ro", o);
        Assert.Contains("retries=3", o);
        Assert.Contains("public_bucket=1", o);
        Assert.DoesNotContain("allow_other", o);
        Assert.DoesNotContain("use_path_request_style", o);
        Assert.DoesNotContain(o, x => x.StartsWith("passwd_file", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("passwd_file=/etc/shadow", "options.passwd_file")]
    [InlineData("url=http://evil", "options.url")]
    [InlineData("uid=-1", "options.uid")]
    [InlineData("umask=999", "options.umask")]
    [InlineData("storage_class=standard", "options.storage_class")]
    [InlineData("allow_other=maybe", "options.allow_other")]
    [InlineData("umask=022=1", "options.umask")]
    [InlineData("use_cache=/tmp", "options.use_cache")]
    public void ParseOptions_Hostile_InvalidArgumentNamingOption(string text, string field)
    {
        var error = Assert.Throws<Grpc.Core.RpcException>(() => VolumeContext.ParseOptions(text));
        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, error.StatusCode);
        Assert.StartsWith(field, error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void VolumeContext_FormatThenParse_RoundTrips()
    {
        var source = new VolumeSource
        {
            Bucket = "data",
            Prefix = "pvc-1",
            Endpoint = "http://127.0.0.1:7480",
            Region = "us-east-1",
            Options = VolumeContext.ParseOptions("uid=1000,ro,stat_cache_expire=5"),
        };
        var parsed = VolumeContext.Parse(VolumeContext.Format(source));
        Assert.Equal(source, parsed);
    }

    [Fact]
    public void VolumeContext_UnknownKey_Rejected()
    {
        var error = Assert.Throws<Grpc.Core.RpcException>(() => VolumeContext.Parse(new Dictionary<string, string> { ["bucket"] = "abc", ["endpoint"] = "http://x", ["bukcet"] = "typo" }));
        Assert.Contains("bukcet", error.Status.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("abc", true)]
    [InlineData("my-bucket.v2", true)]
    [InlineData("ab", false)]
    [InlineData("-abc", false)]
    [InlineData("abc-", false)]
    [InlineData("a..b", false)]
    [InlineData("10.0.0.1", false)]
    [InlineData("xn--abc", false)]
    [InlineData("Abc", false)]
    public void Bucket_S3NamingRules(string bucket, bool valid)
    {
        var ok = true;
        try
        {
            VolumeSourceRules.Bucket(bucket);
        }
        catch (Grpc.Core.RpcException)
        {
            ok = false;
        }
        Assert.Equal(valid, ok);
    }

    [Fact]
    public void Validate_FieldName_FromExpression()
    {
        Assert.Equal("staging_target_path", Validate.FieldName("request.StagingTargetPath"));
    }
}

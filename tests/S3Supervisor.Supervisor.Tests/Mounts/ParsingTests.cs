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

    /// <summary>Every option a volume may set, each with a value other than its default.</summary>
    private const string EveryOption = "uid=1000,gid=2000,umask=027,allow_other,use_path_request_style,stat_cache_expire=60,max_stat_cache_size=5000,"
        + "multipart_size=64,parallel_count=8,multireq_max=16,storage_class=STANDARD_IA,sse=s3,enable_noobj_cache,insecure_skip_tls_verify,"
        + "connect_timeout=10,readwrite_timeout=120,retries=3,public_bucket=false,use_cache,enable_content_md5,ro,dbglevel=info";

    [Fact]
    public void S3fsArguments_EveryOptionSet_FullListPinned()
    {
        var source = new VolumeSource { Bucket = "data", Prefix = "p", Endpoint = "https://s3.example:9000/", Region = "eu-west-1", Options = VolumeContext.ParseOptions(EveryOption) };
        var args = S3fsArguments.Build(source, "/k/globalmount", "/run/s/v/passwd", "/var/cache/s/v");
        Assert.Equal(
            [
                "data:/p", "/k/globalmount", "-f", "-o",
                "url=https://s3.example:9000,passwd_file=/run/s/v/passwd,endpoint=eu-west-1,use_path_request_style,allow_other,uid=1000,gid=2000,umask=027,"
                + "stat_cache_expire=60,max_stat_cache_size=5000,multipart_size=64,parallel_count=8,multireq_max=16,storage_class=standard_ia,use_sse=1,"
                + "enable_noobj_cache,no_check_certificate,ssl_verify_hostname=0,connect_timeout=10,readwrite_timeout=120,retries=3,use_cache=/var/cache/s/v,"
                + "enable_content_md5,ro,dbglevel=info",
            ],
            args);
    }

    [Fact]
    public void S3fsArguments_PublicBucketAndEveryFlagOff_FullListPinned()
    {
        var options = VolumeContext.ParseOptions("allow_other=false,use_path_request_style=false,sse=none,enable_noobj_cache=false,insecure_skip_tls_verify=false,"
            + "public_bucket,use_cache=false,enable_content_md5=false,ro=false");
        var source = new VolumeSource { Bucket = "data", Endpoint = "http://127.0.0.1:7480", Options = options };
        Assert.Equal(["data", "/m", "-f", "-o", "url=http://127.0.0.1:7480,public_bucket=1"], S3fsArguments.Build(source, "/m", "/p", "/c"));
    }

    [Fact]
    public void FormatOptions_EveryOptionSet_WritesThemInTableOrder()
    {
        Assert.Equal(EveryOption, VolumeContext.FormatOptions(VolumeContext.ParseOptions(EveryOption)));
        Assert.Equal("allow_other=false,sse=none,public_bucket", VolumeContext.FormatOptions(VolumeContext.ParseOptions("public_bucket=1,sse=false,allow_other=0")));
    }

    [Fact]
    public void MountOptionTable_EveryProtoField_HasExactlyOneRow()
    {
        // A field added to MountOptions without a row could be set by a typed request but would be
        // neither checked nor given to s3fs: the table must grow with the message.
        var fields = MountOptions.Descriptor.Fields.InFieldNumberOrder().Select(f => f.FieldNumber).ToArray();
        Assert.Equal(fields, MountOptionTable.All.Select(o => o.FieldNumber).Order().ToArray());
        Assert.Equal(MountOptionTable.All.Count, MountOptionTable.All.Select(o => o.Name).Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void ParseOptions_Unknown_ListsEveryAllowedOption()
    {
        var error = Assert.Throws<Grpc.Core.RpcException>(() => VolumeContext.ParseOptions("nonempty"));
        Assert.Equal(
            "options.nonempty: is not an allowed mount option (allowed: uid, gid, umask, allow_other, use_path_request_style, stat_cache_expire, max_stat_cache_size, "
            + "multipart_size, parallel_count, multireq_max, storage_class, sse, enable_noobj_cache, insecure_skip_tls_verify, connect_timeout, readwrite_timeout, "
            + "retries, public_bucket, use_cache, enable_content_md5, ro, dbglevel, memory_limit)",
            error.Status.Detail);
    }

    [Theory]
    [InlineData("multipart_size=4", "options.multipart_size_mb: must be between 5 and 5120")]
    [InlineData("parallel_count=0", "options.parallel_count: must be between 1 and 128")]
    [InlineData("multireq_max=129", "options.multireq_max: must be between 1 and 128")]
    [InlineData("stat_cache_expire=86401", "options.stat_cache_expire_seconds: must be between 0 and 86400")]
    [InlineData("max_stat_cache_size=10000001", "options.max_stat_cache_size: must be between 0 and 10000000")]
    [InlineData("connect_timeout=0", "options.connect_timeout_seconds: must be between 1 and 3600")]
    [InlineData("readwrite_timeout=3601", "options.readwrite_timeout_seconds: must be between 1 and 3600")]
    [InlineData("retries=101", "options.retries: must be between 0 and 100")]
    [InlineData("umask=8", "options.umask: must be an octal number such as 022")]
    [InlineData("storage_class=GLACIER", "options.storage_class: must be one of GLACIER_IR, INTELLIGENT_TIERING, ONEZONE_IA, REDUCED_REDUNDANCY, STANDARD, STANDARD_IA")]
    [InlineData("dbglevel=trace", "options.dbglevel: must be one of crit, err, warn, info, debug")]
    [InlineData("sse=kms", "options.sse: must be s3 or none")]
    [InlineData("uid=", "options.uid: must be a non-negative whole number")]
    [InlineData("umask", "options.umask: needs a value")]
    [InlineData("storage_class=STANDARD:x", "options.storage_class: must not contain ',', '=', ':', '\\', whitespace or control characters")]
    [InlineData("umask=999,umask=022", null)]
    public void ParseOptions_OutOfRule_MessagePinned(string text, string? message)
    {
        if (message is null)
        {
            Assert.Equal("022", VolumeContext.ParseOptions(text).Umask);
            return;
        }
        var error = Assert.Throws<Grpc.Core.RpcException>(() => VolumeContext.ParseOptions(text));
        Assert.Equal(message, error.Status.Detail);
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

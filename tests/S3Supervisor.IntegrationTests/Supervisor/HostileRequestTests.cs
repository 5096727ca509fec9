using Grpc.Core;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;

namespace S3Supervisor.IntegrationTests.Supervisor;

/// <summary>Requests an attacker (or a buggy caller) could send. Each gets the right status, names the field, and mounts nothing.</summary>
[Collection(RgwFixture.Collection)]
public sealed class HostileRequestTests : SupervisorTestBase
{
    public HostileRequestTests(RgwFixture rgw)
        : base(rgw)
    {
    }

    public static TheoryData<string> StageCases() =>
    [
        "traversal-dotdot", "relative-path", "outside-root", "root-itself", "symlink-escape", "symlink-parent-escape",
        "dot-segment", "control-char-path", "oversize-path", "empty-volume-id", "space-volume-id", "oversize-volume-id",
        "bucket-uppercase", "bucket-too-short", "bucket-ip", "bucket-underscore", "bucket-missing", "prefix-leading-slash",
        "prefix-dotdot", "endpoint-file-scheme", "endpoint-userinfo", "endpoint-comma-injection", "umask-injection",
        "storage-class-injection", "dbglevel-unknown", "multipart-out-of-range", "region-injection", "access-key-comma",
        "secret-newline", "missing-credentials", "missing-source",
    ];

    [SkippableTheory]
    [MemberData(nameof(StageCases))]
    public async Task StageVolume_HostileInput_RightStatusNamesFieldMountsNothing(string name)
    {
        var (request, code, field) = Build(name);

        var error = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.StageVolumeAsync(request).ResponseAsync);

        Assert.Equal(code, error.StatusCode);
        Assert.Contains(field, error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(S3.SecretKey, error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(MountsUnder(Layout.KubeletRoot));
        Assert.Empty(Supervisor.Children());
        Assert.Empty((await Supervisor.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes);
    }

    [SkippableFact]
    public async Task PublishVolume_UnknownId_NotFound()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.PublishVolumeAsync(new PublishVolumeRequest
        {
            VolumeId = "never-staged",
            TargetPath = Layout.TargetPath("p", "v"),
        }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Contains("volume_id", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(MountsUnder(Layout.KubeletRoot));
    }

    [SkippableFact]
    public async Task GetAndRemount_UnknownId_NotFound()
    {
        var get = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = "nope" }).ResponseAsync);
        var remount = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.RemountVolumeAsync(new RemountVolumeRequest { VolumeId = "nope" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, get.StatusCode);
        Assert.Equal(StatusCode.NotFound, remount.StatusCode);
    }

    [SkippableFact]
    public async Task PublishVolume_TargetOutsideRootOrSymlinkEscape_PermissionDenied()
    {
        await StageAsync("vol-h");
        var outside = Directory.CreateTempSubdirectory("s3sv-outside-").FullName;
        var link = Path.Combine(Layout.KubeletRoot, "pods", "evil-link");
        Directory.CreateDirectory(Path.GetDirectoryName(link)!);
        File.CreateSymbolicLink(link, outside);
        try
        {
            foreach (var target in new[] { Path.Combine(outside, "mnt"), Path.Combine(link, "mount"), link })
            {
                var error = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.PublishVolumeAsync(new PublishVolumeRequest { VolumeId = "vol-h", TargetPath = target }).ResponseAsync);
                Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
                Assert.Contains("target_path", error.Status.Detail, StringComparison.Ordinal);
            }
            Assert.Single(MountsUnder(Layout.KubeletRoot));
            Assert.Empty(Directory.EnumerateFileSystemEntries(outside));
        }
        finally
        {
            Directory.Delete(outside, recursive: true);
        }
    }

    [SkippableFact]
    public async Task UnstageVolume_WhilePublished_FailedPrecondition()
    {
        var staged = await StageAsync("vol-i");
        await PublishAsync("vol-i", "pod-i");
        var error = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.UnstageVolumeAsync(new UnstageVolumeRequest { VolumeId = "vol-i", StagingPath = staged.StagingPath }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Equal(2, MountsUnder(Layout.KubeletRoot).Count);
    }

    private (StageVolumeRequest Request, StatusCode Code, string Field) Build(string name)
    {
        var staging = Layout.StagingPath("hostile");
        var request = new StageVolumeRequest { VolumeId = "hostile", StagingPath = staging, Source = Source(), Credentials = Credentials() };
        var outside = Path.Combine(Path.GetTempPath(), "s3sv-escape-" + Guid.NewGuid().ToString("N"));
        switch (name)
        {
            case "traversal-dotdot":
                request.StagingPath = Layout.KubeletRoot + "/plugins/../../../etc/x";
                return (request, StatusCode.InvalidArgument, "staging_path");
            case "relative-path":
                request.StagingPath = "kubelet/plugins/x";
                return (request, StatusCode.InvalidArgument, "staging_path");
            case "outside-root":
                request.StagingPath = "/etc/s3sv-test";
                return (request, StatusCode.PermissionDenied, "staging_path");
            case "root-itself":
                request.StagingPath = Layout.KubeletRoot;
                return (request, StatusCode.PermissionDenied, "staging_path");
            case "symlink-escape":
            {
                Directory.CreateDirectory(outside);
                var link = Path.Combine(Layout.KubeletRoot, "link-" + Guid.NewGuid().ToString("N"));
                File.CreateSymbolicLink(link, outside);
                request.StagingPath = link;
                return (request, StatusCode.PermissionDenied, "staging_path");
            }
            case "symlink-parent-escape":
            {
                Directory.CreateDirectory(outside);
                var link = Path.Combine(Layout.KubeletRoot, "link-" + Guid.NewGuid().ToString("N"));
                File.CreateSymbolicLink(link, outside);
                request.StagingPath = Path.Combine(link, "globalmount");
                return (request, StatusCode.PermissionDenied, "staging_path");
            }
            case "dot-segment":
                request.StagingPath = Layout.KubeletRoot + "/./plugins/x";
                return (request, StatusCode.InvalidArgument, "staging_path");
            case "control-char-path":
                request.StagingPath = Layout.KubeletRoot + "/plugins/x\ny";
                return (request, StatusCode.InvalidArgument, "staging_path");
            case "oversize-path":
                request.StagingPath = Layout.KubeletRoot + "/" + new string('a', 5000);
                return (request, StatusCode.InvalidArgument, "staging_path");
            case "empty-volume-id":
                request.VolumeId = string.Empty;
                return (request, StatusCode.InvalidArgument, "volume_id");
            case "space-volume-id":
                request.VolumeId = "vol id";
                return (request, StatusCode.InvalidArgument, "volume_id");
            case "oversize-volume-id":
                request.VolumeId = new string('v', 300);
                return (request, StatusCode.InvalidArgument, "volume_id");
            case "bucket-uppercase":
                request.Source.Bucket = "MyBucket";
                return (request, StatusCode.InvalidArgument, "source.bucket");
            case "bucket-too-short":
                request.Source.Bucket = "ab";
                return (request, StatusCode.InvalidArgument, "source.bucket");
            case "bucket-ip":
                request.Source.Bucket = "192.168.1.1";
                return (request, StatusCode.InvalidArgument, "source.bucket");
            case "bucket-underscore":
                request.Source.Bucket = "my_bucket";
                return (request, StatusCode.InvalidArgument, "source.bucket");
            case "bucket-missing":
                request.Source.Bucket = string.Empty;
                return (request, StatusCode.InvalidArgument, "source.bucket");
            case "prefix-leading-slash":
                request.Source.Prefix = "/abs";
                return (request, StatusCode.InvalidArgument, "source.prefix");
            case "prefix-dotdot":
                request.Source.Prefix = "a/../../b";
                return (request, StatusCode.InvalidArgument, "source.prefix");
            case "endpoint-file-scheme":
                request.Source.Endpoint = "file:///etc/passwd";
                return (request, StatusCode.InvalidArgument, "source.endpoint");
            case "endpoint-userinfo":
                request.Source.Endpoint = "http://user:pass@127.0.0.1:1";
                return (request, StatusCode.InvalidArgument, "source.endpoint");
            case "endpoint-comma-injection":
                request.Source.Endpoint = S3.Endpoint + ",passwd_file=/etc/shadow";
                return (request, StatusCode.InvalidArgument, "source.endpoint");
            case "umask-injection":
                request.Source.Options.Umask = "022,allow_root";
                return (request, StatusCode.InvalidArgument, "source.options.umask");
            case "storage-class-injection":
                request.Source.Options.StorageClass = "STANDARD,passwd_file=/x";
                return (request, StatusCode.InvalidArgument, "source.options.storage_class");
            case "dbglevel-unknown":
                request.Source.Options.Dbglevel = "trace=1";
                return (request, StatusCode.InvalidArgument, "source.options.dbglevel");
            case "multipart-out-of-range":
                request.Source.Options.MultipartSizeMb = 1;
                return (request, StatusCode.InvalidArgument, "source.options.multipart_size_mb");
            case "region-injection":
                request.Source.Region = "us-east-1,url=http://127.0.0.2";
                return (request, StatusCode.InvalidArgument, "source.region");
            case "access-key-comma":
                request.Credentials.AccessKeyId = "KEY,other";
                return (request, StatusCode.InvalidArgument, "credentials.access_key_id");
            case "secret-newline":
                request.Credentials.SecretAccessKey = S3.SecretKey + "\nroot:x";
                return (request, StatusCode.InvalidArgument, "credentials.secret_access_key");
            case "missing-credentials":
                request.Credentials = null;
                return (request, StatusCode.InvalidArgument, "credentials");
            case "missing-source":
                request.Source = null;
                return (request, StatusCode.InvalidArgument, "source");
            default:
                throw new ArgumentOutOfRangeException(nameof(name), name, null);
        }
    }
}

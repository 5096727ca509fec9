using Grpc.Core;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.IntegrationTests.Supervisor;

/// <summary>use_cache with a real s3fs: the per-volume cache directory is made, used, and removed with the volume; an unusable cache directory is the node's configuration, said as such, and leaves nothing behind.</summary>
[Collection(RgwFixture.Collection)]
public sealed class SupervisorCacheTests : NodeTestBase
{
    public SupervisorCacheTests(RgwFixture rgw)
        : base(rgw, "cache")
    {
    }

    private string CacheDirectory => Path.Combine(Layout.Root, "cache");

    private StageVolumeRequest Stage(string volumeId) => new()
    {
        VolumeId = volumeId,
        StagingPath = Layout.StagingPath(volumeId),
        Source = new VolumeSource
        {
            Bucket = Bucket,
            Prefix = volumeId,
            Endpoint = S3.Endpoint,
            Region = S3.Region,
            Options = new MountOptions { StatCacheExpireSeconds = 1, UseCache = true },
        },
        Credentials = new Credentials { AccessKeyId = S3.AccessKey, SecretAccessKey = S3.SecretKey },
    };

    [SkippableFact]
    public async Task UseCache_ReadThroughTarget_CachedLocallyAndRemovedAtUnstage()
    {
        var supervisor = await StartSupervisorAsync(new Dictionary<string, string> { ["Supervisor__CacheDirectory"] = CacheDirectory });
        var staged = (await supervisor.Client.StageVolumeAsync(Stage("vol-cache"))).Volume;
        var target = Layout.TargetPath("pod-c", "pv-vol-cache");
        await supervisor.Client.PublishVolumeAsync(new PublishVolumeRequest { VolumeId = "vol-cache", TargetPath = target, Pod = new PodRef { Uid = "pod-c", Name = "pod-c", Namespace = "default" } });
        var content = new string('c', 256 * 1024);
        await File.WriteAllTextAsync(Path.Combine(target, "blob.txt"), content);
        Assert.Equal(content, await S3.GetObjectTextAsync(Bucket, "vol-cache/blob.txt"));
        Assert.Equal(content, await File.ReadAllTextAsync(Path.Combine(target, "blob.txt")));
        // Inside the volume's own directory s3fs keeps its copy under <bucket>/ (paths relative to the
        // mounted prefix) and the object's stat record under .<bucket>.stat/.
        var volumeCache = Path.Combine(CacheDirectory, "vol-cache");
        var copy = Path.Combine(volumeCache, Bucket, "blob.txt");
        var found = string.Join(", ", Directory.EnumerateFiles(volumeCache, "*", SearchOption.AllDirectories));
        Assert.True(File.Exists(copy), $"no {copy}; the cache holds: {found}");
        Assert.Equal(content.Length, new FileInfo(copy).Length);
        Assert.True(File.Exists(Path.Combine(volumeCache, $".{Bucket}.stat", "blob.txt")), $"no stat record; the cache holds: {found}");

        await supervisor.Client.UnpublishVolumeAsync(new UnpublishVolumeRequest { VolumeId = "vol-cache", TargetPath = target });
        await supervisor.Client.UnstageVolumeAsync(new UnstageVolumeRequest { VolumeId = "vol-cache", StagingPath = staged.StagingPath });

        Assert.Empty(Directory.EnumerateFileSystemEntries(CacheDirectory));
        Assert.False(Directory.Exists(Path.Combine(Layout.StateDirectory, "tmp", "vol-cache")));
    }

    [SkippableFact]
    public async Task UseCache_CacheDirectoryNotWritable_FailedPreconditionNamingTheSettingAndNothingLeft()
    {
        // A file where the cache directory's parent should be: mkdir fails (ENOTDIR), as it fails with
        // EROFS under a read-only root when the node pod gives the cache directory no volume.
        var blocker = Path.Combine(Layout.Root, "not-a-directory");
        await File.WriteAllTextAsync(blocker, "");
        var supervisor = await StartSupervisorAsync(new Dictionary<string, string> { ["Supervisor__CacheDirectory"] = Path.Combine(blocker, "cache") });

        var error = await Assert.ThrowsAsync<RpcException>(() => supervisor.Client.StageVolumeAsync(Stage("vol-nocache")).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("Supervisor__CacheDirectory", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains(blocker, error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(MountsUnder(Layout.KubeletRoot));
        Assert.Empty(supervisor.Children());
        Assert.False(Directory.Exists(Path.Combine(Layout.SecretsDirectory, "vol-nocache")));
        var lookup = await Assert.ThrowsAsync<RpcException>(() => supervisor.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = "vol-nocache" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, lookup.StatusCode);
    }
}

using System.Diagnostics;
using Grpc.Core;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.IntegrationTests.Supervisor;

/// <summary>
/// Publish, unpublish and unstage requests over the supervisor socket that try to reach outside the
/// allowed root, malformed messages, endpoints that cannot be reached, and the check-then-mount race
/// driven from outside. Each hostile case gets its status naming the field, mounts and creates
/// nothing outside the root, leaves the staged volume alone, and the supervisor serves afterwards.
/// </summary>
[Collection(RgwFixture.Collection)]
public sealed class HostilePathRequestTests : SupervisorTestBase
{
    private const string Volume = "vol-hp";
    private readonly string _outside = Directory.CreateTempSubdirectory("s3sv-hp-outside-").FullName;

    public HostilePathRequestTests(RgwFixture rgw)
        : base(rgw)
    {
    }

    public static TheoryData<string> PathCases() =>
    [
        "publish-dotdot", "publish-relative", "publish-outside-root", "publish-root-itself", "publish-proc-root", "publish-proc-1-root-outside",
        "publish-symlink-parent-escape", "publish-dangling-symlink-parent", "publish-symlink-loop-parent", "publish-target-is-symlink",
        "publish-control-char", "publish-nul", "publish-oversize", "publish-empty", "publish-staging-as-target", "publish-pod-control-char",
        "publish-pod-oversize", "publish-unknown-volume", "publish-bad-volume-id",
        "unpublish-dotdot", "unpublish-relative", "unpublish-outside-root", "unpublish-proc-root", "unpublish-symlink-loop-parent",
        "unpublish-empty", "unstage-dotdot", "unstage-outside-root", "unstage-proc-root", "unstage-dangling-symlink-parent",
        "unstage-wrong-staging-path", "unstage-bad-volume-id",
    ];

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await StageAsync(Volume, prefix: "hp");
    }

    [SkippableTheory]
    [MemberData(nameof(PathCases))]
    public async Task SupervisorCall_HostilePath_RightStatusNamesFieldTouchesNothingOutside(string name)
    {
        var (call, code, field) = Build(name);
        var outsideBefore = Snapshot(_outside);
        var mountsBefore = MountsUnder(Layout.KubeletRoot);

        var error = await Assert.ThrowsAsync<RpcException>(call);

        Assert.True(code == error.StatusCode, $"{name}: expected {code}, got {error.StatusCode}: {error.Status.Detail}");
        Assert.Contains(field, error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(S3.SecretKey, error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(outsideBefore, Snapshot(_outside));
        Assert.Empty(MountTable.Under(_outside));
        Assert.DoesNotContain(MountTable.Read(), m => m.MountPoint.StartsWith("/etc", StringComparison.Ordinal) || m.MountPoint.StartsWith("/proc/1", StringComparison.Ordinal));
        Assert.Equal(mountsBefore, MountsUnder(Layout.KubeletRoot));
        var volume = Assert.Single((await Supervisor.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes);
        Assert.Equal(VolumeState.Ready, volume.State);
        Assert.DoesNotContain("failed unexpectedly", Supervisor.Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task SupervisorCall_MalformedMessage_InvalidArgumentNamingRequestStillServes()
    {
        foreach (var method in new[] { "StageVolume", "PublishVolume", "UnpublishVolume", "UnstageVolume", "GetVolume", "RemountVolume" })
        {
            foreach (var (why, bytes) in RawGrpc.Malformed)
            {
                var error = await Assert.ThrowsAsync<RpcException>(() => RawGrpc.CallAsync(Supervisor.Channel, $"/s3supervisor.v1.Supervisor/{method}", bytes));
                Assert.True(error.StatusCode == StatusCode.InvalidArgument, $"{method} {why}: {error.StatusCode} {error.Status.Detail}");
                Assert.Contains("request", error.Status.Detail, StringComparison.Ordinal);
            }
        }
        Assert.Single((await Supervisor.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes);
        Assert.DoesNotContain("failed unexpectedly", Supervisor.Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task StageVolume_UnreachableEndpoint_UnavailableNamingEndpointNothingMounted()
    {
        var endpoints = new[]
        {
            "http://127.0.0.1:1",                       // nothing listens
            $"http://[::1]:{S3.Port}",                  // the server listens on IPv4 only
            $"https://127.0.0.1:{S3.Port}",             // TLS to a plain-HTTP port
        };
        foreach (var endpoint in endpoints)
        {
            var source = Source(prefix: "unreachable");
            source.Endpoint = endpoint;
            var error = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.StageVolumeAsync(new StageVolumeRequest
            {
                VolumeId = "vol-unreachable",
                StagingPath = Layout.StagingPath("vol-unreachable"),
                Source = source,
                Credentials = Credentials(),
            }).ResponseAsync);
            Assert.True(error.StatusCode == StatusCode.Unavailable, $"{endpoint}: {error.StatusCode} {error.Status.Detail}");
            Assert.Contains("source.endpoint", error.Status.Detail, StringComparison.Ordinal);
        }
        Assert.Single(MountsUnder(Layout.KubeletRoot));
        Assert.Single((await Supervisor.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes);
    }

    /// <summary>
    /// The race as an attacker with write access under kubelet's root runs it: the target flips
    /// between a directory and a symlink to a directory outside the root while 200 publishes run.
    /// Before the mount layer resolved paths once, about 5% of them mounted outside.
    /// </summary>
    [SkippableFact]
    public async Task PublishVolume_TargetFlipsToSymlinkDuringTwoHundredCalls_NeverMountsOutside()
    {
        var parent = Path.Combine(Layout.KubeletRoot, "pods", "flip", "volumes");
        var flipping = Path.Combine(parent, "kubernetes.io~csi");
        var real = flipping + ".real";
        Directory.CreateDirectory(real);
        Directory.CreateDirectory(Path.Combine(_outside, "pv", "mount"));
        Directory.CreateDirectory(Path.Combine(real, "pv", "mount"));
        Directory.Move(real, flipping);
        var target = Path.Combine(flipping, "pv", "mount");
        using var stop = new CancellationTokenSource();
        var flipper = Task.Run(() =>
        {
            // Directory <-> symlink to the outside, as fast as the file system allows.
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    Directory.Move(flipping, real);
                    File.CreateSymbolicLink(flipping, _outside);
                    File.Delete(flipping);
                    Directory.Move(real, flipping);
                }
                catch (IOException)
                {
                }
            }
        });
        int bound = 0, refused = 0;
        var stopwatch = Stopwatch.StartNew();
        try
        {
            for (var i = 0; i < 200; i++)
            {
                try
                {
                    await Supervisor.Client.PublishVolumeAsync(new PublishVolumeRequest { VolumeId = Volume, TargetPath = target });
                    bound++;
                }
                catch (RpcException e) when (e.StatusCode is StatusCode.PermissionDenied or StatusCode.FailedPrecondition)
                {
                    refused++;
                }
                catch (RpcException e)
                {
                    Assert.Fail($"call {i}: {e.StatusCode} {e.Status.Detail}\n{Supervisor.Output}");
                }
                Assert.Empty(MountTable.Under(_outside));
                try
                {
                    // The unpublish meets the flipping path too: refused (then the next publish finds the target published), or done.
                    await Supervisor.Client.UnpublishVolumeAsync(new UnpublishVolumeRequest { VolumeId = Volume, TargetPath = target });
                }
                catch (RpcException e) when (e.StatusCode is StatusCode.PermissionDenied or StatusCode.FailedPrecondition)
                {
                }
                Assert.Empty(MountTable.Under(_outside));
            }
        }
        finally
        {
            await stop.CancelAsync();
            await flipper;
        }
        Assert.Empty(MountTable.Under(_outside));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_outside, "pv", "mount")));
        Assert.Equal(200, bound + refused);
        Assert.DoesNotContain("failed unexpectedly", Supervisor.Output, StringComparison.Ordinal);
        Console.WriteLine($"flip race: {bound} bound inside the root, {refused} refused, 0 outside, {stopwatch.ElapsedMilliseconds} ms");
    }

    private (Func<Task> Call, StatusCode Code, string Field) Build(string name)
    {
        var client = Supervisor.Client;
        var root = Layout.KubeletRoot;
        var goodTarget = Layout.TargetPath("pod-hp", "pv-hp");
        Task Publish(string path, PodRef? pod = null, string volumeId = Volume) =>
            client.PublishVolumeAsync(new PublishVolumeRequest { VolumeId = volumeId, TargetPath = path, Pod = pod }).ResponseAsync;
        Task Unpublish(string path) => client.UnpublishVolumeAsync(new UnpublishVolumeRequest { VolumeId = Volume, TargetPath = path }).ResponseAsync;
        Task Unstage(string path, string volumeId = Volume) => client.UnstageVolumeAsync(new UnstageVolumeRequest { VolumeId = volumeId, StagingPath = path }).ResponseAsync;
        string Link(string target)
        {
            var link = Path.Combine(root, "pods", "link-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(Path.GetDirectoryName(link)!);
            File.CreateSymbolicLink(link, target);
            return link;
        }
        string Loop()
        {
            var a = Path.Combine(root, "pods", "loop-a-" + Guid.NewGuid().ToString("N")[..8]);
            var b = a.Replace("loop-a-", "loop-b-", StringComparison.Ordinal);
            Directory.CreateDirectory(Path.GetDirectoryName(a)!);
            File.CreateSymbolicLink(a, b);
            File.CreateSymbolicLink(b, a);
            return a;
        }
        const StatusCode Invalid = StatusCode.InvalidArgument;
        const StatusCode Denied = StatusCode.PermissionDenied;
        return name switch
        {
            "publish-dotdot" => (() => Publish(root + "/pods/../../../etc/x"), Invalid, "target_path"),
            "publish-relative" => (() => Publish("pods/x/mount"), Invalid, "target_path"),
            "publish-outside-root" => (() => Publish(Path.Combine(_outside, "mnt")), Denied, "target_path"),
            "publish-root-itself" => (() => Publish(root), Denied, "target_path"),
            "publish-proc-root" => (() => Publish("/proc/1/root/etc/s3sv"), Denied, "target_path"),
            "publish-proc-1-root-outside" => (() => Publish("/proc/1/root" + _outside + "/mnt"), Denied, "target_path"),
            "publish-symlink-parent-escape" => (() => Publish(Path.Combine(Link(_outside), "mount")), Denied, "target_path"),
            "publish-dangling-symlink-parent" => (() => Publish(Path.Combine(Link(Path.Combine(_outside, "missing")), "a", "mount")), Denied, "target_path"),
            "publish-symlink-loop-parent" => (() => Publish(Path.Combine(Loop(), "mount")), Denied, "target_path"),
            "publish-target-is-symlink" => (() => Publish(Link(_outside)), Denied, "target_path"),
            "publish-control-char" => (() => Publish(goodTarget + "\nx"), Invalid, "target_path"),
            "publish-nul" => (() => Publish(goodTarget + "\0x"), Invalid, "target_path"),
            "publish-oversize" => (() => Publish(root + "/" + new string('a', 5000)), Invalid, "target_path"),
            "publish-empty" => (() => Publish(string.Empty), Invalid, "target_path"),
            "publish-staging-as-target" => (() => Publish(Layout.StagingPath(Volume)), Invalid, "target_path"),
            "publish-pod-control-char" => (() => Publish(goodTarget, new PodRef { Uid = "u", Name = "pod\u0007", Namespace = "default" }), Invalid, "pod"),
            "publish-pod-oversize" => (() => Publish(goodTarget, new PodRef { Uid = "u", Name = new string('p', 300), Namespace = "default" }), Invalid, "pod"),
            "publish-unknown-volume" => (() => Publish(goodTarget, volumeId: "never-staged"), StatusCode.NotFound, "volume_id"),
            "publish-bad-volume-id" => (() => Publish(goodTarget, volumeId: "bad id"), Invalid, "volume_id"),
            "unpublish-dotdot" => (() => Unpublish(root + "/pods/../../etc"), Invalid, "target_path"),
            "unpublish-relative" => (() => Unpublish("etc"), Invalid, "target_path"),
            "unpublish-outside-root" => (() => Unpublish("/etc"), Denied, "target_path"),
            "unpublish-proc-root" => (() => Unpublish("/proc/1/root/etc"), Denied, "target_path"),
            "unpublish-symlink-loop-parent" => (() => Unpublish(Path.Combine(Loop(), "mount")), Denied, "target_path"),
            "unpublish-empty" => (() => Unpublish(string.Empty), Invalid, "target_path"),
            "unstage-dotdot" => (() => Unstage(root + "/plugins/../../etc"), Invalid, "staging_path"),
            "unstage-outside-root" => (() => Unstage(_outside), Denied, "staging_path"),
            "unstage-proc-root" => (() => Unstage("/proc/1/root/etc"), Denied, "staging_path"),
            "unstage-dangling-symlink-parent" => (() => Unstage(Path.Combine(Link(Path.Combine(_outside, "gone")), "globalmount")), Denied, "staging_path"),
            "unstage-wrong-staging-path" => (() => Unstage(Layout.StagingPath("elsewhere")), StatusCode.FailedPrecondition, "staging_path"),
            "unstage-bad-volume-id" => (() => Unstage(Layout.StagingPath(Volume), "bad\tid"), Invalid, "volume_id"),
            _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
        };
    }

    private static string[] Snapshot(string directory) =>
        Directory.EnumerateFileSystemEntries(directory, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
}

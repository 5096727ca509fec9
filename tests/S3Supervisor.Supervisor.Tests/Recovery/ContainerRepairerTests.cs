using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using S3Supervisor.Supervisor.Interop;
using S3Supervisor.Supervisor.Recovery;

namespace S3Supervisor.Supervisor.Tests.Recovery;

/// <summary>Detection and reporting against a fake /proc; the real replacement is covered by the integration tests.</summary>
public sealed class ContainerRepairerTests : IDisposable
{
    private const string Root = "1 0 254:0 / / rw,relatime - ext4 /dev/vda rw";

    private readonly FakeProc _proc = new();
    private readonly ConcurrentBag<string> _statted = [];

    public void Dispose() => _proc.Dispose();

    [Fact]
    public async Task RepairAsync_Disabled_ReportsEveryConfirmedMountWithoutTouchingIt()
    {
        _proc.AddProcess(1, "host", Root).SetSelf(1)
            .AddProcess(100, "c1", Root, "10 1 0:50 / /data ro,nosuid,nodev,relatime - fuse.s3fs s3fs rw")
            .AddProcess(200, "c2", Root, "10 1 0:50 /sub/dir /work rw,nosuid,nodev,relatime - fuse.s3fs s3fs rw");
        var repairer = Repairer(enabled: false, _ => Errno.ENOTCONN);

        var results = (await repairer.RepairAsync("0:50", "/nonexistent/staging", CancellationToken.None)).OrderBy(r => r.Pid).ToList();

        Assert.Equal(2, results.Count);
        Assert.Equal(new ContainerRepairResult(100, _proc.InodeOf("c1"), "/data", "/", true, false, "repair disabled"), results[0]);
        Assert.Equal(new ContainerRepairResult(200, _proc.InodeOf("c2"), "/work", "/sub/dir", false, false, "repair disabled"), results[1]);
        Assert.Contains(Path.Combine(_proc.Root, "100", "root") + "/data", _statted);
    }

    [Fact]
    public async Task RepairAsync_ReusedDeviceNumberThatAnswers_IsLeftAlone()
    {
        _proc.AddProcess(1, "host", Root).SetSelf(1)
            .AddProcess(100, "c1", Root, "10 1 0:50 / /data rw - fuse.s3fs s3fs rw");
        var repairer = Repairer(enabled: true, _ => 0);

        var results = await repairer.RepairAsync("0:50", "/nonexistent/staging", CancellationToken.None);

        Assert.Empty(results);
    }

    [Fact]
    public async Task RepairAsync_MountInsideStaleMount_IsConfirmedWithItWithoutItsOwnStat()
    {
        _proc.AddProcess(1, "host", Root).SetSelf(1)
            .AddProcess(100, "c1", Root,
                "10 1 0:50 / /data rw - fuse.s3fs s3fs rw",
                "11 10 0:50 /sub /data/sub ro - fuse.s3fs s3fs rw");
        var repairer = Repairer(enabled: false, _ => Errno.ENOTCONN);

        var results = await repairer.RepairAsync("0:50", "/nonexistent/staging", CancellationToken.None);

        Assert.Equal(["/data", "/data/sub"], results.Select(r => r.MountPoint));
        // A walk through the dead /data would make the kernel detach /data/sub.
        Assert.DoesNotContain(_statted, p => p.EndsWith("/data/sub", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RepairAsync_HungStat_IsLeftAloneAfterTheTimeout()
    {
        _proc.AddProcess(1, "host", Root).SetSelf(1)
            .AddProcess(100, "c1", Root, "10 1 0:50 / /data rw - fuse.s3fs s3fs rw");
        using var release = new ManualResetEventSlim();
        var repairer = new ContainerRepairer(
            NullLogger<ContainerRepairer>.Instance,
            new ContainerRepairOptions { Enabled = false, ProcRoot = _proc.Root, ConfirmTimeout = TimeSpan.FromMilliseconds(100) },
            _ =>
            {
                release.Wait(TimeSpan.FromSeconds(10));
                return Errno.ENOTCONN;
            });

        var results = await repairer.RepairAsync("0:50", "/nonexistent/staging", CancellationToken.None);

        release.Set();
        Assert.Empty(results);
    }

    [Fact]
    public async Task RepairAsync_LiveStagingPathMissing_ReportsFailurePerMount()
    {
        _proc.AddProcess(1, "host", Root).SetSelf(1)
            .AddProcess(100, "c1", Root, "10 1 0:50 / /data rw - fuse.s3fs s3fs rw");
        var repairer = Repairer(enabled: true, _ => Errno.ENOTCONN);

        var result = Assert.Single(await repairer.RepairAsync("0:50", "/nonexistent/staging", CancellationToken.None));

        Assert.False(result.Success);
        Assert.Contains("ENOENT", result.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0-50")]
    [InlineData("0:")]
    [InlineData("a:1")]
    [InlineData("")]
    public async Task RepairAsync_MalformedDevice_Throws(string device)
    {
        var repairer = Repairer(enabled: true, _ => 0);

        await Assert.ThrowsAsync<ArgumentException>(() => repairer.RepairAsync(device, "/staging", CancellationToken.None));
    }

    private ContainerRepairer Repairer(bool enabled, Func<string, int> stat) =>
        new(
            NullLogger<ContainerRepairer>.Instance,
            new ContainerRepairOptions { Enabled = enabled, ProcRoot = _proc.Root },
            path =>
            {
                _statted.Add(path);
                return stat(path);
            });
}

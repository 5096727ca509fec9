using System.Diagnostics;
using S3Supervisor.Supervisor.Interop;
using S3Supervisor.Supervisor.Recovery;
using MountEntry = S3Supervisor.Supervisor.Mounts.MountEntry;
using MountInfo = S3Supervisor.Supervisor.Mounts.MountInfo;
using S3Supervisor.TestKit;
using Xunit.Abstractions;

namespace S3Supervisor.IntegrationTests.Recovery;

/// <summary>
/// A real dead FUSE connection held by stand-in containers (own mount namespace, own pivot_root'ed
/// root, private binds made at start): s3fs is killed with SIGKILL, a new one is mounted at the same
/// staging path on the host, and <see cref="ContainerRepairer"/> must make every container see the
/// live volume again, with its subPath and its flags, without restarting it.
/// </summary>
[Collection(RgwFixture.Collection)]
public sealed class ContainerRepairTests : IAsyncLifetime
{
    private const string WholeText = "the whole volume\n";
    private const string InsideText = "inside the subPath\n";
    private const string NotConnected = "Transport endpoint is not connected";

    private readonly RgwFixture _rgw;
    private readonly ITestOutputHelper _output;
    private readonly List<IAsyncDisposable> _cleanup = [];
    private ScratchDirectory? _scratch;

    public ContainerRepairTests(RgwFixture rgw, ITestOutputHelper output)
    {
        _rgw = rgw;
        _output = output;
    }

    private string Bucket { get; } = "repair-" + Guid.NewGuid().ToString("N")[..12];

    private string Staging => _scratch!.Combine("staging");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        // Containers first (their namespaces, and the dead copies in them, die with them), then
        // the s3fs mounts (lazily unmounted), then whatever is left in the scratch directory.
        for (var i = _cleanup.Count - 1; i >= 0; i--)
        {
            try
            {
                await _cleanup[i].DisposeAsync();
            }
            catch (Exception ex)
            {
                _output.WriteLine($"cleanup: {ex.Message}");
            }
        }
        if (_scratch is not null)
        {
            await _scratch.DisposeAsync();
        }
    }

    [SkippableFact]
    public async Task RepairAsync_S3fsKilled_ContainersReadAndWriteAgainWithTheirSubPathAndFlags()
    {
        var first = await SetUpAsync();
        var readOnly = await StartContainerAsync("ro", new VolumeMountSpec(Staging, "/data", ReadOnly: true));
        var writable = await StartContainerAsync("subpath", new VolumeMountSpec(Staging, "/work", SubPath: "sub"));
        var roBefore = MountInfo.At(MountInfo.Read(readOnly.Pid), "/data")!;
        var rwBefore = MountInfo.At(MountInfo.Read(writable.Pid), "/work")!;
        Assert.Equal(("/", true), (roBefore.Root, roBefore.ReadOnly));
        Assert.Equal(("/sub", false), (rwBefore.Root, rwBefore.ReadOnly));

        await first.KillAsync();
        var throughProc = $"/proc/{readOnly.Pid}/root/data";
        _output.WriteLine($"right after kill -9: stat {Errno.Name(Libc.StatErrno(throughProc, out _))}, statx(FORCE_SYNC) {Errno.Name(Libc.StatForceSyncErrno(throughProc))}");
        Assert.Equal(Errno.ENOTCONN, Libc.StatForceSyncErrno(throughProc));
        Assert.Contains(NotConnected, (await readOnly.ExecAsync("cat", "/data/whole.txt")).Stderr, StringComparison.Ordinal);
        Assert.Contains(NotConnected, (await writable.ExecAsync("ls", "/work")).Stderr, StringComparison.Ordinal);

        var second = await RemountAsync(first);
        // A shared staging mount (as under kubelet's rshared root) must not drag the containers'
        // new mounts into its peer group.
        (await ProcessRunner.RunAsync("mount", "--make-shared", Staging)).EnsureSuccess("mount --make-shared");

        var logger = new TestOutputLogger<ContainerRepairer>(_output);
        var timer = Stopwatch.StartNew();
        var results = await new ContainerRepairer(logger, new ContainerRepairOptions()).RepairAsync(first.Entry.Device, Staging, CancellationToken.None);
        timer.Stop();
        ReportTiming(results, timer.Elapsed);

        results = Mine(results, readOnly.Pid, writable.Pid);
        Assert.All(results, r => Assert.True(r.Success, $"{r.Pid} {r.MountPoint}: {r.Error}"));
        Assert.Equal(2, results.Count);
        Assert.Equal((readOnly.Pid, "/data", "/", true), Single(results, readOnly.Pid));
        Assert.Equal((writable.Pid, "/work", "/sub", false), Single(results, writable.Pid));

        // The read-only container reads again and is still read-only.
        Assert.Equal(WholeText, await readOnly.ReadFileAsync("/data/whole.txt"));
        var denied = await readOnly.ExecAsync("/bin/sh", "-c", "echo nope > /data/denied.txt");
        Assert.NotEqual(0, denied.ExitCode);
        Assert.Contains("Read-only file system", denied.Stderr, StringComparison.Ordinal);
        AssertSameView(roBefore, MountInfo.At(MountInfo.Read(readOnly.Pid), "/data")!, second);

        // The subPath container still sees only its subdirectory, and its writes reach S3.
        Assert.Equal(["inside.txt"], await writable.ListAsync("/work"));
        await writable.WriteFileAsync("/work/after.txt", "written after repair\n");
        Assert.Equal("written after repair\n", await _rgw.Server!.GetObjectTextAsync(Bucket, "sub/after.txt"));
        AssertSameView(rwBefore, MountInfo.At(MountInfo.Read(writable.Pid), "/work")!, second);

        // Nothing in either container still points at the dead connection.
        Assert.DoesNotContain(MountInfo.Read(readOnly.Pid), m => m.Device == first.Entry.Device);
        Assert.DoesNotContain(MountInfo.Read(writable.Pid), m => m.Device == first.Entry.Device);
    }

    [SkippableFact]
    public async Task RepairAsync_TenContainers_EveryOneReadsAgain()
    {
        // Not a timed test: it prints the repair time per container for the record.
        const int Count = 10;
        var first = await SetUpAsync();
        var containers = new List<StandInContainer>();
        for (var i = 0; i < Count; i++)
        {
            containers.Add(await StartContainerAsync($"many{i}", new VolumeMountSpec(Staging, "/data", ReadOnly: i % 3 == 0, SubPath: i % 2 == 0 ? null : "sub")));
        }
        await first.KillAsync();
        await RemountAsync(first);

        var logger = new TestOutputLogger<ContainerRepairer>(_output);
        var timer = Stopwatch.StartNew();
        var results = await new ContainerRepairer(logger, new ContainerRepairOptions()).RepairAsync(first.Entry.Device, Staging, CancellationToken.None);
        timer.Stop();
        ReportTiming(results, timer.Elapsed);

        results = Mine(results, [.. containers.Select(c => c.Pid)]);
        Assert.Equal(Count, results.Count);
        Assert.Equal(Count, results.Select(r => r.MountNamespaceInode).Distinct().Count());
        Assert.All(results, r => Assert.True(r.Success, $"{r.MountPoint}: {r.Error}"));
        for (var i = 0; i < Count; i++)
        {
            Assert.Equal(InsideText, await containers[i].ReadFileAsync(i % 2 == 0 ? "/data/sub/inside.txt" : "/data/inside.txt"));
        }
    }

    [SkippableFact]
    public async Task RepairAsync_StaleMountInsideStaleMount_BothComeBackAndBuriedMountIsReported()
    {
        var first = await SetUpAsync();
        var config = _scratch!.CreateSubdirectory("config");
        await File.WriteAllTextAsync(Path.Combine(config, "setting"), "x");
        // /data is the whole volume; /data/sub a second, read-only bind of the same volume on a
        // directory inside it (two volumeMounts of one PVC); /data/cfg an unrelated mount inside
        // it (a configMap, say).
        var container = await StartContainerAsync(
            "nested",
            new VolumeMountSpec(Staging, "/data"),
            new VolumeMountSpec(Staging, "/data/sub", ReadOnly: true, SubPath: "sub"),
            new VolumeMountSpec(config, "/data/cfg", ReadOnly: true));
        await first.KillAsync();
        var second = await RemountAsync(first);

        var logger = new TestOutputLogger<ContainerRepairer>(_output);
        var results = Mine(await new ContainerRepairer(logger, new ContainerRepairOptions()).RepairAsync(first.Entry.Device, Staging, CancellationToken.None), container.Pid);

        Assert.All(results, r => Assert.True(r.Success, $"{r.MountPoint}: {r.Error}"));
        Assert.Equal(["/data", "/data/sub"], results.Select(r => r.MountPoint));
        Assert.Equal(("/sub", true), (results[1].Root, results[1].ReadOnly));
        Assert.Equal(WholeText, await container.ReadFileAsync("/data/whole.txt"));
        Assert.Equal(InsideText, await container.ReadFileAsync("/data/sub/inside.txt"));
        Assert.NotEqual(0, (await container.ExecAsync("/bin/sh", "-c", "echo x > /data/sub/denied.txt")).ExitCode);
        var mounts = MountInfo.Read(container.Pid);
        Assert.Equal(second.Entry.Device, MountInfo.At(mounts, "/data/sub")!.Device);
        // The bind under the dead mount could not be carried over; the log says so.
        Assert.Null(MountInfo.At(mounts, "/data/cfg"));
        Assert.Contains(logger.Lines, l => l.Contains("[3006]", StringComparison.Ordinal) && l.Contains("/data/cfg", StringComparison.Ordinal));
    }

    [SkippableFact]
    public async Task RepairAsync_Disabled_ReportsEachStaleMountAndLeavesItAlone()
    {
        var first = await SetUpAsync();
        var container = await StartContainerAsync("disabled", new VolumeMountSpec(Staging, "/work", SubPath: "sub"));
        await first.KillAsync();
        await RemountAsync(first);

        var results = await new ContainerRepairer(new TestOutputLogger<ContainerRepairer>(_output), new ContainerRepairOptions { Enabled = false })
            .RepairAsync(first.Entry.Device, Staging, CancellationToken.None);

        var result = Assert.Single(Mine(results, container.Pid));
        Assert.Equal((container.Pid, "/work", "/sub", false, "repair disabled"), (result.Pid, result.MountPoint, result.Root, result.Success, result.Error));
        Assert.Contains(NotConnected, (await container.ExecAsync("ls", "/work")).Stderr, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task RepairAsync_DeviceStillAlive_TouchesNothing()
    {
        // The same check that protects against a reused FUSE minor number: a mount of the device
        // that still answers is not stale, whatever mountinfo says.
        var live = await SetUpAsync();
        var container = await StartContainerAsync("alive", new VolumeMountSpec(Staging, "/data"));
        var before = MountInfo.At(MountInfo.Read(container.Pid), "/data")!;

        var results = await new ContainerRepairer(new TestOutputLogger<ContainerRepairer>(_output), new ContainerRepairOptions())
            .RepairAsync(live.Entry.Device, Staging, CancellationToken.None);

        Assert.Empty(Mine(results, container.Pid));
        Assert.Equal(before.MountId, MountInfo.At(MountInfo.Read(container.Pid), "/data")!.MountId);
    }

    /// <summary>The replacement shows the same directory of the volume with at least the same restrictions, from the new connection, and is private.</summary>
    private static void AssertSameView(MountEntry before, MountEntry after, S3fsInstance live)
    {
        Assert.Equal((live.Entry.Device, before.Root, before.ReadOnly), (after.Device, after.Root, after.ReadOnly));
        foreach (var flag in new[] { "ro", "nosuid", "nodev", "noexec" }.Where(before.Options.Contains))
        {
            Assert.Contains(flag, after.Options);
        }
        Assert.DoesNotContain(after.OptionalFields, f => f.StartsWith("shared:", StringComparison.Ordinal));
    }

    /// <summary>
    /// The results about this test's own containers. The repairer rightly scans every process on the
    /// machine, and a stand-in container started meanwhile by another test (in a parallel collection,
    /// or another test run) holds its own copy of every host mount, this test's staging mount included.
    /// </summary>
    private static ContainerRepairResult[] Mine(IReadOnlyList<ContainerRepairResult> results, params int[] pids) =>
        results.Where(r => pids.Contains(r.Pid)).ToArray();

    private static (int, string, string, bool) Single(IReadOnlyList<ContainerRepairResult> results, int pid)
    {
        var r = Assert.Single(results, r => r.Pid == pid);
        return (r.Pid, r.MountPoint, r.Root, r.ReadOnly);
    }

    /// <summary>Scratch directory, bucket, the first s3fs and the files the containers will read.</summary>
    private async Task<S3fsInstance> SetUpAsync()
    {
        Requires.Root();
        Requires.Fuse();
        Requires.S3fs();
        Requires.MountNamespaces();
        var s3 = _rgw.RequireServer();
        _scratch = await ScratchDirectory.CreateAsync("repair");
        await s3.CreateBucketAsync(Bucket);
        var passwd = _scratch.Combine("passwd");
        await File.WriteAllTextAsync(passwd, $"{s3.AccessKey}:{s3.SecretKey}\n");
        File.SetUnixFileMode(passwd, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Directory.CreateDirectory(Staging);

        var first = await StartS3fsAsync();
        Directory.CreateDirectory(Path.Combine(Staging, "sub"));
        Directory.CreateDirectory(Path.Combine(Staging, "cfg"));
        await File.WriteAllTextAsync(Path.Combine(Staging, "whole.txt"), WholeText);
        await File.WriteAllTextAsync(Path.Combine(Staging, "sub", "inside.txt"), InsideText);
        return first;
    }

    private async Task<S3fsInstance> StartS3fsAsync()
    {
        var instance = await S3fsInstance.StartAsync(Bucket, Staging, _scratch!.Combine("passwd"), _rgw.Server!.Endpoint);
        _cleanup.Add(instance);
        return instance;
    }

    /// <summary>What the supervisor does on the host before it calls the repair: lazy unmount of the dead staging mount, a new s3fs.</summary>
    private async Task<S3fsInstance> RemountAsync(S3fsInstance dead)
    {
        // A plain stat may still answer from FUSE's attribute cache for up to a second.
        Assert.Equal(Errno.ENOTCONN, Libc.StatForceSyncErrno(Staging));
        Assert.True(Libc.Unmount(Staging, detach: true));
        var second = await StartS3fsAsync();
        Assert.NotEqual(dead.Entry.Device, second.Entry.Device);
        _output.WriteLine($"dead connection {dead.Entry.Device}, new s3fs {second.Entry.Device}");
        return second;
    }

    private async Task<StandInContainer> StartContainerAsync(string name, params VolumeMountSpec[] mounts)
    {
        var container = await StandInContainer.StartAsync(name, mounts);
        _cleanup.Add(container);
        return container;
    }

    private void ReportTiming(IReadOnlyList<ContainerRepairResult> results, TimeSpan elapsed)
    {
        var namespaces = results.Select(r => r.MountNamespaceInode).Distinct().Count();
        _output.WriteLine($"RepairAsync: {results.Count} mounts in {namespaces} containers in {elapsed.TotalMilliseconds:F1} ms ({elapsed.TotalMilliseconds / Math.Max(1, namespaces):F1} ms per container, scan of /proc included)");
    }
}

using System.Diagnostics;
using System.Globalization;
using S3Supervisor.Supervisor.Mounts;
using S3Supervisor.TestKit;

namespace S3Supervisor.IntegrationTests.Cgroups;

/// <summary>
/// <see cref="ChildCgroups"/> against the kernel's real cgroups: every hierarchy mounted under
/// /sys/fs/cgroup, whatever the host has (the CI machine is cgroup v1 hybrid: nine v1 hierarchies
/// incl. name=systemd, and the cgroup2 "unified" mount without controllers). Each test works below its own parent (a <see cref="TestCgroup"/>
/// name, so an aborted run is swept) and checks with the test kit's own reading of cgroup.procs and
/// /proc/&lt;pid&gt;/cgroup. What the hybrid unified mount cannot offer (memory.max, memory.events) is
/// covered on a fake tree (ChildCgroupsFakeTreeTests).
/// </summary>
public sealed class ChildCgroupsTests : IAsyncLifetime
{
    private readonly List<Process> _processes = [];
    private TestCgroup? _parent;

    public async Task InitializeAsync()
    {
        if (Prerequisites.RootMissing() is null && Prerequisites.CgroupsMissing() is null)
        {
            _parent = await TestCgroup.TrackAsync("children");
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill();
                await process.WaitForExitAsync();
            }
            process.Dispose();
        }
        if (_parent is not null)
        {
            await _parent.DisposeAsync();
        }
    }

    private string ParentName => _parent!.Name;

    [SkippableFact]
    public async Task PlaceAsync_SleepProcess_InTheCgroupInEveryHierarchy()
    {
        Requires.Cgroups();
        var cgroups = new ChildCgroups(new ChildCgroupSettings(TestCgroup.Root, ParentName));
        var sleep = Start("sleep", "600");

        await cgroups.PlaceAsync("vol-a", sleep.Id, memoryMaxBytes: null);

        var mounts = TestCgroup.MountPoints();
        Assert.Equal(mounts, cgroups.Hierarchies.Select(h => h.MountPoint));
        // Each kind the host has is found as that kind (and none it lacks is made up).
        Assert.Equal(TestCgroup.UnifiedMountPoint() is not null, cgroups.Hierarchies.Any(h => h.Version == CgroupVersion.V2));
        Assert.Equal(TestCgroup.HasV1Hierarchy("name=systemd"), cgroups.Hierarchies.Any(h => h.Name == "name=systemd"));
        foreach (var mount in mounts)
        {
            Assert.Equal([Pid(sleep)], await File.ReadAllLinesAsync(Path.Combine(mount, ParentName, "vol-a", "cgroup.procs")));
        }
        var expected = $"/{ParentName}/vol-a";
        Assert.Equal(mounts.Count, TestCgroup.ProcCgroupLines(sleep.Id).Count(l => l.Split(':', 3)[2] == expected));
        Assert.True(await cgroups.ContainsAsync("vol-a", sleep.Id));
        Assert.False(await cgroups.ContainsAsync("vol-b", sleep.Id));
        Assert.Equal([sleep.Id], cgroups.Processes("vol-a"));

        // Again (a repeated stage, an adoption that re-places): nothing changes, nothing fails.
        await cgroups.PlaceAsync("vol-a", sleep.Id, memoryMaxBytes: null);
        Assert.True(await cgroups.ContainsAsync("vol-a", sleep.Id));
    }

    [SkippableFact]
    public async Task RemoveAsync_AfterTheChildExited_LeavesNoDirectoryInAnyHierarchy()
    {
        Requires.Cgroups();
        var cgroups = new ChildCgroups(new ChildCgroupSettings(TestCgroup.Root, ParentName));
        var sleep = Start("sleep", "600");
        await cgroups.PlaceAsync("vol-a", sleep.Id, memoryMaxBytes: 32L << 20);
        var directories = TestCgroup.MountPoints().Select(m => Path.Combine(m, ParentName, "vol-a")).ToList();
        Assert.All(directories, d => Assert.True(Directory.Exists(d), d));

        sleep.Kill();
        await sleep.WaitForExitAsync();
        await cgroups.RemoveAsync("vol-a");

        Assert.All(directories, d => Assert.False(Directory.Exists(d), d));
        Assert.False(await cgroups.ContainsAsync("vol-a", sleep.Id)); // gone, and so is the process
        await cgroups.RemoveAsync("vol-a"); // already gone: fine
        // The parent stays for the other volumes.
        Assert.All(TestCgroup.MountPoints(), m => Assert.True(Directory.Exists(Path.Combine(m, ParentName)), m));
    }

    [SkippableFact]
    public async Task RemoveAsync_ProcessStillInside_FailsNamingHierarchyPathAndPid()
    {
        Requires.Cgroups();
        var cgroups = new ChildCgroups(new ChildCgroupSettings(TestCgroup.Root, ParentName) { RemoveWait = TimeSpan.FromMilliseconds(200) });
        var sleep = Start("sleep", "600");
        await cgroups.PlaceAsync("vol-a", sleep.Id, memoryMaxBytes: null);

        var e = await Assert.ThrowsAsync<ChildCgroupException>(() => cgroups.RemoveAsync("vol-a"));

        var first = cgroups.Hierarchies[0];
        Assert.Equal(first.Name, e.Hierarchy);
        Assert.Equal(Path.Combine(first.MountPoint, ParentName, "vol-a"), e.Path);
        Assert.Contains($"rmdir failed: EBUSY", e.Message, StringComparison.Ordinal);
        Assert.EndsWith($"still holds pids {sleep.Id}", e.Message, StringComparison.Ordinal);
        Assert.True(await cgroups.ContainsAsync("vol-a", sleep.Id));
    }

    [SkippableFact]
    public async Task SetMemoryMax_32MiB_ReadsBackAndLiftsAgain()
    {
        Requires.Cgroups();
        var cgroups = new ChildCgroups(new ChildCgroupSettings(TestCgroup.Root, ParentName));
        Requires.Check(cgroups.MemoryHierarchy is null ? "no hierarchy under /sys/fs/cgroup offers the memory controller" : null);
        cgroups.Create("vol-a");

        cgroups.SetMemoryMax("vol-a", 32L << 20);

        Assert.Equal(32L << 20, cgroups.ReadMemoryMax("vol-a"));
        var memory = cgroups.MemoryHierarchy!;
        var file = memory.Version == CgroupVersion.V1 ? "memory.limit_in_bytes" : "memory.max";
        Assert.Equal("33554432", (await File.ReadAllTextAsync(Path.Combine(memory.MountPoint, ParentName, "vol-a", file))).Trim());
        Assert.Equal(0, cgroups.ReadOomKills("vol-a"));

        cgroups.SetMemoryMax("vol-a", null);
        Assert.Null(cgroups.ReadMemoryMax("vol-a"));
    }

    [SkippableFact]
    public async Task PlaceAsync_MemoryHogIn32MiB_IsOomKilledAloneAndCounted()
    {
        Requires.Cgroups();
        var cgroups = new ChildCgroups(new ChildCgroupSettings(TestCgroup.Root, ParentName));
        Requires.Check(cgroups.MemoryHierarchy is null ? "no hierarchy under /sys/fs/cgroup offers the memory controller" : null);
        var calm = Start("sleep", "600");
        await cgroups.PlaceAsync("vol-calm", calm.Id, 32L << 20);
        // The hog waits for a line on stdin, so it allocates only once it is in its cgroup:
        // tail of /dev/zero keeps the never-ending first line in memory (about 450 MB/s here).
        var hog = Start(redirectInput: true, "/bin/sh", "-c", "read -r go; exec tail /dev/zero");
        await cgroups.PlaceAsync("vol-hog", hog.Id, 32L << 20);
        Assert.Equal(0, cgroups.ReadOomKills("vol-hog"));

        await hog.StandardInput.WriteLineAsync("go");
        await hog.StandardInput.FlushAsync();
        using (var timeout = new CancellationTokenSource(Eventually.DefaultTimeout))
        {
            await hog.WaitForExitAsync(timeout.Token);
        }

        Assert.Equal(128 + 9, hog.ExitCode); // SIGKILL from the OOM killer
        Assert.Equal(1, cgroups.ReadOomKills("vol-hog"));
        Assert.Equal(0, cgroups.ReadOomKills("vol-calm"));
        Assert.True(ProcessInfo.IsRunning(calm.Id), "the other volume's child must survive");
        Assert.True(await cgroups.ContainsAsync("vol-calm", calm.Id));
    }

    [SkippableFact]
    public async Task PlaceAsync_Cgroup2TreeAsTheRoot_UsesTheUnifiedHierarchyAlone()
    {
        Requires.Cgroups();
        var unified = TestCgroup.UnifiedMountPoint() ?? "";
        Requires.Check(unified.Length == 0 ? "no cgroup2 mount at or under /sys/fs/cgroup" : null);
        // The cgroup v2 code path: a root that holds only the cgroup2 tree, as on a unified host.
        var cgroups = new ChildCgroups(new ChildCgroupSettings(unified, ParentName));
        var sleep = Start("sleep", "600");
        var before = TestCgroup.ProcCgroupLines(sleep.Id).Where(l => !l.StartsWith("0::", StringComparison.Ordinal)).ToList();

        await cgroups.PlaceAsync("vol-a", sleep.Id, memoryMaxBytes: null);

        var hierarchy = Assert.Single(cgroups.Hierarchies);
        Assert.Equal(CgroupVersion.V2, hierarchy.Version);
        Assert.Equal(unified, hierarchy.MountPoint);
        Assert.Equal([Pid(sleep)], await File.ReadAllLinesAsync(Path.Combine(unified, ParentName, "vol-a", "cgroup.procs")));
        var lines = TestCgroup.ProcCgroupLines(sleep.Id);
        Assert.Contains($"0::/{ParentName}/vol-a", lines);
        Assert.Equal(before, lines.Where(l => !l.StartsWith("0::", StringComparison.Ordinal))); // v1 hierarchies untouched
        Assert.True(await cgroups.ContainsAsync("vol-a", sleep.Id));

        if (cgroups.MemoryHierarchy is null)
        {
            // Hybrid: memory is bound to v1, so the unified tree has no memory.max to write.
            var e = Assert.Throws<ChildCgroupException>(() => cgroups.SetMemoryMax("vol-a", 32L << 20));
            Assert.Contains($"no cgroup hierarchy under {unified} offers the memory controller", e.Message, StringComparison.Ordinal);
        }
        else
        {
            cgroups.SetMemoryMax("vol-a", 32L << 20);
            Assert.Equal(32L << 20, cgroups.ReadMemoryMax("vol-a"));
            Assert.Contains("memory", (await File.ReadAllTextAsync(Path.Combine(unified, ParentName, "cgroup.subtree_control"))).Split(' ', '\n'));
        }

        sleep.Kill();
        await sleep.WaitForExitAsync();
        await cgroups.RemoveAsync("vol-a");
        Assert.False(Directory.Exists(Path.Combine(unified, ParentName, "vol-a")));
    }

    [SkippableFact]
    public async Task MoveAsync_CgroupNotCreated_FailsNamingHierarchyAndPath()
    {
        Requires.Cgroups();
        var cgroups = new ChildCgroups(new ChildCgroupSettings(TestCgroup.Root, ParentName));
        var sleep = Start("sleep", "600");

        var e = await Assert.ThrowsAsync<ChildCgroupException>(() => cgroups.MoveAsync("never-made", sleep.Id));

        var first = cgroups.Hierarchies[0];
        Assert.Equal(first.Name, e.Hierarchy);
        Assert.Equal(Path.Combine(first.MountPoint, ParentName, "never-made", "cgroup.procs"), e.Path);
        Assert.Contains($"move pid {sleep.Id} failed: ENOENT", e.Message, StringComparison.Ordinal);
        Assert.Contains("the cgroup does not exist", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task PlaceAsync_OwnCgroupNamespaceIsNotPid1s_WorksFromAThreadInPid1s()
    {
        Requires.Cgroups();
        // Where pid 1's cgroup namespace is not this process's (a container on cgroup v2 with
        // hostPID), moves and checks run on a thread that entered pid 1's. This machine shares
        // pid 1's namespace, so a procfs view says otherwise: "self" points at the namespace of a
        // process in a namespace of its own, "1" at this process's (the host's) namespace, which
        // the thread then enters for real (setns(CLONE_NEWCGROUP)).
        var other = Start("unshare", "--cgroup", "sleep", "600");
        await Eventually.WaitAsync(() => Inode($"/proc/{other.Id}/ns/cgroup") != Inode("/proc/self/ns/cgroup"), Eventually.DefaultTimeout, "unshare --cgroup to enter a new cgroup namespace");
        var sleep = Start("sleep", "600");
        var proc = Directory.CreateTempSubdirectory("s3sv-fakeproc-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(proc, "self", "ns"));
            Directory.CreateDirectory(Path.Combine(proc, "1", "ns"));
            File.CreateSymbolicLink(Path.Combine(proc, "self", "ns", "cgroup"), $"/proc/{other.Id}/ns/cgroup");
            File.CreateSymbolicLink(Path.Combine(proc, "self", "mountinfo"), "/proc/self/mountinfo");
            File.CreateSymbolicLink(Path.Combine(proc, "1", "ns", "cgroup"), $"/proc/{Environment.ProcessId}/ns/cgroup");
            File.CreateSymbolicLink(Path.Combine(proc, "cgroups"), "/proc/cgroups");
            Directory.CreateSymbolicLink(Path.Combine(proc, Pid(sleep)), $"/proc/{sleep.Id}");
            var cgroups = new ChildCgroups(new ChildCgroupSettings(TestCgroup.Root, ParentName) { ProcRoot = proc });

            await cgroups.PlaceAsync("vol-a", sleep.Id, memoryMaxBytes: null);

            Assert.True(cgroups.UsesHostCgroupNamespace);
            Assert.Equal(TestCgroup.MountPoints(), cgroups.Hierarchies.Select(h => h.MountPoint));
            foreach (var mount in TestCgroup.MountPoints())
            {
                Assert.Equal([Pid(sleep)], await File.ReadAllLinesAsync(Path.Combine(mount, ParentName, "vol-a", "cgroup.procs")));
            }
            Assert.True(await cgroups.ContainsAsync("vol-a", sleep.Id));
            var e = await Assert.ThrowsAsync<ChildCgroupException>(() => cgroups.MoveAsync("never-made", sleep.Id));
            Assert.Contains($"move pid {sleep.Id} failed: ENOENT", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(proc, recursive: true);
        }
    }

    private static ulong Inode(string path) =>
        S3Supervisor.Supervisor.Interop.Libc.StatIdentity(path, out _, out var inode) == 0 ? inode : 0;

    private Process Start(string file, params string[] arguments) => Start(redirectInput: false, file, arguments);

    private Process Start(bool redirectInput, string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardInput = redirectInput, RedirectStandardOutput = true };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        _processes.Add(process);
        return process;
    }

    private static string Pid(Process process) => process.Id.ToString(CultureInfo.InvariantCulture);
}

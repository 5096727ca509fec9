using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Tests.Mounts;

/// <summary>
/// <see cref="ChildCgroups"/> on fake cgroup trees (plain directories and files, a fake procfs): the
/// cgroup v2 memory files this machine's hybrid unified mount cannot offer (memory.max, memory.events,
/// +memory delegation), v1 file formats, cpuset inheritance, and the errors for a missing or
/// container-only cgroup mount. The real kernel is in the integration tests (ChildCgroupsTests).
/// </summary>
public sealed class ChildCgroupsFakeTreeTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "s3sup-fakecg-" + Guid.NewGuid().ToString("N")[..12]);

    public ChildCgroupsFakeTreeTests()
    {
        Directory.CreateDirectory(Path.Combine(_root, "proc", "self"));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Proc => Path.Combine(_root, "proc");

    private string Cgroups => Path.Combine(_root, "cg");

    [Fact]
    public void Create_V2WithMemory_DelegatesMemoryAtTheRootAndTheParent()
    {
        var tree = UnifiedTree(rootSubtreeControl: "cpu");
        Write(Cgroups, "s3supervisor/cgroup.subtree_control", "");

        tree.Create("vol");

        Assert.Equal("+memory", Read("s3supervisor/cgroup.subtree_control"));
        Assert.Equal("+memory", Read("cgroup.subtree_control"));
        var hierarchy = Assert.Single(tree.Hierarchies);
        Assert.Equal(CgroupVersion.V2, hierarchy.Version);
        Assert.Equal("cgroup2", hierarchy.Name);
        Assert.Same(hierarchy, tree.MemoryHierarchy);
    }

    [Fact]
    public void Create_V2MemoryAlreadyDelegated_WritesNothing()
    {
        var tree = UnifiedTree(rootSubtreeControl: "cpu memory");
        Write(Cgroups, "s3supervisor/cgroup.subtree_control", "memory");

        tree.Create("vol");

        Assert.Equal("cpu memory", Read("cgroup.subtree_control"));
        Assert.Equal("memory", Read("s3supervisor/cgroup.subtree_control"));
    }

    [Fact]
    public void SetMemoryMax_V2_WritesMemoryMaxAndMaxForNone()
    {
        var tree = UnifiedTree();

        tree.SetMemoryMax("vol", 32L << 20);
        Assert.Equal("33554432", Read("s3supervisor/vol/memory.max"));
        Assert.Equal(32L << 20, tree.ReadMemoryMax("vol"));

        tree.SetMemoryMax("vol", null);
        Assert.Equal("max", Read("s3supervisor/vol/memory.max"));
        Assert.Null(tree.ReadMemoryMax("vol"));
    }

    [Fact]
    public void ReadOomKills_V2_ReadsOomKillOfMemoryEvents()
    {
        var tree = UnifiedTree();
        Write(Cgroups, "s3supervisor/vol/memory.events", "low 0\nhigh 0\nmax 17\noom 3\noom_kill 2\noom_group_kill 0\n");

        Assert.Equal(2, tree.ReadOomKills("vol"));
    }

    [Fact]
    public async Task MoveAsync_V2_WritesThePidToCgroupProcs()
    {
        var tree = UnifiedTree();

        await tree.MoveAsync("vol", 4242);

        Assert.Equal("4242", Read("s3supervisor/vol/cgroup.procs"));
    }

    [Fact]
    public async Task ContainsAsync_V2_ReadsTheZeroLineOfProcPidCgroup()
    {
        var tree = UnifiedTree();
        Write(Proc, "4242/cgroup", "0::/s3supervisor/vol\n");
        Write(Proc, "4343/cgroup", "0::/kubepods/pod1/supervisor\n");

        Assert.True(await tree.ContainsAsync("vol", 4242));
        Assert.False(await tree.ContainsAsync("other", 4242));
        Assert.False(await tree.ContainsAsync("vol", 4343));
        Assert.False(await tree.ContainsAsync("vol", 4444)); // gone
    }

    [Fact]
    public void SetMemoryMax_V2WithoutMemoryController_FailsNamingTheRoot()
    {
        var tree = UnifiedTree(controllers: "cpu pids");

        tree.SetMemoryMax("vol", null); // nothing asked, nothing to do
        var e = Assert.Throws<ChildCgroupException>(() => tree.SetMemoryMax("vol", 32L << 20));

        Assert.Null(tree.MemoryHierarchy);
        Assert.Contains("no cgroup hierarchy under " + Cgroups + " offers the memory controller", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Hierarchies_V1_NamedByControllersNotMountOptions()
    {
        var tree = V1Tree();

        Assert.Equal(
            ["blkio", "cpu,cpuacct", "cpuset", "memory", "name=systemd", "cgroup2"],
            tree.Hierarchies.Select(h => h.Name));
        Assert.Equal(Path.Combine(Cgroups, "memory"), tree.MemoryHierarchy?.MountPoint);
    }

    [Fact]
    public void Create_V1Cpuset_InheritsCpusAndMemsLevelByLevel()
    {
        var tree = V1Tree();

        tree.Create("vol");

        Assert.Equal("0-3", Read("cpuset/s3supervisor/cpuset.cpus"));
        Assert.Equal("0", Read("cpuset/s3supervisor/cpuset.mems"));
        Assert.Equal("0-3", Read("cpuset/s3supervisor/vol/cpuset.cpus"));
        Assert.Equal("0", Read("cpuset/s3supervisor/vol/cpuset.mems"));
        Assert.True(Directory.Exists(Path.Combine(Cgroups, "systemd", "s3supervisor", "vol")));
        Assert.True(Directory.Exists(Path.Combine(Cgroups, "unified", "s3supervisor", "vol")));
    }

    [Fact]
    public void SetMemoryMax_V1_WritesLimitInBytesAndMinusOneForNone()
    {
        var tree = V1Tree();

        tree.SetMemoryMax("vol", 32L << 20);
        Assert.Equal("33554432", Read("memory/s3supervisor/vol/memory.limit_in_bytes"));

        tree.SetMemoryMax("vol", null);
        Assert.Equal("-1", Read("memory/s3supervisor/vol/memory.limit_in_bytes"));
        Write(Cgroups, "memory/s3supervisor/vol/memory.limit_in_bytes", "9223372036854771712\n"); // what the kernel shows then
        Assert.Null(tree.ReadMemoryMax("vol"));
    }

    [Fact]
    public void ReadOomKills_V1_ReadsOomKillOfOomControl()
    {
        var tree = V1Tree();
        Write(Cgroups, "memory/s3supervisor/vol/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n");

        Assert.Equal(5, tree.ReadOomKills("vol"));
    }

    [Fact]
    public async Task ContainsAsync_V1_EveryHierarchyMustMatch()
    {
        var tree = V1Tree();
        var inside = "9:name=systemd:/s3supervisor/vol\n8:blkio:/s3supervisor/vol\n4:memory:/s3supervisor/vol\n3:cpuset:/s3supervisor/vol\n2:cpu,cpuacct:/s3supervisor/vol\n0::/s3supervisor/vol\n";
        Write(Proc, "4242/cgroup", inside);
        Write(Proc, "4343/cgroup", inside.Replace("9:name=systemd:/s3supervisor/vol", "9:name=systemd:/kubepods/pod1", StringComparison.Ordinal));

        Assert.True(await tree.ContainsAsync("vol", 4242));
        Assert.False(await tree.ContainsAsync("vol", 4343));
    }

    [Fact]
    public void Hierarchies_NoCgroupMount_FailsNamingTheRoot()
    {
        Write(Proc, "self/mountinfo", "23 1 0:21 / /sys rw - sysfs sysfs rw\n");
        var tree = new ChildCgroups(new ChildCgroupSettings(Cgroups) { ProcRoot = Proc });

        var e = Assert.Throws<ChildCgroupException>(() => tree.Create("vol"));

        Assert.Equal(Cgroups, e.Path);
        Assert.Contains($"no cgroup hierarchy is mounted at or below {Cgroups} (Supervisor:CgroupRoot)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Hierarchies_ContainerOwnSubtree_FailsNamingTheMount()
    {
        Directory.CreateDirectory(Cgroups);
        Write(Proc, "self/mountinfo", $"41 31 0:38 /kubepods/pod1/abc {Cgroups} rw,nosuid - cgroup2 cgroup2 rw\n");
        var tree = new ChildCgroups(new ChildCgroupSettings(Cgroups) { ProcRoot = Proc });

        var e = Assert.Throws<ChildCgroupException>(() => tree.Hierarchies);

        Assert.Equal("cgroup2", e.Hierarchy);
        Assert.Contains($"the cgroup2 hierarchy at {Cgroups} is mounted from /kubepods/pod1/abc", e.Message, StringComparison.Ordinal);
        Assert.Contains("Supervisor:CgroupRoot", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_MkdirFails_NamesHierarchyPathAndErrno()
    {
        UnifiedTree(controllers: "cpu pids");
        File.WriteAllText(Path.Combine(Cgroups, "s3supervisor", "blocker"), "a file where a directory must be");
        var tree = new ChildCgroups(new ChildCgroupSettings(Cgroups, "s3supervisor/blocker") { ProcRoot = Proc });

        var e = Assert.Throws<ChildCgroupException>(() => tree.Create("vol"));

        Assert.Equal("cgroup2", e.Hierarchy);
        Assert.Equal(Path.Combine(Cgroups, "s3supervisor", "blocker", "vol"), e.Path);
        Assert.Equal($"cgroup cgroup2 {Cgroups}/s3supervisor/blocker/vol: mkdir failed: ENOTDIR (Not a directory)", e.Message);
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("a/../b")]
    [InlineData("/s3supervisor")]
    [InlineData("s3supervisor/")]
    [InlineData("a//b")]
    [InlineData("a/./b")]
    [InlineData("with space")]
    [InlineData("")]
    public void ParentProblem_NotAPlainRelativePath_Named(string parent)
    {
        Assert.NotNull(ChildCgroupSettings.ParentProblem(parent));
        Assert.Throws<ArgumentException>(() => new ChildCgroupSettings(parent: parent));
    }

    [Theory]
    [InlineData("s3supervisor")]
    [InlineData("kubepods.slice/s3-supervisor_children")]
    public void ParentProblem_PlainRelativePath_None(string parent) => Assert.Null(ChildCgroupSettings.ParentProblem(parent));

    [Fact]
    public void ParseProcCgroup_SortsControllersAsHierarchiesDo()
    {
        var paths = ChildCgroups.ParseProcCgroup("12:cpuacct,cpu:/a\n1:name=systemd:/b:c\n0::/d\n");

        Assert.Equal("/a", paths["cpu,cpuacct"]);
        Assert.Equal("/b:c", paths["name=systemd"]);
        Assert.Equal("/d", paths[""]);
    }

    /// <summary>A pure cgroup2 tree at cg/ with vol already made (the kernel would make its files).</summary>
    private ChildCgroups UnifiedTree(string controllers = "cpu memory pids", string rootSubtreeControl = "")
    {
        Write(Proc, "self/mountinfo", $"23 1 0:21 / /sys rw - sysfs sysfs rw\n41 23 0:38 / {Cgroups} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n");
        Write(Cgroups, "cgroup.controllers", controllers + "\n");
        Write(Cgroups, "cgroup.subtree_control", rootSubtreeControl);
        Write(Cgroups, "s3supervisor/cgroup.subtree_control", "memory");
        Write(Cgroups, "s3supervisor/vol/memory.max", "max\n");
        Write(Cgroups, "s3supervisor/vol/cgroup.procs", "");
        return new ChildCgroups(new ChildCgroupSettings(Cgroups) { ProcRoot = Proc });
    }

    /// <summary>A hybrid tree as on this machine: v1 hierarchies (one of two controllers, a named one) and an empty unified mount.</summary>
    private ChildCgroups V1Tree()
    {
        Write(Proc, "cgroups", "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\ncpu\t1\t1\t1\ncpuacct\t1\t1\t1\nblkio\t7\t1\t1\nmemory\t4\t1\t1\n");
        Write(Proc, "self/mountinfo", string.Join('\n',
            $"31 23 0:28 / {Cgroups} rw - tmpfs tmpfs rw,mode=755",
            $"32 31 0:29 / {Cgroups}/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct",
            $"34 31 0:31 / {Cgroups}/cpuset rw - cgroup cgroup rw,cpuset,clone_children",
            $"35 31 0:32 / {Cgroups}/memory rw - cgroup cgroup rw,memory",
            $"38 31 0:35 / {Cgroups}/blkio rw - cgroup cgroup rw,blkio",
            $"40 31 0:37 / {Cgroups}/systemd rw - cgroup cgroup rw,xattr,release_agent=/lib/systemd/x,name=systemd",
            $"41 31 0:38 / {Cgroups}/unified rw - cgroup2 cgroup2 rw",
            $"42 35 0:32 /s3supervisor {Cgroups}/memory/s3supervisor rw - cgroup cgroup rw,memory") + "\n");
        foreach (var mount in new[] { "cpu,cpuacct", "memory", "blkio", "systemd" })
        {
            Directory.CreateDirectory(Path.Combine(Cgroups, mount));
        }
        Write(Cgroups, "unified/cgroup.controllers", "\n");
        Write(Cgroups, "cpuset/cpuset.cpus", "0-3\n");
        Write(Cgroups, "cpuset/cpuset.mems", "0\n");
        Write(Cgroups, "cpuset/s3supervisor/cpuset.cpus", "\n");
        Write(Cgroups, "cpuset/s3supervisor/cpuset.mems", "\n");
        Write(Cgroups, "cpuset/s3supervisor/vol/cpuset.cpus", "\n");
        Write(Cgroups, "cpuset/s3supervisor/vol/cpuset.mems", "\n");
        Write(Cgroups, "memory/s3supervisor/vol/memory.limit_in_bytes", "9223372036854771712\n");
        return new ChildCgroups(new ChildCgroupSettings(Cgroups) { ProcRoot = Proc });
    }

    private static void Write(string root, string relative, string content)
    {
        var path = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    private string Read(string relative) => File.ReadAllText(Path.Combine(Cgroups, relative));
}

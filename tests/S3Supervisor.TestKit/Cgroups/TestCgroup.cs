using System.Globalization;
using S3Supervisor.TestKit.Interop;

namespace S3Supervisor.TestKit;

/// <summary>
/// A cgroup a test owns, <c>&lt;hierarchy&gt;/&lt;name&gt;</c> in every hierarchy mounted at or directly under
/// /sys/fs/cgroup (v1 controllers, named ones such as name=systemd, the cgroup2 tree). It stands in
/// for a container runtime's cgroups (the stand-in supervisor container) or tracks a parent the
/// code under test fills (<see cref="TrackAsync"/>). Written apart from the supervisor's own
/// <c>ChildCgroups</c> on purpose: it is the tests' oracle.
/// </summary>
/// <remarks>
/// Names are <c>s3sv-test-&lt;pid&gt;-&lt;starttime&gt;-&lt;purpose&gt;-&lt;key&gt;</c>, the owner test process by pid and
/// start time (the key random, or one the caller derives, as the per-volume parent of a test supervisor
/// does from its layout), so that scripts/sweep-test-dirs.sh (run before every test run and by the watchdog
/// when a test process dies) kills what is left inside a dead owner's cgroups and removes them.
/// Dispose does the same at once: SIGKILL to every process in the tree until none is left, then
/// rmdir deepest first in every hierarchy.
/// </remarks>
public sealed class TestCgroup : IAsyncDisposable
{
    public const string Prefix = "s3sv-test-";

    /// <summary>Where the host's hierarchies are mounted on the machines the tests run on.</summary>
    public const string Root = "/sys/fs/cgroup";

    private int disposed;

    private TestCgroup(string name) => Name = name;

    /// <summary>The cgroup's name, the same in every hierarchy (one path segment).</summary>
    public string Name { get; }

    /// <summary>Its directory in every hierarchy.</summary>
    public IReadOnlyList<string> Directories => MountPoints().Select(m => Path.Combine(m, Name)).ToList();

    /// <summary>A name no other test (or test process) uses, carrying this process's pid and start time for the sweep.</summary>
    public static string UniqueName(string purpose) => NameFor(purpose, Guid.NewGuid().ToString("N")[..8]);

    /// <summary>
    /// The name for <paramref name="purpose"/> and <paramref name="key"/> in this test process, the same on
    /// every call: <c>s3sv-test-&lt;pid&gt;-&lt;starttime&gt;-&lt;purpose&gt;-&lt;key&gt;</c>, so that what finds a cgroup
    /// again (a restarted supervisor, its predecessor's children) and the sweep agree on it.
    /// </summary>
    public static string NameFor(string purpose, string key)
    {
        if (!IsToken(purpose))
        {
            throw new ArgumentException("use 1-16 of [a-z0-9]", nameof(purpose));
        }
        if (!IsToken(key))
        {
            throw new ArgumentException("use 1-16 of [a-z0-9]", nameof(key));
        }
        var self = System.Environment.ProcessId;
        return string.Create(CultureInfo.InvariantCulture, $"{Prefix}{self}-{ProcessInfo.StartTime(self)}-{purpose}-{key}");
    }

    /// <summary>The test cgroup called <paramref name="name"/> (one of <see cref="NameFor"/>'s), whether or not it exists: to kill what is inside and remove it.</summary>
    public static TestCgroup For(string name)
    {
        if (!name.StartsWith(Prefix, StringComparison.Ordinal) || name.Contains('/', StringComparison.Ordinal) || name.Length > 255)
        {
            throw new ArgumentException($"'{name}' is not a test cgroup name ({Prefix}..., one path segment)", nameof(name));
        }
        return new TestCgroup(name);
    }

    private static bool IsToken(string value) => value.Length is > 0 and <= 16 && value.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c));

    /// <summary>Mount points of every cgroup hierarchy at or directly under <see cref="Root"/>, from this process's mountinfo.</summary>
    public static IReadOnlyList<string> MountPoints() =>
        MountTable.Read()
            .Where(m => m.FileSystemType is "cgroup" or "cgroup2" && (m.MountPoint == Root || Path.GetDirectoryName(m.MountPoint) == Root))
            .Select(m => m.MountPoint)
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();

    /// <summary>The mount point of the cgroup2 tree (/sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup on a unified one), or null.</summary>
    public static string? UnifiedMountPoint() =>
        MountTable.Read()
            .LastOrDefault(m => m.FileSystemType == "cgroup2" && (m.MountPoint == Root || Path.GetDirectoryName(m.MountPoint) == Root))
            ?.MountPoint;

    /// <summary>
    /// Whether a v1 hierarchy at or directly under <see cref="Root"/> carries <paramref name="option"/>
    /// among its mount options: a controller (memory, cpuset) or a name (name=systemd).
    /// </summary>
    public static bool HasV1Hierarchy(string option) => V1Hierarchy(option) is not null;

    /// <summary>
    /// The mount point of the hierarchy that limits memory: the v1 memory hierarchy, else the cgroup2
    /// tree when its root offers the memory controller (a unified host), else null.
    /// </summary>
    public static string? MemoryMountPoint()
    {
        if (V1Hierarchy("memory") is { } v1)
        {
            return v1;
        }
        var unified = UnifiedMountPoint();
        var controllers = unified is null ? null : Path.Combine(unified, "cgroup.controllers");
        return controllers is not null && File.Exists(controllers) && File.ReadAllText(controllers).Split(' ', '\n').Contains("memory") ? unified : null;
    }

    private static string? V1Hierarchy(string option) =>
        MountTable.Read()
            .FirstOrDefault(m => m.FileSystemType == "cgroup" && (m.MountPoint == Root || Path.GetDirectoryName(m.MountPoint) == Root) && m.SuperOptions.Split(',').Contains(option))
            ?.MountPoint;

    /// <summary>Makes a fresh cgroup in every hierarchy (v1 cpuset gets its parent's cpus and mems). Also starts the test-process watchdog that sweeps it if this process dies.</summary>
    public static async Task<TestCgroup> CreateAsync(string purpose)
    {
        await ScratchDirectory.EnsureGuardAsync(CancellationToken.None).ConfigureAwait(false);
        var cgroup = new TestCgroup(UniqueName(purpose));
        foreach (var mount in MountPoints())
        {
            var directory = Path.Combine(mount, cgroup.Name);
            Directory.CreateDirectory(directory);
            foreach (var file in new[] { "cpuset.cpus", "cpuset.mems" })
            {
                var own = Path.Combine(directory, file);
                if (File.Exists(own) && File.ReadAllText(own).Trim().Length == 0)
                {
                    File.WriteAllText(own, File.ReadAllText(Path.Combine(mount, file)).Trim());
                }
            }
        }
        return cgroup;
    }

    /// <summary>A name for a cgroup the code under test will make (a parent for its children), removed with everything inside on dispose.</summary>
    public static async Task<TestCgroup> TrackAsync(string purpose)
    {
        await ScratchDirectory.EnsureGuardAsync(CancellationToken.None).ConfigureAwait(false);
        return new TestCgroup(UniqueName(purpose));
    }

    /// <summary>Moves <paramref name="pid"/> into this cgroup in every hierarchy.</summary>
    public void Join(int pid)
    {
        foreach (var directory in Directories)
        {
            File.WriteAllText(Path.Combine(directory, "cgroup.procs"), pid.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>The cgroup.procs files of this cgroup, one per hierarchy (what a process writes its pid to in order to join).</summary>
    public IReadOnlyList<string> ProcsFiles => Directories.Select(d => Path.Combine(d, "cgroup.procs")).ToList();

    /// <summary>Every pid in this cgroup and the cgroups below it, in any hierarchy.</summary>
    public IReadOnlyList<int> Pids()
    {
        var pids = new SortedSet<int>();
        foreach (var directory in Directories.Where(Directory.Exists))
        {
            foreach (var procs in Directory.EnumerateFiles(directory, "cgroup.procs", SearchOption.AllDirectories))
            {
                try
                {
                    foreach (var line in File.ReadAllLines(procs))
                    {
                        pids.Add(int.Parse(line, CultureInfo.InvariantCulture));
                    }
                }
                catch (IOException)
                {
                    // removed meanwhile
                }
            }
        }
        return [.. pids];
    }

    /// <summary>
    /// What a container runtime does to a dead container (runc kill --all): SIGKILL to every process in
    /// the cgroup, again and again until cgroup.procs is empty everywhere (a process may fork while the
    /// first round runs). Throws if something is still there after <paramref name="timeout"/>.
    /// </summary>
    public async Task KillAllAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            var pids = Pids();
            if (pids.Count == 0)
            {
                return;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"cgroup {Name} still holds pids {string.Join(' ', pids)} after SIGKILL");
            }
            foreach (var pid in pids)
            {
                Native.Kill(pid, Native.SIGKILL);
            }
            await Task.Delay(10).ConfigureAwait(false);
        }
    }

    /// <summary>Removes the cgroup and every cgroup below it in every hierarchy, deepest first (they must be empty: see <see cref="KillAllAsync"/>).</summary>
    public async Task RemoveAsync()
    {
        foreach (var directory in Directories.Where(Directory.Exists))
        {
            var all = Directory.EnumerateDirectories(directory, "*", SearchOption.AllDirectories).Append(directory)
                .OrderByDescending(d => d.Length)
                .ToList();
            foreach (var cgroup in all)
            {
                // A process killed a moment ago may still be leaving.
                for (var attempt = 0; ; attempt++)
                {
                    try
                    {
                        Directory.Delete(cgroup);
                        break;
                    }
                    catch (DirectoryNotFoundException)
                    {
                        break;
                    }
                    catch (IOException) when (attempt < 100)
                    {
                        await Task.Delay(20).ConfigureAwait(false);
                    }
                }
            }
        }
    }

    /// <summary>True when the cgroup exists in no hierarchy.</summary>
    public bool IsGone => Directories.All(d => !Directory.Exists(d));

    /// <summary>The lines of /proc/&lt;pid&gt;/cgroup ("id:controllers:path"), for assertions.</summary>
    public static IReadOnlyList<string> ProcCgroupLines(int pid) =>
        File.ReadAllLines($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/cgroup").Where(l => l.Length > 0).ToList();

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }
        await KillAllAsync().ConfigureAwait(false);
        await RemoveAsync().ConfigureAwait(false);
    }
}

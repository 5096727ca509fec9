using System.Globalization;
using S3Supervisor.Supervisor.Interop;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// One cgroup per volume for its s3fs, outside the supervisor container's cgroups, in every
/// hierarchy of the host's tree: <c>&lt;hierarchy&gt;/&lt;parent&gt;/&lt;name&gt;</c>. A container runtime
/// that kills the supervisor's container kills what is in the container's cgroups (runc's kill --all
/// reads cgroup.procs), so a child moved out of all of them outlives it (measured with podman and
/// runc: a child left in any one of them dies). The same cgroup carries the volume's memory limit,
/// so a runaway s3fs is OOM-killed alone.
/// </summary>
/// <remarks>
/// Hierarchies are found in mountinfo under <see cref="ChildCgroupSettings.CgroupRoot"/> (its mount
/// point or one level below): every v1 controller hierarchy, named ones such as name=systemd, and a
/// cgroup2 mount (the whole tree on a unified host, /sys/fs/cgroup/unified on a hybrid one). Each
/// must be mounted from its root: a container's own view of its sub-tree would put the "outside"
/// cgroup inside the container. When this process is in a private cgroup namespace and
/// /proc/1/ns/cgroup (hostPID) is another one, mountinfo, /proc/&lt;pid&gt;/cgroup and every move are
/// read and done from a thread in that namespace (<see cref="CgroupNamespaceThread"/>): the kernel
/// refuses to move a pid to a cgroup2 cgroup outside the mover's namespace root.
/// The parent is never removed: other volumes share it.
/// </remarks>
public sealed partial class ChildCgroups
{
    private const string Procs = "cgroup.procs";
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private Topology? _topology;

    public ChildCgroups(ChildCgroupSettings settings, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        Settings = settings;
        _time = time ?? TimeProvider.System;
    }

    public ChildCgroupSettings Settings { get; }

    /// <summary>Every hierarchy a child joins, found on first use (then kept). Throws <see cref="ChildCgroupException"/> when there is none or one is unusable.</summary>
    public IReadOnlyList<CgroupHierarchy> Hierarchies => Discover().Hierarchies;

    /// <summary>The hierarchy that limits memory: the v1 memory hierarchy, else cgroup2 when its root offers memory, else null.</summary>
    public CgroupHierarchy? MemoryHierarchy => Discover().Memory;

    /// <summary>True when moves and membership checks go through the host's cgroup namespace (see the remarks).</summary>
    public bool UsesHostCgroupNamespace => Discover().HostNamespace;

    /// <summary>The directory of cgroup <paramref name="name"/> in <paramref name="hierarchy"/>.</summary>
    public string PathOf(CgroupHierarchy hierarchy, string name)
    {
        ArgumentNullException.ThrowIfNull(hierarchy);
        CheckName(name);
        return Path.Combine(hierarchy.MountPoint, Settings.Parent, name);
    }

    /// <summary>Whether <paramref name="name"/> can name a child cgroup (one plain directory name, e.g. <see cref="CredentialStore.FileName"/>).</summary>
    public static bool IsValidName(string name) => ChildCgroupSettings.IsPlainName(name);

    /// <summary>
    /// Makes <c>&lt;parent&gt;/&lt;name&gt;</c> in every hierarchy; what exists already is kept (idempotent).
    /// v1 cpuset: each new level gets its parent's cpuset.cpus and cpuset.mems, without which no pid
    /// may join (ENOSPC). cgroup2 with memory: +memory in the subtree_control of the root and of each
    /// parent level, so that the child has memory.max.
    /// </summary>
    public void Create(string name)
    {
        CheckName(name);
        var topology = Discover();
        var segments = Settings.Parent.Split('/').Append(name).ToArray();
        foreach (var hierarchy in topology.Hierarchies)
        {
            var delegateMemory = hierarchy == topology.Memory && hierarchy.Version == CgroupVersion.V2;
            var cpuset = hierarchy.Version == CgroupVersion.V1 && hierarchy.Controllers.Contains("cpuset");
            var directory = hierarchy.MountPoint;
            foreach (var segment in segments)
            {
                if (delegateMemory)
                {
                    DelegateMemory(hierarchy, directory);
                }
                var above = directory;
                directory = Path.Combine(directory, segment);
                var error = Libc.MakeDirectoryErrno(directory);
                if (error != 0 && error != Errno.EEXIST)
                {
                    throw Failure(hierarchy, directory, "mkdir", error);
                }
                if (cpuset)
                {
                    InheritCpuset(hierarchy, above, directory);
                }
            }
        }
    }

    /// <summary>
    /// Sets the memory limit of cgroup <paramref name="name"/> (made already): v1 memory.limit_in_bytes,
    /// cgroup2 memory.max; null lifts it (-1, max). Without a memory controller a limit is an error and
    /// null is nothing to do.
    /// </summary>
    public void SetMemoryMax(string name, long? bytes)
    {
        if (bytes is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "a memory limit must be positive (null: no limit)");
        }
        var memory = Discover().Memory;
        if (memory is null)
        {
            if (bytes is null)
            {
                return;
            }
            throw new ChildCgroupException(
                $"no cgroup hierarchy under {Settings.CgroupRoot} offers the memory controller, so the memory limit of {bytes} bytes for '{name}' cannot be applied",
                null,
                Settings.CgroupRoot);
        }
        var v1 = memory.Version == CgroupVersion.V1;
        var file = Path.Combine(PathOf(memory, name), v1 ? "memory.limit_in_bytes" : "memory.max");
        var value = bytes?.ToString(CultureInfo.InvariantCulture) ?? (v1 ? "-1" : "max");
        var error = Libc.WriteControlFileErrno(file, value);
        if (error != 0)
        {
            throw Failure(memory, file, $"write {value}", error);
        }
    }

    /// <summary>The memory limit of cgroup <paramref name="name"/> as the kernel keeps it (v1 rounds down to pages), null when there is none or no memory controller.</summary>
    public long? ReadMemoryMax(string name)
    {
        var memory = Discover().Memory;
        if (memory is null)
        {
            return null;
        }
        var v1 = memory.Version == CgroupVersion.V1;
        var file = Path.Combine(PathOf(memory, name), v1 ? "memory.limit_in_bytes" : "memory.max");
        var text = Read(memory, file).Trim();
        if (text == "max")
        {
            return null;
        }
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
        {
            throw new ChildCgroupException($"cgroup {memory.Name} {file}: unexpected content '{text}'", memory.Name, file);
        }
        // v1 "no limit" is PAGE_COUNTER_MAX pages (0x7FFFFFFFFFFFF000 with 4 KiB pages).
        return v1 && value >= 1L << 62 ? null : value;
    }

    /// <summary>How many times the kernel's OOM killer killed a process in cgroup <paramref name="name"/>: oom_kill of v1 memory.oom_control or cgroup2 memory.events.</summary>
    public long ReadOomKills(string name)
    {
        var memory = Discover().Memory
            ?? throw new ChildCgroupException($"no cgroup hierarchy under {Settings.CgroupRoot} offers the memory controller, so there is no OOM-kill count for '{name}'", null, Settings.CgroupRoot);
        var file = Path.Combine(PathOf(memory, name), memory.Version == CgroupVersion.V1 ? "memory.oom_control" : "memory.events");
        foreach (var line in Read(memory, file).Split('\n'))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && parts[0] == "oom_kill" && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var count))
            {
                return count;
            }
        }
        throw new ChildCgroupException($"cgroup {memory.Name} {file}: no oom_kill line (v1 needs Linux 4.13 or newer)", memory.Name, file);
    }

    /// <summary>
    /// Moves <paramref name="pid"/> (all its threads) into cgroup <paramref name="name"/> (made already)
    /// in every hierarchy, by writing it to each cgroup.procs. A failure names the hierarchy; hierarchies
    /// already written keep the pid.
    /// </summary>
    public Task MoveAsync(string name, int pid)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pid);
        var topology = Discover();
        var targets = topology.Hierarchies.Select(h => (Hierarchy: h, File: Path.Combine(PathOf(h, name), Procs))).ToArray();
        return InHostNamespaceAsync(topology, $"move {pid}", () =>
        {
            var value = pid.ToString(CultureInfo.InvariantCulture);
            foreach (var (hierarchy, file) in targets)
            {
                var error = Libc.WriteControlFileErrno(file, value);
                if (error != 0)
                {
                    throw Failure(hierarchy, file, $"move pid {pid}", error, MoveHint(hierarchy, file, error, topology));
                }
            }
            return true;
        });
    }

    /// <summary>What a new s3fs needs right after it started: <see cref="Create"/>, <see cref="SetMemoryMax"/>, then <see cref="MoveAsync"/> (the limit is in place before the pid arrives).</summary>
    public async Task PlaceAsync(string name, int pid, long? memoryMaxBytes)
    {
        Create(name);
        SetMemoryMax(name, memoryMaxBytes);
        await MoveAsync(name, pid).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether <paramref name="pid"/> is in cgroup <paramref name="name"/> in every hierarchy, from
    /// /proc/&lt;pid&gt;/cgroup (for adoption after a restart). False when the process is gone.
    /// </summary>
    public Task<bool> ContainsAsync(string name, int pid)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pid);
        CheckName(name);
        var topology = Discover();
        var expected = "/" + Settings.Parent + "/" + name;
        var file = Path.Combine(Settings.ProcRoot, pid.ToString(CultureInfo.InvariantCulture), "cgroup");
        return InHostNamespaceAsync(topology, $"check {pid}", () =>
        {
            var error = Libc.ReadControlFileErrno(file, out var text);
            if (error is Errno.ENOENT or Errno.ESRCH)
            {
                return false;
            }
            if (error != 0)
            {
                throw Failure(null, file, "read", error);
            }
            var paths = ParseProcCgroup(text);
            return topology.Hierarchies.All(h => paths.TryGetValue(h.ProcKey, out var path) && path == expected);
        });
    }

    /// <summary>The pids in cgroup <paramref name="name"/>, over every hierarchy (empty when it does not exist).</summary>
    public IReadOnlyList<int> Processes(string name)
    {
        var pids = new SortedSet<int>();
        foreach (var hierarchy in Discover().Hierarchies)
        {
            pids.UnionWith(ReadPids(hierarchy, Path.Combine(PathOf(hierarchy, name), Procs)));
        }
        return [.. pids];
    }

    /// <summary>
    /// Removes cgroup <paramref name="name"/> from every hierarchy (rmdir; one that is gone already is
    /// fine). A cgroup still holding processes is waited for briefly (a killed s3fs takes a moment to
    /// leave), then reported with its pids; the caller stops the child first.
    /// </summary>
    public async Task RemoveAsync(string name, CancellationToken cancellationToken = default)
    {
        var started = _time.GetTimestamp();
        foreach (var hierarchy in Discover().Hierarchies)
        {
            var directory = PathOf(hierarchy, name);
            while (true)
            {
                var error = Libc.RemoveDirectoryErrno(directory);
                if (error is 0 or Errno.ENOENT)
                {
                    break;
                }
                if (error == Errno.EBUSY && _time.GetElapsedTime(started) < Settings.RemoveWait)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(20), _time, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                var pids = error == Errno.EBUSY ? ReadPids(hierarchy, Path.Combine(directory, Procs)) : [];
                throw Failure(hierarchy, directory, "rmdir", error, pids.Count > 0 ? $"still holds pids {string.Join(' ', pids)}" : null);
            }
        }
    }

    private static void CheckName(string name)
    {
        if (!IsValidName(name))
        {
            throw new ArgumentException($"'{name}' is not a cgroup name: 1 to 255 of A-Z a-z 0-9 . _ -, not '.' or '..'", nameof(name));
        }
    }

    /// <summary>v1 cpuset: a new cgroup starts with no CPUs and no memory nodes, and refuses every pid until it has both.</summary>
    private static void InheritCpuset(CgroupHierarchy hierarchy, string above, string directory)
    {
        foreach (var file in new[] { "cpuset.cpus", "cpuset.mems" })
        {
            var own = Path.Combine(directory, file);
            if (Read(hierarchy, own).Trim().Length > 0)
            {
                continue;
            }
            var inherited = Read(hierarchy, Path.Combine(above, file)).Trim();
            var error = Libc.WriteControlFileErrno(own, inherited);
            if (error != 0)
            {
                throw Failure(hierarchy, own, $"write {inherited}", error);
            }
        }
    }

    /// <summary>cgroup2: the memory controller reaches a cgroup only when its parent lists it in cgroup.subtree_control.</summary>
    private static void DelegateMemory(CgroupHierarchy hierarchy, string directory)
    {
        var control = Path.Combine(directory, "cgroup.subtree_control");
        if (Read(hierarchy, control).Split(' ', '\n').Contains("memory"))
        {
            return;
        }
        var error = Libc.WriteControlFileErrno(control, "+memory");
        if (error != 0)
        {
            throw Failure(hierarchy, control, "write +memory", error,
                error == Errno.EBUSY ? "a cgroup2 cgroup with processes of its own cannot delegate controllers; choose a parent without processes" : null);
        }
    }

    private static string Read(CgroupHierarchy? hierarchy, string file)
    {
        var error = Libc.ReadControlFileErrno(file, out var text);
        return error == 0 ? text : throw Failure(hierarchy, file, "read", error);
    }

    private static List<int> ReadPids(CgroupHierarchy hierarchy, string file)
    {
        var error = Libc.ReadControlFileErrno(file, out var text);
        if (error == Errno.ENOENT)
        {
            return [];
        }
        if (error != 0)
        {
            throw Failure(hierarchy, file, "read", error);
        }
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => int.Parse(line, NumberStyles.None, CultureInfo.InvariantCulture))
            .ToList();
    }

    /// <summary>/proc/&lt;pid&gt;/cgroup lines "id:controllers:path" by controllers, sorted as <see cref="CgroupHierarchy.ProcKey"/> sorts them.</summary>
    internal static Dictionary<string, string> ParseProcCgroup(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var first = line.IndexOf(':', StringComparison.Ordinal);
            var second = first < 0 ? -1 : line.IndexOf(':', first + 1);
            if (second < 0)
            {
                continue;
            }
            var controllers = line[(first + 1)..second].Split(',', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal);
            result[string.Join(',', controllers)] = line[(second + 1)..];
        }
        return result;
    }

    private static string? MoveHint(CgroupHierarchy hierarchy, string file, int error, Topology topology) => error switch
    {
        Errno.ESRCH => "the process is gone",
        Errno.ENOSPC when hierarchy.Controllers.Contains("cpuset") => "the cpuset has no cpus or mems",
        Errno.ENOENT when !Directory.Exists(Path.GetDirectoryName(file)) => "the cgroup does not exist (Create makes it)",
        Errno.ENOENT when hierarchy.Version == CgroupVersion.V2 && !topology.HostNamespace =>
            $"the cgroup is outside this process's cgroup namespace, and {topology.HostNamespaceNote}",
        _ => null,
    };

    /// <summary>"cgroup memory /sys/fs/cgroup/memory/s3supervisor/v: mkdir failed: EACCES (Permission denied)".</summary>
    private static ChildCgroupException Failure(CgroupHierarchy? hierarchy, string path, string operation, int error, string? hint = null)
    {
        var where = hierarchy is null ? path : $"cgroup {hierarchy.Name} {path}";
        var message = $"{where}: {operation} failed: {Errno.Name(error)} ({Errno.Message(error)})";
        return new ChildCgroupException(hint is null ? message : $"{message}; {hint}", hierarchy?.Name, path, error);
    }
}

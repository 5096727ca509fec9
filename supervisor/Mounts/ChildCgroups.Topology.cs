using System.Globalization;
using S3Supervisor.Supervisor.Interop;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>Which hierarchies there are, and doing what must be done in the host's cgroup namespace.</summary>
public sealed partial class ChildCgroups
{
    private Task<T> InHostNamespaceAsync<T>(Topology topology, string description, Func<T> work)
    {
        if (!topology.HostNamespace)
        {
            try
            {
                return Task.FromResult(work());
            }
            catch (Exception e)
            {
                return Task.FromException<T>(e);
            }
        }
        return RunInHostNamespaceAsync(description, work);
    }

    private async Task<T> RunInHostNamespaceAsync<T>(string description, Func<T> work)
    {
        var path = HostNamespacePath;
        FileDescriptorHandle ns;
        try
        {
            ns = Libc.OpenReadOnly(path);
        }
        catch (InteropException e)
        {
            throw new ChildCgroupException($"{path}: open failed: {Errno.Name(e.Errno)} ({Errno.Message(e.Errno)}); the host's cgroup namespace is needed to reach its cgroups", null, path, e.Errno, e);
        }
        using (ns)
        {
            try
            {
                return await CgroupNamespaceThread.RunAsync(ns, description, work).ConfigureAwait(false);
            }
            catch (InteropException e) when (e.Operation.StartsWith("setns", StringComparison.Ordinal))
            {
                throw new ChildCgroupException($"entering the host's cgroup namespace ({path}) failed: {Errno.Name(e.Errno)} ({Errno.Message(e.Errno)}); the supervisor needs CAP_SYS_ADMIN (privileged)", null, path, e.Errno, e);
            }
        }
    }

    private string HostNamespacePath => Path.Combine(Settings.ProcRoot, "1", "ns", "cgroup");

    private Topology Discover()
    {
        lock (_gate)
        {
            if (_topology is not null)
            {
                return _topology;
            }
            var (hostNamespace, note) = CheckNamespace();
            var found = hostNamespace
                ? RunInHostNamespaceAsync("discover", ReadHierarchies).GetAwaiter().GetResult()
                : ReadHierarchies();
            var memory = found.FirstOrDefault(h => h.Version == CgroupVersion.V1 && h.Controllers.Contains("memory"))
                ?? found.FirstOrDefault(h => h.Version == CgroupVersion.V2 && h.Controllers.Contains("memory"));
            _topology = new Topology(found, memory, hostNamespace, note);
            return _topology;
        }
    }

    /// <summary>Whether this process's cgroup namespace differs from pid 1's (the host's with hostPID); a namespace that cannot be compared counts as the host's.</summary>
    private (bool Private, string Note) CheckNamespace()
    {
        var own = Path.Combine(Settings.ProcRoot, "self", "ns", "cgroup");
        var host = HostNamespacePath;
        var ownError = Libc.StatIdentity(own, out var ownDevice, out var ownInode);
        var hostError = Libc.StatIdentity(host, out var hostDevice, out var hostInode);
        if (ownError != 0 || hostError != 0)
        {
            var (path, error) = ownError != 0 ? (own, ownError) : (host, hostError);
            return (false, $"whether this process shares the host's cgroup namespace could not be checked ({path}: {Errno.Name(error)}; the node pod needs hostPID)");
        }
        return ownDevice == hostDevice && ownInode == hostInode
            ? (false, $"this process is in the cgroup namespace of pid 1 ({host}); with hostPID that is the host's")
            : (true, "this process uses the host's cgroup namespace for it");
    }

    private List<CgroupHierarchy> ReadHierarchies()
    {
        var root = Settings.CgroupRoot;
        var mountInfo = Path.Combine(Settings.ProcRoot, "self", "mountinfo");
        var entries = MountInfo.Parse(Read(null, mountInfo));
        var known = KnownControllers();
        var byMountPoint = new Dictionary<string, MountEntry>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            // The cgroup root itself (unified) or one level below it (v1 controllers, hybrid unified);
            // a later mount at the same point hides an earlier one, as in the kernel.
            if (entry.FsType is "cgroup" or "cgroup2" && (entry.MountPoint == root || Path.GetDirectoryName(entry.MountPoint) == root))
            {
                byMountPoint[entry.MountPoint] = entry;
            }
        }
        var result = new List<CgroupHierarchy>();
        foreach (var entry in byMountPoint.Values.OrderBy(e => e.MountPoint, StringComparer.Ordinal))
        {
            var v2 = entry.FsType == "cgroup2";
            var name = v2 ? "cgroup2" : entry.FsType;
            if (entry.Root != "/")
            {
                throw new ChildCgroupException(
                    $"the {name} hierarchy at {entry.MountPoint} is mounted from {entry.Root}, not from its root: that is a container's view of its own cgroups, and a child placed there would stay inside the container. Mount the host's /sys/fs/cgroup (a hostPath, e.g. at /host/sys/fs/cgroup) and set Supervisor:CgroupRoot to it",
                    name,
                    entry.MountPoint);
            }
            var controllers = v2
                ? Read(null, Path.Combine(entry.MountPoint, "cgroup.controllers")).Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToArray()
                : entry.SuperOptions.Split(',').Where(o => known.Contains(o) || o.StartsWith("name=", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
            var hierarchy = new CgroupHierarchy(v2 ? CgroupVersion.V2 : CgroupVersion.V1, entry.MountPoint, controllers);
            if (!v2 && controllers.Length == 0)
            {
                continue; // not a hierarchy we can name in /proc/<pid>/cgroup
            }
            if (result.All(h => h.ProcKey != hierarchy.ProcKey || h.Version != hierarchy.Version))
            {
                result.Add(hierarchy);
            }
        }
        if (result.Count == 0)
        {
            throw new ChildCgroupException(
                $"no cgroup hierarchy is mounted at or below {root} (Supervisor:CgroupRoot): per-volume cgroups need the host's cgroup tree; in a pod mount the host's /sys/fs/cgroup as a hostPath and point Supervisor:CgroupRoot at it",
                null,
                root);
        }
        return result;
    }

    /// <summary>The v1 controller names this kernel has (/proc/cgroups), to tell them from mount options such as xattr or clone_children.</summary>
    private HashSet<string> KnownControllers()
    {
        var names = new HashSet<string>(StringComparer.Ordinal)
        {
            "cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer", "net_cls", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc",
        };
        if (Libc.ReadControlFileErrno(Path.Combine(Settings.ProcRoot, "cgroups"), out var text) == 0)
        {
            foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (!line.StartsWith('#'))
                {
                    names.Add(line.Split('\t', ' ')[0]);
                }
            }
        }
        return names;
    }

    private sealed record Topology(IReadOnlyList<CgroupHierarchy> Hierarchies, CgroupHierarchy? Memory, bool HostNamespace, string HostNamespaceNote);
}

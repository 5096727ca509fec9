using System.Globalization;

namespace S3Supervisor.Supervisor.Mounts;

public enum CgroupVersion
{
    V1 = 1,
    V2 = 2,
}

/// <summary>One mounted cgroup hierarchy of the host.</summary>
/// <param name="MountPoint">Where it is mounted, e.g. /sys/fs/cgroup/memory, /sys/fs/cgroup/unified, /sys/fs/cgroup.</param>
/// <param name="Controllers">
/// v1: the controllers bound to it, sorted (<c>cpu, cpuacct</c>), a named hierarchy as <c>name=systemd</c>.
/// v2: the controllers its root offers (cgroup.controllers); none on a hybrid host's unified mount.
/// </param>
public sealed record CgroupHierarchy(CgroupVersion Version, string MountPoint, IReadOnlyList<string> Controllers)
{
    /// <summary>For messages: <c>memory</c>, <c>cpu,cpuacct</c>, <c>name=systemd</c>, or <c>cgroup2</c>.</summary>
    public string Name => Version == CgroupVersion.V2 ? "cgroup2" : string.Join(',', Controllers);

    /// <summary>How /proc/&lt;pid&gt;/cgroup names this hierarchy: its controllers (v1), empty for cgroup2 (the "0::" line).</summary>
    internal string ProcKey => Version == CgroupVersion.V2 ? string.Empty : string.Join(',', Controllers);
}

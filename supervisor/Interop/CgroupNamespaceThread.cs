namespace S3Supervisor.Supervisor.Interop;

/// <summary>
/// Runs work inside another cgroup namespace (the host's) on a thread of its own, which is thrown
/// away afterwards (<see cref="NamespaceThread"/>).
/// </summary>
/// <remarks>
/// A process in a private cgroup namespace (the default for containers on cgroup v2) sees its
/// container's cgroup as "/", and the kernel refuses (ENOENT) to move a pid into a cgroup of the
/// default hierarchy outside that root, even as root and even through a bind of the host's
/// /sys/fs/cgroup. A thread that has entered the host's cgroup namespace may; it also reads
/// /proc/&lt;pid&gt;/cgroup and mountinfo roots relative to the host's tree, as the host does.
/// Unlike the mount namespace, setns(CLONE_NEWCGROUP) needs no private fs_struct.
/// </remarks>
internal static class CgroupNamespaceThread
{
    public static Task<T> RunAsync<T>(FileDescriptorHandle cgroupNamespace, string description, Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(cgroupNamespace);
        return NamespaceThread.RunAsync("cgroupns " + description, () => Libc.EnterCgroupNamespace(cgroupNamespace, description), work);
    }
}

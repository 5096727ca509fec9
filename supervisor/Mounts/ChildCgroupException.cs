namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// A per-volume cgroup could not be made, joined, limited, read or removed. The message names the
/// hierarchy (<c>memory</c>, <c>cpu,cpuacct</c>, <c>name=systemd</c>, <c>cgroup2</c>) and the path; the
/// errno is kept when a system call said no. The caller decides what it means for the volume. An
/// IOException, as <c>InteropException</c> is: every handler of file-system trouble handles it too.
/// </summary>
public sealed class ChildCgroupException : IOException
{
    public ChildCgroupException(string message, string? hierarchy, string? path, int errno = 0, Exception? innerException = null)
        : base(message, innerException)
    {
        Hierarchy = hierarchy;
        Path = path;
        Errno = errno;
    }

    public ChildCgroupException()
    {
    }

    public ChildCgroupException(string message)
        : base(message)
    {
    }

    public ChildCgroupException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The hierarchy's name (<see cref="CgroupHierarchy.Name"/>), or null when the failure concerns no single one.</summary>
    public string? Hierarchy { get; }

    /// <summary>The directory or control file concerned, or null.</summary>
    public string? Path { get; }

    /// <summary>The errno of the failed call, 0 when none failed (say, no hierarchy is mounted at all).</summary>
    public int Errno { get; }
}

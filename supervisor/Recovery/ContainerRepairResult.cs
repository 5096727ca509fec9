namespace S3Supervisor.Supervisor.Recovery;

/// <summary>The outcome for one stale mount inside one container's mount namespace.</summary>
/// <param name="Pid">The process through which the namespace was entered.</param>
/// <param name="MountNamespaceInode">The namespace's identity (inode of /proc/&lt;pid&gt;/ns/mnt).</param>
/// <param name="MountPoint">The mount point as the container sees it.</param>
/// <param name="Root">The directory inside the filesystem that was mounted there ("/" for the whole volume, else the subPath).</param>
/// <param name="ReadOnly">Whether the container's mount was read-only (and the replacement is).</param>
/// <param name="Error">Why it was not repaired; null on success.</param>
public sealed record ContainerRepairResult(
    int Pid,
    ulong MountNamespaceInode,
    string MountPoint,
    string Root,
    bool ReadOnly,
    bool Success,
    string? Error);

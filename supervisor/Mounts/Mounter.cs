using S3Supervisor.Supervisor.Interop;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>The mount operations the volume manager needs; a fake stands in for it in unit tests.</summary>
public interface IMounter
{
    /// <summary>The topmost mount exactly at a path in this process's namespace, or null.</summary>
    MountEntry? FindMount(string path);

    /// <summary>This process's whole mount table, for callers that look up many paths at once.</summary>
    IReadOnlyList<MountEntry> ReadMounts();

    /// <summary>stat that asks the filesystem (not its attribute cache): 0 or the errno (ENOTCONN for a dead FUSE connection).</summary>
    int Stat(string path);

    void Bind(string source, string target, bool readOnly);

    /// <summary>Lazy (MNT_DETACH) unmount; false when nothing was mounted there.</summary>
    bool UnmountLazy(string path);

    void CreateDirectory(string path);
}

public static class MounterExtensions
{
    /// <summary>Lazily unmounts every layer at a path (a bind may have been stacked twice by a retried call).</summary>
    public static void UnmountAllLayers(this IMounter mounter, string path)
    {
        while (mounter.UnmountLazy(path))
        {
        }
    }
}

public sealed class Mounter : IMounter
{
    public MountEntry? FindMount(string path) => MountInfo.At(MountInfo.Read(), path);

    public IReadOnlyList<MountEntry> ReadMounts() => MountInfo.Read();

    // statx(AT_STATX_FORCE_SYNC): a plain stat of a FUSE mount whose s3fs was just killed still
    // succeeds for up to a second from FUSE's attribute cache.
    public int Stat(string path) => Libc.StatForceSyncErrno(path);

    public void Bind(string source, string target, bool readOnly) => Libc.BindMount(source, target, readOnly);

    public bool UnmountLazy(string path) => Libc.Unmount(path, detach: true);

    public void CreateDirectory(string path)
    {
        // A stale mount on the path answers ENOTCONN to mkdir's stat; that is fine, it exists.
        if (Libc.StatForceSyncErrno(path) is 0 or Errno.ENOTCONN)
        {
            return;
        }
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
    }
}

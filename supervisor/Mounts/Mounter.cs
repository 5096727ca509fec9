using S3Supervisor.Supervisor.Interop;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>The mount operations the volume manager needs; a fake stands in for it in unit tests.</summary>
public interface IMounter
{
    /// <summary>The topmost mount exactly at a path in this process's namespace, or null.</summary>
    MountEntry? FindMount(string path);

    /// <summary>This process's whole mount table, for callers that look up many paths at once.</summary>
    IReadOnlyList<MountEntry> ReadMounts();

    /// <summary>
    /// Completes at the next change of this process's mount table. Take it before looking at the
    /// table and await it after (with a timeout of your own), so a change in between is not missed.
    /// </summary>
    Task NextMountTableChange();

    /// <summary>stat that asks the filesystem (not its attribute cache): 0 or the errno (ENOTCONN for a dead FUSE connection).</summary>
    int Stat(string path);

    /// <summary>
    /// Bind-mounts the mount at <paramref name="source"/> onto the directory <paramref name="target"/>
    /// (read-only on request). With <paramref name="expectedSourceDevice"/>, the source must be that
    /// FUSE connection ("major:minor") at the moment it is cloned, never the bare directory below it.
    /// Throws <see cref="PathRefusedException"/> when a path leaves its root, meets a symlink or lies
    /// on a FUSE filesystem, and <see cref="MountSourceException"/> when the source is not the expected mount.
    /// </summary>
    void Bind(string source, string target, bool readOnly, string? expectedSourceDevice = null);

    /// <summary>Lazy (MNT_DETACH) unmount; false when nothing was mounted there.</summary>
    bool UnmountLazy(string path);

    void CreateDirectory(string path);

    /// <summary>Removes an empty directory (never recursively); true when it is gone, false when something is in or on it.</summary>
    bool RemoveDirectory(string path);
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

    /// <summary><see cref="IMounter.Stat"/> that gives up after <paramref name="timeout"/>: see <see cref="StatWithinAsync(Func{int}, TimeSpan, TimeProvider, CancellationToken)"/>.</summary>
    public static Task<int?> StatWithinAsync(this IMounter mounter, string path, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken) =>
        StatWithinAsync(() => mounter.Stat(path), timeout, time, cancellationToken);

    /// <summary>
    /// A stat that may block (a hung FUSE connection, or one whose s3fs is still in its FUSE init
    /// asking S3) runs on a thread of its own, and the caller waits at most <paramref name="timeout"/>:
    /// 0 or the errno, or null when it did not answer in time; a cancelled wait throws
    /// OperationCanceledException (a cancelled call must never read as a hung mount, which would heal a
    /// healthy volume). A stat left behind finishes on its own thread.
    /// </summary>
    public static async Task<int?> StatWithinAsync(Func<int> stat, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        if (timeout <= TimeSpan.Zero)
        {
            return null;
        }
        var task = Task.Factory.StartNew(stat, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var finished = await Task.WhenAny(task, Task.Delay(timeout, time, cancellationToken)).ConfigureAwait(false);
        if (finished == task)
        {
            return await task.ConfigureAwait(false);
        }
        cancellationToken.ThrowIfCancellationRequested();
        return null;
    }
}

/// <summary>A path the mount layer will not act on: it left its root, met a symlink, or lies on a FUSE filesystem.</summary>
public sealed class PathRefusedException(string path, string reason) : IOException($"{path}: {reason}")
{
    public string PathName { get; } = path;

    public string Reason { get; } = reason;
}

/// <summary>The source of a bind is not the live mount it was expected to be (it vanished or died in between).</summary>
public sealed class MountSourceException(string path, string reason) : IOException($"{path}: {reason}")
{
    public string Reason { get; } = reason;
}

/// <summary>
/// The real mount layer. Every path it changes is resolved exactly once, beneath the root that holds
/// it (the allowed roots, or the supervisor's own mount directory), with openat2 refusing symlinks,
/// magic links and "..", and the operation then acts on the descriptor: open_tree + move_mount for
/// binds, mkdirat, unlinkat, and umount2 through /proc/self/fd. A directory swapped for a symlink
/// between the path check and the mount therefore makes the call fail instead of mounting outside.
/// </summary>
public sealed class Mounter : IMounter
{
    private readonly string[] _roots;

    /// <param name="roots">Canonical directories (symlinks resolved) beneath which every changed path must lie.</param>
    public Mounter(IEnumerable<string> roots)
    {
        _roots = roots.Select(r => r.TrimEnd('/')).Where(r => r.Length > 0).OrderByDescending(r => r.Length).ToArray();
    }

    /// <summary>For tests of the race: runs after every path is resolved and right before the mount is attached.</summary>
    internal static Action<string>? BeforeAttachForTests { get; set; }

    public MountEntry? FindMount(string path) => MountInfo.At(MountInfo.Read(), path);

    public IReadOnlyList<MountEntry> ReadMounts() => MountInfo.Read();

    // One watcher for the process, started by the first caller (a supervisor that never mounts has no thread for it).
    private static readonly Lazy<Libc.MountTableWatcher> MountTable = new(() => new Libc.MountTableWatcher());

    public Task NextMountTableChange() => MountTable.Value.NextChange;

    // statx(AT_STATX_FORCE_SYNC): a plain stat of a FUSE mount whose s3fs was just killed still
    // succeeds for up to a second from FUSE's attribute cache.
    public int Stat(string path) => Libc.StatForceSyncErrno(path);

    public void Bind(string source, string target, bool readOnly, string? expectedSourceDevice = null)
    {
        using var from = OpenDirectory(source);
        if (expectedSourceDevice is not null)
        {
            var (device, _) = StatHandle(from, source);
            if (Libc.DeviceName(device) != expectedSourceDevice)
            {
                throw new MountSourceException(source, $"is not the mount {expectedSourceDevice} any more (found {Libc.DeviceName(device)})");
            }
        }
        using var to = OpenDirectory(target);
        if (OnFuse(to, target))
        {
            throw new PathRefusedException(target, "lies on a FUSE mount (another volume's files); a mount target must not");
        }
        using var tree = Libc.CloneMount(from, source);
        if (readOnly)
        {
            Libc.SetMountAttributes(tree, Libc.MOUNT_ATTR_RDONLY | Libc.MOUNT_ATTR_NOSUID | Libc.MOUNT_ATTR_NODEV, 0, 0, target);
        }
        BeforeAttachForTests?.Invoke(target);
        Libc.MoveMountOnto(tree, to, target);
    }

    public bool UnmountLazy(string path)
    {
        var (parent, name) = Split(path);
        using var directory = TryOpenDirectory(parent, out var error);
        if (directory is null)
        {
            return error is Errno.ENOENT ? false : throw Refused(parent, error);
        }
        return Libc.DetachMountAt(directory, name) switch
        {
            0 => true,
            Errno.EINVAL or Errno.ENOENT => false,
            var e => throw new InteropException("umount2", e, path),
        };
    }

    public void CreateDirectory(string path)
    {
        var (root, relative) = Locate(path);
        using var current = OpenRoot(root);
        var handle = current;
        try
        {
            var walked = root;
            var names = relative.Split('/', StringSplitOptions.RemoveEmptyEntries);
            for (var i = 0; i < names.Length; i++)
            {
                var name = names[i];
                walked += "/" + name;
                var error = Libc.TryOpenDirectoryBeneath(handle, name, out var next);
                if (error == Errno.ENOENT)
                {
                    if (OnFuse(handle, walked))
                    {
                        // Never create a directory inside a volume's files (it would become an S3 object).
                        throw new PathRefusedException(walked, "lies on a FUSE mount (another volume's files); a mount target must not");
                    }
                    var made = Libc.MakeDirectoryAt(handle, name, 0b111_101_000); // 0750
                    if (made is not (0 or Errno.EEXIST))
                    {
                        throw new InteropException("mkdirat", made, walked);
                    }
                    error = Libc.TryOpenDirectoryBeneath(handle, name, out next);
                }
                if (next is null && error == Errno.ENOTCONN && i == names.Length - 1)
                {
                    // A dead FUSE mount sits on the path: the directory exists (it is cleared later).
                    return;
                }
                if (next is null)
                {
                    throw Refused(walked, error);
                }
                if (!ReferenceEquals(handle, current))
                {
                    handle.Dispose();
                }
                handle = next;
            }
        }
        finally
        {
            if (!ReferenceEquals(handle, current))
            {
                handle.Dispose();
            }
        }
    }

    public bool RemoveDirectory(string path)
    {
        var (parent, name) = Split(path);
        using var directory = TryOpenDirectory(parent, out var error);
        if (directory is null)
        {
            return error is Errno.ENOENT ? true : throw Refused(parent, error);
        }
        return Libc.RemoveDirectoryAt(directory, name) switch
        {
            0 or Errno.ENOENT => true,
            Errno.ENOTEMPTY or Errno.EBUSY or Errno.EEXIST or Errno.ENOTDIR => false,
            var e => throw new InteropException("unlinkat", e, path),
        };
    }

    private FileDescriptorHandle OpenDirectory(string path) =>
        TryOpenDirectory(path, out var error) ?? throw Refused(path, error);

    private FileDescriptorHandle? TryOpenDirectory(string path, out int error)
    {
        var (root, relative) = Locate(path);
        using var rootHandle = OpenRoot(root);
        error = Libc.TryOpenDirectoryBeneath(rootHandle, relative, out var handle);
        return handle;
    }

    private static FileDescriptorHandle OpenRoot(string root) => Libc.OpenDirectoryPath(root);

    /// <summary>Whether the directory behind a descriptor belongs to a FUSE file system (its device is a FUSE mount's).</summary>
    private static bool OnFuse(FileDescriptorHandle directory, string path)
    {
        var (device, _) = Libc.StatIdentity(directory, path);
        var name = Libc.DeviceName(device);
        return MountInfo.Read().Any(m => m.IsFuse && m.Device == name);
    }

    private static (ulong Device, ulong Inode) StatHandle(FileDescriptorHandle handle, string path)
    {
        try
        {
            return Libc.StatIdentity(handle, path);
        }
        catch (InteropException e)
        {
            throw new MountSourceException(path, $"does not answer ({Errno.Name(e.Errno)})");
        }
    }

    /// <summary>The root that holds a path (the longest one), and the path relative to it.</summary>
    private (string Root, string Relative) Locate(string path)
    {
        foreach (var root in _roots)
        {
            if (path == root)
            {
                return (root, string.Empty);
            }
            if (path.StartsWith(root + "/", StringComparison.Ordinal))
            {
                return (root, path[(root.Length + 1)..]);
            }
        }
        throw new PathRefusedException(path, "is outside every root the mount layer may change");
    }

    private static (string Parent, string Name) Split(string path)
    {
        var trimmed = path.TrimEnd('/');
        var slash = trimmed.LastIndexOf('/');
        return slash <= 0 ? ("/", trimmed.TrimStart('/')) : (trimmed[..slash], trimmed[(slash + 1)..]);
    }

    private static Exception Refused(string path, int error) => error switch
    {
        Errno.ELOOP => new PathRefusedException(path, "has a symbolic link on its way (it changed after it was checked?)"),
        Errno.EXDEV => new PathRefusedException(path, "resolves outside its root"),
        Errno.ENOTDIR => new PathRefusedException(path, "is not a directory"),
        _ => new InteropException("openat2", error, path),
    };
}

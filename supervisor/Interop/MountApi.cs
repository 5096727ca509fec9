using System.Runtime.InteropServices;
using Tmds.Linux;

namespace S3Supervisor.Supervisor.Interop;

/// <summary>
/// The new mount API (open_tree, mount_setattr, move_mount), openat2 and the namespace calls
/// used by container repair. Tmds.LibC 0.5.0 has no numbers for the new calls, so they go
/// through <c>syscall</c> with their x86_64 numbers (the project ships linux-x64 only).
/// </summary>
/// <remarks>
/// Kernel behaviour these wrappers were written against (6.x, measured here):
/// <list type="bullet">
/// <item>open_tree(OPEN_TREE_CLONE) makes a detached copy that sits in an anonymous mount
/// namespace; such a tree may be moved into any namespace the caller has entered, and
/// mount_setattr may change its flags and propagation before it is attached.</item>
/// <item>A clone of a shared mount joins the source's peer group (clone_mnt without
/// CL_PRIVATE), so callers set the propagation they want explicitly.</item>
/// <item>umount2 on a dead FUSE mount works: the walk to the mount point never asks the
/// dead filesystem anything (LOOKUP_MOUNTPOINT), only walks through it would.</item>
/// </list>
/// </remarks>
internal static unsafe partial class Libc
{
    public const ulong MOUNT_ATTR_RDONLY = 0x1;
    public const ulong MOUNT_ATTR_NOSUID = 0x2;
    public const ulong MOUNT_ATTR_NODEV = 0x4;
    public const ulong MOUNT_ATTR_NOEXEC = 0x8;
    public const ulong MOUNT_ATTR_NOSYMFOLLOW = 0x200000;

    private const int SYS_open_tree = 428;
    private const int SYS_move_mount = 429;
    private const int SYS_openat2 = 437;
    private const int SYS_mount_setattr = 442;
    private const int SYS_statx = 332;

    private const int AT_STATX_FORCE_SYNC = 0x2000;
    private const uint STATX_BASIC_STATS = 0x7ff;
    private const int StatxSize = 256; // sizeof(struct statx)

    private const uint OPEN_TREE_CLONE = 1;
    private const uint OPEN_TREE_CLOEXEC = 0x80000; // == O_CLOEXEC
    private const uint MOVE_MOUNT_F_EMPTY_PATH = 0x4;

    private const ulong RESOLVE_NO_XDEV = 0x01;
    private const ulong RESOLVE_NO_MAGICLINKS = 0x02;
    private const ulong RESOLVE_NO_SYMLINKS = 0x04;
    private const ulong RESOLVE_BENEATH = 0x08;

    /// <summary>open(path, O_PATH | O_DIRECTORY | O_CLOEXEC): a handle on a directory that does not talk to the filesystem.</summary>
    public static FileDescriptorHandle OpenDirectoryPath(string path) =>
        OpenCore(path, LibC.O_PATH | LibC.O_DIRECTORY | LibC.O_CLOEXEC, "open");

    /// <summary>open(path, O_RDONLY | O_CLOEXEC), e.g. of /proc/&lt;pid&gt;/ns/mnt.</summary>
    public static FileDescriptorHandle OpenReadOnly(string path) =>
        OpenCore(path, LibC.O_RDONLY | LibC.O_CLOEXEC, "open");

    /// <summary>
    /// An O_PATH handle on the directory <paramref name="relative"/> strictly beneath
    /// <paramref name="directory"/>: no "..", no symlink, no magic link and no crossing into
    /// another mount on the way. The subdirectory lives in a bucket that pods can write, so a
    /// plain path join could be redirected (an object turned into a symlink to "/") into
    /// cloning a host directory into a container.
    /// </summary>
    public static FileDescriptorHandle OpenDirectoryBeneath(FileDescriptorHandle directory, string relative, string pathForErrors)
    {
        var fd = OpenBeneathCore(directory, relative, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV, out var error);
        return fd >= 0 ? new FileDescriptorHandle(fd) : throw new InteropException("openat2", error, pathForErrors);
    }

    /// <summary>open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH): a detached, non-recursive copy of the mount at <paramref name="at"/>, rooted at its directory.</summary>
    public static FileDescriptorHandle CloneMount(FileDescriptorHandle at, string pathForErrors)
    {
        var empty = Utf8(string.Empty);
        using var source = new FdLease(at);
        fixed (byte* e = empty)
        {
            while (true)
            {
                var fd = (int)LibC.syscall((syscall_arg)SYS_open_tree, (syscall_arg)source.Fd, (syscall_arg)e, (syscall_arg)(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (uint)LibC.AT_EMPTY_PATH));
                if (fd >= 0)
                {
                    return new FileDescriptorHandle(fd);
                }
                var error = LibC.errno;
                if (error != Errno.EINTR)
                {
                    throw new InteropException("open_tree", error, pathForErrors);
                }
            }
        }
    }

    /// <summary>mount_setattr(fd, "", AT_EMPTY_PATH) on one mount (not recursive). <paramref name="propagation"/> is MS_PRIVATE, MS_SLAVE, MS_SHARED or 0 to leave it.</summary>
    public static void SetMountAttributes(FileDescriptorHandle tree, ulong set, ulong clear, ulong propagation, string pathForErrors)
    {
        var attr = new MountAttr { AttrSet = set, AttrClr = clear, Propagation = propagation };
        var empty = Utf8(string.Empty);
        using var mount = new FdLease(tree);
        fixed (byte* e = empty)
        {
            while ((int)LibC.syscall((syscall_arg)SYS_mount_setattr, (syscall_arg)mount.Fd, (syscall_arg)e, (syscall_arg)LibC.AT_EMPTY_PATH, (syscall_arg)(&attr), (syscall_arg)(uint)sizeof(MountAttr)) != 0)
            {
                var error = LibC.errno;
                if (error != Errno.EINTR)
                {
                    throw new InteropException("mount_setattr", error, pathForErrors);
                }
            }
        }
    }

    /// <summary>move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH): attaches a detached tree at <paramref name="target"/> in the calling thread's mount namespace. The final component is not followed if it is a symlink.</summary>
    public static void MoveMount(FileDescriptorHandle tree, string target)
    {
        var empty = Utf8(string.Empty);
        var to = Utf8(target);
        using var from = new FdLease(tree);
        fixed (byte* e = empty, t = to)
        {
            while ((int)LibC.syscall((syscall_arg)SYS_move_mount, (syscall_arg)from.Fd, (syscall_arg)e, (syscall_arg)LibC.AT_FDCWD, (syscall_arg)t, (syscall_arg)MOVE_MOUNT_F_EMPTY_PATH) != 0)
            {
                var error = LibC.errno;
                if (error != Errno.EINTR)
                {
                    throw new InteropException("move_mount", error, target);
                }
            }
        }
    }

    /// <summary>umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW): 0, or the errno (EINVAL: not a mount point, or a mount locked by a user namespace).</summary>
    public static int DetachMountErrno(string target)
    {
        var tgt = Utf8(target);
        fixed (byte* t = tgt)
        {
            while (true)
            {
                if (LibC.umount2(t, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
                {
                    return 0;
                }
                var error = LibC.errno;
                if (error != Errno.EINTR)
                {
                    return error;
                }
            }
        }
    }

    /// <summary>unshare(CLONE_FS): gives the calling thread its own root, cwd and umask, which setns(CLONE_NEWNS) requires.</summary>
    public static void UnshareFilesystemAttributes()
    {
        if (LibC.unshare(LibC.CLONE_FS) != 0)
        {
            throw new InteropException("unshare(CLONE_FS)", LibC.errno);
        }
    }

    /// <summary>setns(fd, CLONE_NEWNS) for the calling thread; also sets its root and cwd to the namespace's root.</summary>
    public static void EnterMountNamespace(FileDescriptorHandle mountNamespace, string pathForErrors)
    {
        using var ns = new FdLease(mountNamespace);
        if (LibC.setns(ns.Fd, LibC.CLONE_NEWNS) != 0)
        {
            throw new InteropException("setns(CLONE_NEWNS)", LibC.errno, pathForErrors);
        }
    }

    /// <summary>
    /// statx(path, AT_STATX_FORCE_SYNC): 0 when it answers, else the errno. Plain stat is not
    /// enough to tell a dead FUSE mount: FUSE answers from its attribute cache while that is
    /// fresh (attr_timeout, 1 s by default in libfuse), without looking at the connection, so
    /// stat of a mount whose s3fs was just killed still succeeds for up to a second (measured).
    /// Forcing a sync makes FUSE send GETATTR, which a dead connection fails with ENOTCONN at once.
    /// </summary>
    public static int StatForceSyncErrno(string path)
    {
        var p = Utf8(path);
        var buffer = stackalloc byte[StatxSize];
        fixed (byte* b = p)
        {
            while (true)
            {
                if ((int)LibC.syscall((syscall_arg)SYS_statx, (syscall_arg)LibC.AT_FDCWD, (syscall_arg)b, (syscall_arg)AT_STATX_FORCE_SYNC, (syscall_arg)STATX_BASIC_STATS, (syscall_arg)buffer) == 0)
                {
                    return 0;
                }
                var error = LibC.errno;
                if (error != Errno.EINTR)
                {
                    return error;
                }
            }
        }
    }

    /// <summary>stat(2) that also returns the inode: 0 when it answers, else the errno (symlinks, including /proc magic links, are followed).</summary>
    public static int StatIdentity(string path, out ulong device, out ulong inode)
    {
        var p = Utf8(path);
        stat st;
        fixed (byte* b = p)
        {
            while (true)
            {
                if (LibC.stat(b, &st) == 0)
                {
                    device = (ulong)st.st_dev;
                    inode = (ulong)st.st_ino;
                    return 0;
                }
                var error = LibC.errno;
                if (error != Errno.EINTR)
                {
                    device = 0;
                    inode = 0;
                    return error;
                }
            }
        }
    }

    /// <summary>fstat(2): device and inode of an open descriptor.</summary>
    public static (ulong Device, ulong Inode) StatIdentity(FileDescriptorHandle handle, string pathForErrors)
    {
        using var fd = new FdLease(handle);
        stat st;
        while (LibC.fstat(fd.Fd, &st) != 0)
        {
            var error = LibC.errno;
            if (error != Errno.EINTR)
            {
                throw new InteropException("fstat", error, pathForErrors);
            }
        }
        return ((ulong)st.st_dev, (ulong)st.st_ino);
    }

    /// <summary>The "major:minor" form mountinfo uses for a dev_t (glibc's encoding).</summary>
    public static string DeviceName(ulong device)
    {
        var major = ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfffUL);
        var minor = (device & 0xff) | ((device >> 12) & ~0xffUL);
        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{major}:{minor}");
    }

    private static FileDescriptorHandle OpenCore(string path, int flags, string operation)
    {
        var p = Utf8(path);
        fixed (byte* b = p)
        {
            while (true)
            {
                var fd = LibC.open(b, flags, 0);
                if (fd >= 0)
                {
                    return new FileDescriptorHandle(fd);
                }
                var error = LibC.errno;
                if (error != Errno.EINTR)
                {
                    throw new InteropException(operation, error, path);
                }
            }
        }
    }

    /// <summary>Keeps a SafeHandle's descriptor from being closed while a raw call uses it.</summary>
    private readonly ref struct FdLease
    {
        private readonly SafeHandle _handle;

        public FdLease(SafeHandle handle)
        {
            var added = false;
            handle.DangerousAddRef(ref added);
            _handle = handle;
            Fd = (int)handle.DangerousGetHandle();
        }

        public int Fd { get; }

        public void Dispose() => _handle.DangerousRelease();
    }

    /// <summary>struct mount_attr (MOUNT_ATTR_SIZE_VER0 = 32 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct MountAttr
    {
        public ulong AttrSet;
        public ulong AttrClr;
        public ulong Propagation;
        public ulong UsernsFd;
    }

    /// <summary>struct open_how (OPEN_HOW_SIZE_VER0 = 24 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }
}

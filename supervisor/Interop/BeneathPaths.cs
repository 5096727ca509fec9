using System.Globalization;
using System.Runtime.InteropServices;
using Tmds.Linux;

namespace S3Supervisor.Supervisor.Interop;

/// <summary>
/// Path operations that resolve a path exactly once, strictly beneath a trusted directory
/// descriptor, and then act on the descriptor: no second resolution by name that a swapped
/// directory or a new symlink could redirect (the check-then-mount race). Resolution refuses "..",
/// every symlink and every /proc magic link on the way (openat2 RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS); it may cross into other mounts (kubelet's pod
/// directories hold tmpfs and other volumes).
/// </summary>
internal static unsafe partial class Libc
{
    private const int SYS_openat2 = 437;
    private const int AT_REMOVEDIR = 0x200;
    private const uint MOVE_MOUNT_T_EMPTY_PATH = 0x40;

    private const ulong RESOLVE_NO_XDEV = 0x01;
    private const ulong RESOLVE_NO_MAGICLINKS = 0x02;
    private const ulong RESOLVE_NO_SYMLINKS = 0x04;
    private const ulong RESOLVE_BENEATH = 0x08;

    /// <summary>An O_PATH handle on <paramref name="relative"/> beneath <paramref name="directory"/>, or the errno (ELOOP/EXDEV: a symlink or an escape; ENOENT; ENOTDIR).</summary>
    public static int TryOpenDirectoryBeneath(FileDescriptorHandle directory, string relative, out FileDescriptorHandle? handle)
    {
        var fd = OpenBeneathCore(directory, relative, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, out var error);
        handle = fd >= 0 ? new FileDescriptorHandle(fd) : null;
        return fd >= 0 ? 0 : error;
    }

    /// <summary>
    /// An O_PATH handle on the directory <paramref name="relative"/> strictly beneath
    /// <paramref name="directory"/>: no "..", no symlink, no magic link and, unlike
    /// <see cref="TryOpenDirectoryBeneath"/>, no crossing into another mount on the way. The
    /// subdirectory lives in a bucket that pods can write, so a plain path join could be redirected
    /// (an object turned into a symlink to "/") into cloning a host directory into a container.
    /// </summary>
    public static FileDescriptorHandle OpenDirectoryBeneath(FileDescriptorHandle directory, string relative, string pathForErrors)
    {
        var fd = OpenBeneathCore(directory, relative, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV, out var error);
        CheckIo(error, "openat2", pathForErrors);
        return new FileDescriptorHandle(fd);
    }

    /// <summary>mkdirat(directory, name, mode): 0 or the errno (EEXIST when something is there already).</summary>
    public static int MakeDirectoryAt(FileDescriptorHandle directory, string name, uint mode)
    {
        var n = Utf8(name);
        using var dir = new FdLease(directory);
        int error;
        fixed (byte* p = n)
        {
            while (Interrupted(LibC.mkdirat(dir.Fd, p, (mode_t)mode), out error))
            {
            }
        }
        return error;
    }

    /// <summary>unlinkat(directory, name, AT_REMOVEDIR): removes an empty directory; 0 or the errno (ENOTEMPTY, EBUSY for a mount point, ENOENT).</summary>
    public static int RemoveDirectoryAt(FileDescriptorHandle directory, string name)
    {
        var n = Utf8(name);
        using var dir = new FdLease(directory);
        int error;
        fixed (byte* p = n)
        {
            while (Interrupted(LibC.unlinkat(dir.Fd, p, AT_REMOVEDIR), out error))
            {
            }
        }
        return error;
    }

    /// <summary>move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH): attaches a detached tree on the directory the target descriptor refers to.</summary>
    public static void MoveMountOnto(FileDescriptorHandle tree, FileDescriptorHandle target, string pathForErrors)
    {
        var empty = Utf8(string.Empty);
        using var from = new FdLease(tree);
        using var to = new FdLease(target);
        int error;
        fixed (byte* e = empty)
        {
            while (Interrupted((long)LibC.syscall((syscall_arg)SYS_move_mount, (syscall_arg)from.Fd, (syscall_arg)e, (syscall_arg)to.Fd, (syscall_arg)e, (syscall_arg)(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)), out error))
            {
            }
        }
        CheckIo(error, "move_mount", pathForErrors);
    }

    /// <summary>
    /// umount2 of the entry <paramref name="name"/> inside an already resolved directory, with
    /// MNT_DETACH | UMOUNT_NOFOLLOW: the walk goes through /proc/self/fd/N, which the kernel follows
    /// to exactly that directory (no re-resolution by name). 0, or the errno (EINVAL: not a mount point).
    /// </summary>
    public static int DetachMountAt(FileDescriptorHandle directory, string name)
    {
        // The lease keeps descriptor N open (and so the /proc/self/fd/N link pointing at that directory) for the whole call.
        using var dir = new FdLease(directory);
        return Umount2(string.Create(CultureInfo.InvariantCulture, $"/proc/self/fd/{dir.Fd}/{name}"), MNT_DETACH | UMOUNT_NOFOLLOW);
    }

    /// <summary>The one openat2(2) here: O_PATH | O_DIRECTORY | O_CLOEXEC with <paramref name="resolve"/>; the descriptor, or -1 and the errno. EAGAIN (a rename raced the walk) is retried like EINTR.</summary>
    private static int OpenBeneathCore(FileDescriptorHandle directory, string relative, ulong resolve, out int error)
    {
        var how = new OpenHow
        {
            Flags = (ulong)(LibC.O_PATH | LibC.O_DIRECTORY | LibC.O_CLOEXEC),
            Resolve = resolve,
        };
        var rel = Utf8(relative.Length == 0 ? "." : relative);
        using var dir = new FdLease(directory);
        long fd;
        fixed (byte* r = rel)
        {
            while (Interrupted(fd = (long)LibC.syscall((syscall_arg)SYS_openat2, (syscall_arg)dir.Fd, (syscall_arg)r, (syscall_arg)(&how), (syscall_arg)(uint)sizeof(OpenHow)), out error) || error == Errno.EAGAIN)
            {
            }
        }
        return error == 0 ? (int)fd : -1;
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

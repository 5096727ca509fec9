using System.Runtime.InteropServices;
using Tmds.Linux;

namespace S3Supervisor.Supervisor.Interop;

/// <summary>
/// mount(2), umount2(2) and the new mount API (open_tree, mount_setattr, move_mount). Tmds.LibC
/// 0.5.0 has no numbers for the new calls, so they go through <c>syscall</c> with their x86_64
/// numbers (the project ships linux-x64 only).
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
    public const ulong MS_RDONLY = 1;
    public const ulong MS_NOSUID = 2;
    public const ulong MS_NODEV = 4;
    public const ulong MS_NOEXEC = 8;
    public const ulong MS_REMOUNT = 32;
    public const ulong MS_BIND = 4096;
    public const ulong MS_REC = 16384;
    public const ulong MS_PRIVATE = 1 << 18;
    public const ulong MS_SLAVE = 1 << 19;
    public const ulong MS_SHARED = 1 << 20;

    public const int MNT_FORCE = 1;
    public const int MNT_DETACH = 2;
    public const int UMOUNT_NOFOLLOW = 8;

    public const ulong MOUNT_ATTR_RDONLY = 0x1;
    public const ulong MOUNT_ATTR_NOSUID = 0x2;
    public const ulong MOUNT_ATTR_NODEV = 0x4;
    public const ulong MOUNT_ATTR_NOEXEC = 0x8;
    public const ulong MOUNT_ATTR_NOSYMFOLLOW = 0x200000;

    private const int SYS_open_tree = 428;
    private const int SYS_move_mount = 429;
    private const int SYS_mount_setattr = 442;

    private const uint OPEN_TREE_CLONE = 1;
    private const uint OPEN_TREE_CLOEXEC = 0x80000; // == O_CLOEXEC
    private const uint MOVE_MOUNT_F_EMPTY_PATH = 0x4;

    public static void Mount(string? source, string target, string? fsType, ulong flags, string? data = null)
    {
        var src = source is null ? null : Utf8(source);
        var tgt = Utf8(target);
        var fs = fsType is null ? null : Utf8(fsType);
        var dat = data is null ? null : Utf8(data);
        int error;
        fixed (byte* s = src, t = tgt, f = fs, d = dat)
        {
            while (Interrupted(LibC.mount(s, t, f, (ulong_t)flags, d), out error))
            {
            }
        }
        CheckIo(error, "mount", target);
    }

    /// <summary>Unmounts a path. Returns false when nothing was mounted there (EINVAL) or the path is gone (ENOENT).</summary>
    public static bool Unmount(string target, bool detach)
    {
        var error = Umount2(target, UMOUNT_NOFOLLOW | (detach ? MNT_DETACH : 0));
        if (error is Errno.EINVAL or Errno.ENOENT)
        {
            return false;
        }
        CheckIo(error, "umount2", target);
        return true;
    }

    /// <summary>umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW): 0, or the errno (EINVAL: not a mount point, or a mount locked by a user namespace).</summary>
    public static int DetachMountErrno(string target) => Umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW);

    /// <summary>open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH): a detached, non-recursive copy of the mount at <paramref name="at"/>, rooted at its directory.</summary>
    public static FileDescriptorHandle CloneMount(FileDescriptorHandle at, string pathForErrors)
    {
        var empty = Utf8(string.Empty);
        using var source = new FdLease(at);
        long fd;
        int error;
        fixed (byte* e = empty)
        {
            while (Interrupted(fd = (long)LibC.syscall((syscall_arg)SYS_open_tree, (syscall_arg)source.Fd, (syscall_arg)e, (syscall_arg)(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (uint)LibC.AT_EMPTY_PATH)), out error))
            {
            }
        }
        CheckIo(error, "open_tree", pathForErrors);
        return new FileDescriptorHandle((int)fd);
    }

    /// <summary>mount_setattr(fd, "", AT_EMPTY_PATH) on one mount (not recursive). <paramref name="propagation"/> is MS_PRIVATE, MS_SLAVE, MS_SHARED or 0 to leave it.</summary>
    public static void SetMountAttributes(FileDescriptorHandle tree, ulong set, ulong clear, ulong propagation, string pathForErrors)
    {
        var attr = new MountAttr { AttrSet = set, AttrClr = clear, Propagation = propagation };
        var empty = Utf8(string.Empty);
        using var mount = new FdLease(tree);
        int error;
        fixed (byte* e = empty)
        {
            while (Interrupted((long)LibC.syscall((syscall_arg)SYS_mount_setattr, (syscall_arg)mount.Fd, (syscall_arg)e, (syscall_arg)LibC.AT_EMPTY_PATH, (syscall_arg)(&attr), (syscall_arg)(uint)sizeof(MountAttr)), out error))
            {
            }
        }
        CheckIo(error, "mount_setattr", pathForErrors);
    }

    /// <summary>move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH): attaches a detached tree at <paramref name="target"/> in the calling thread's mount namespace. The final component is not followed if it is a symlink.</summary>
    public static void MoveMount(FileDescriptorHandle tree, string target)
    {
        var empty = Utf8(string.Empty);
        var to = Utf8(target);
        using var from = new FdLease(tree);
        int error;
        fixed (byte* e = empty, t = to)
        {
            while (Interrupted((long)LibC.syscall((syscall_arg)SYS_move_mount, (syscall_arg)from.Fd, (syscall_arg)e, (syscall_arg)LibC.AT_FDCWD, (syscall_arg)t, (syscall_arg)MOVE_MOUNT_F_EMPTY_PATH), out error))
            {
            }
        }
        CheckIo(error, "move_mount", target);
    }

    /// <summary>The one umount2(2): 0, or the errno.</summary>
    private static int Umount2(string target, int flags)
    {
        var tgt = Utf8(target);
        int error;
        fixed (byte* t = tgt)
        {
            while (Interrupted(LibC.umount2(t, flags), out error))
            {
            }
        }
        return error;
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
}

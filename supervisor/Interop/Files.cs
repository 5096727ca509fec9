using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;

namespace S3Supervisor.Supervisor.Interop;

/// <summary>Paths and descriptors: open, stat and statx, realpath, fsync, chown.</summary>
internal static unsafe partial class Libc
{
    private const int SYS_statx = 332;
    private const int AT_STATX_FORCE_SYNC = 0x2000;
    private const uint STATX_BASIC_STATS = 0x7ff;
    private const int StatxSize = 256; // sizeof(struct statx)

    /// <summary>open(path, O_PATH | O_DIRECTORY | O_CLOEXEC): a handle on a directory that does not talk to the filesystem.</summary>
    public static FileDescriptorHandle OpenDirectoryPath(string path) =>
        new(Open(path, LibC.O_PATH | LibC.O_DIRECTORY | LibC.O_CLOEXEC));

    /// <summary>open(path, O_RDONLY | O_CLOEXEC), e.g. of /proc/&lt;pid&gt;/ns/mnt.</summary>
    public static FileDescriptorHandle OpenReadOnly(string path) =>
        new(Open(path, LibC.O_RDONLY | LibC.O_CLOEXEC));

    /// <summary>realpath(3): the canonical absolute path with every symlink resolved.</summary>
    public static string RealPath(string path)
    {
        var input = Utf8(path);
        var output = new byte[4097];
        int error;
        fixed (byte* i = input, o = output)
        {
            while (Interrupted(RealPathNative(i, o) == 0 ? -1 : 0, out error))
            {
            }
        }
        CheckIo(error, "realpath", path);
        var length = Array.IndexOf(output, (byte)0);
        return Encoding.UTF8.GetString(output, 0, length);
    }

    /// <summary>fsync of a directory, so a rename inside it is durable.</summary>
    public static void FsyncDirectory(string path)
    {
        var fd = Open(path, LibC.O_RDONLY | LibC.O_DIRECTORY | LibC.O_CLOEXEC);
        try
        {
            int error;
            while (Interrupted(LibC.fsync(fd), out error))
            {
            }
            CheckIo(error, "fsync", path);
        }
        finally
        {
            _ = LibC.close(fd);
        }
    }

    /// <summary>chown(2) of the group only (uid -1 keeps the owner).</summary>
    public static void ChangeGroup(string path, int gid)
    {
        var p = Utf8(path);
        int error;
        fixed (byte* b = p)
        {
            while (Interrupted(Chown(b, uint.MaxValue, (uint)gid), out error))
            {
            }
        }
        CheckIo(error, "chown", path);
    }

    /// <summary>
    /// stat(2) on a path: 0 when it answers, else the errno. Beware: FUSE may answer from its
    /// attribute cache, so a just-killed s3fs still looks alive here for up to a second; to probe a
    /// FUSE connection use <see cref="StatForceSyncErrno"/>. A hung connection may block either call,
    /// so callers on a health path bound it with a timeout.
    /// </summary>
    public static int StatErrno(string path, out ulong device) => StatIdentity(path, out device, out _);

    /// <summary>stat(2) that also returns the inode: 0 when it answers, else the errno (symlinks, including /proc magic links, are followed).</summary>
    public static int StatIdentity(string path, out ulong device, out ulong inode)
    {
        var p = Utf8(path);
        stat st;
        int error;
        fixed (byte* b = p)
        {
            while (Interrupted(LibC.stat(b, &st), out error))
            {
            }
        }
        device = error == 0 ? (ulong)st.st_dev : 0;
        inode = error == 0 ? (ulong)st.st_ino : 0;
        return error;
    }

    /// <summary>fstat(2): device and inode of an open descriptor.</summary>
    public static (ulong Device, ulong Inode) StatIdentity(FileDescriptorHandle handle, string pathForErrors)
    {
        using var fd = new FdLease(handle);
        stat st;
        int error;
        while (Interrupted(LibC.fstat(fd.Fd, &st), out error))
        {
        }
        CheckIo(error, "fstat", pathForErrors);
        return ((ulong)st.st_dev, (ulong)st.st_ino);
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
        int error;
        fixed (byte* b = p)
        {
            while (Interrupted((long)LibC.syscall((syscall_arg)SYS_statx, (syscall_arg)LibC.AT_FDCWD, (syscall_arg)b, (syscall_arg)AT_STATX_FORCE_SYNC, (syscall_arg)STATX_BASIC_STATS, (syscall_arg)buffer), out error))
            {
            }
        }
        return error;
    }

    /// <summary>The "major:minor" form mountinfo uses for a dev_t (glibc's encoding).</summary>
    public static string DeviceName(ulong device)
    {
        var major = ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfffUL);
        var minor = (device & 0xff) | ((device >> 12) & ~0xffUL);
        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{major}:{minor}");
    }

    /// <summary>The one open(2): the new descriptor, or an <see cref="InteropException"/> naming the path.</summary>
    private static int Open(string path, int flags)
    {
        var p = Utf8(path);
        int fd;
        int error;
        fixed (byte* b = p)
        {
            while (Interrupted(fd = LibC.open(b, flags, 0), out error))
            {
            }
        }
        CheckIo(error, "open", path);
        return fd;
    }

    [LibraryImport("libc", EntryPoint = "realpath", SetLastError = true)]
    private static partial nint RealPathNative(byte* path, byte* resolved);

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true)]
    private static partial int Chown(byte* path, uint owner, uint group);
}

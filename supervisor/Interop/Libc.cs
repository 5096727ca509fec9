using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace S3Supervisor.Supervisor.Interop;

/// <summary>
/// Every libc call the supervisor makes goes through here: errno is read at once, EINTR is
/// retried, and failures become <see cref="InteropException"/> carrying errno and path.
/// Tmds.LibC covers the classic calls; the new mount API (open_tree, move_mount, mount_setattr)
/// and close_range have no wrappers there and go through <c>syscall</c> with their numbers.
/// </summary>
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

    private const int SYS_close_range = 436;
    private const uint CLOSE_RANGE_CLOEXEC = 1u << 2;
    private const int SOL_SOCKET = 1;
    private const int SO_PEERCRED = 17;
    private const int SIGCHLD = 17;

    /// <summary>Bind-mounts <paramref name="source"/> on <paramref name="target"/>, then remounts it read-only if asked (a bind ignores MS_RDONLY on the first call).</summary>
    public static void BindMount(string source, string target, bool readOnly)
    {
        Mount(source, target, null, MS_BIND);
        if (readOnly)
        {
            try
            {
                Mount(null, target, null, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV);
            }
            catch
            {
                // Never leave a writable bind behind where a read-only one was asked for.
                Unmount(target, detach: true);
                throw;
            }
        }
    }

    public static void Mount(string? source, string target, string? fsType, ulong flags, string? data = null)
    {
        var src = source is null ? null : Utf8(source);
        var tgt = Utf8(target);
        var fs = fsType is null ? null : Utf8(fsType);
        var dat = data is null ? null : Utf8(data);
        fixed (byte* s = src, t = tgt, f = fs, d = dat)
        {
            while (mount(s, t, f, (ulong_t)flags, d) != 0)
            {
                var error = errno;
                if (error != Errno.EINTR)
                {
                    throw new InteropException("mount", error, target);
                }
            }
        }
    }

    /// <summary>Unmounts a path. Returns false when nothing was mounted there (EINVAL) or the path is gone (ENOENT).</summary>
    public static bool Unmount(string target, bool detach)
    {
        var tgt = Utf8(target);
        fixed (byte* t = tgt)
        {
            var flags = UMOUNT_NOFOLLOW | (detach ? MNT_DETACH : 0);
            while (true)
            {
                if (umount2(t, flags) == 0)
                {
                    return true;
                }
                var error = errno;
                switch (error)
                {
                    case Errno.EINTR:
                        continue;
                    case Errno.EINVAL or Errno.ENOENT:
                        return false;
                    default:
                        throw new InteropException("umount2", error, target);
                }
            }
        }
    }

    /// <summary>
    /// stat(2) on a path: 0 when it answers, else the errno. Beware: FUSE may answer from its
    /// attribute cache, so a just-killed s3fs still looks alive here for up to a second; to probe a
    /// FUSE connection use <see cref="StatForceSyncErrno"/>. A hung connection may block either call,
    /// so callers on a health path bound it with a timeout.
    /// </summary>
    public static int StatErrno(string path, out ulong device)
    {
        var p = Utf8(path);
        stat st;
        fixed (byte* b = p)
        {
            while (true)
            {
                if (stat(b, &st) == 0)
                {
                    device = (ulong)st.st_dev;
                    return 0;
                }
                var error = errno;
                if (error != Errno.EINTR)
                {
                    device = 0;
                    return error;
                }
            }
        }
    }

    /// <summary>Marks every inherited descriptor from <paramref name="first"/> up close-on-exec, so none leaks into an s3fs child.</summary>
    public static void CloseRangeCloexec(int first)
    {
        var rc = (long)syscall((syscall_arg)SYS_close_range, (syscall_arg)first, (syscall_arg)uint.MaxValue, (syscall_arg)CLOSE_RANGE_CLOEXEC);
        if (rc != 0)
        {
            throw new InteropException("close_range", errno);
        }
    }

    /// <summary>If the process started with SIGCHLD ignored, the kernel reaps children itself and .NET never learns of an exit.</summary>
    public static void ResetSigchldToDefault()
    {
        if (SetSignalHandler(SIGCHLD, 0) == -1)
        {
            throw new InteropException("signal(SIGCHLD, SIG_DFL)", Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>The peer's pid, uid and gid of a connected unix socket (SO_PEERCRED).</summary>
    public static (int Pid, uint Uid, uint Gid) PeerCredentials(Socket socket)
    {
        Span<byte> buffer = stackalloc byte[12];
        var length = socket.GetRawSocketOption(SOL_SOCKET, SO_PEERCRED, buffer);
        if (length != 12)
        {
            throw new InteropException("getsockopt(SO_PEERCRED)", Errno.EINVAL);
        }
        return (BitConverter.ToInt32(buffer[..4]), BitConverter.ToUInt32(buffer[4..8]), BitConverter.ToUInt32(buffer[8..12]));
    }

    /// <summary>Sends a signal; returns false when the process is already gone.</summary>
    public static bool Kill(int pid, int signal)
    {
        if (kill(pid, signal) == 0)
        {
            return true;
        }
        var error = errno;
        return error == Errno.ESRCH ? false : throw new InteropException("kill", error, pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    internal static byte[] Utf8(string value)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(value) + 1];
        Encoding.UTF8.GetBytes(value, bytes);
        return bytes;
    }

    [LibraryImport("libc", EntryPoint = "signal", SetLastError = true)]
    private static partial nint SetSignalHandler(int signum, nint handler);
}

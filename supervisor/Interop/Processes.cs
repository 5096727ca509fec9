using System.Net.Sockets;
using System.Runtime.InteropServices;
using Tmds.Linux;

namespace S3Supervisor.Supervisor.Interop;

/// <summary>This process and its peers: inherited descriptors, SIGCHLD, signals, a socket peer's credentials.</summary>
internal static unsafe partial class Libc
{
    private const int SYS_close_range = 436;
    private const uint CLOSE_RANGE_CLOEXEC = 1u << 2;
    private const int SOL_SOCKET = 1;
    private const int SO_PEERCRED = 17;
    private const int SIGCHLD = 17;

    /// <summary>Marks every inherited descriptor from <paramref name="first"/> up close-on-exec, so none leaks into an s3fs child.</summary>
    public static void CloseRangeCloexec(int first)
    {
        int error;
        while (Interrupted((long)LibC.syscall((syscall_arg)SYS_close_range, (syscall_arg)first, (syscall_arg)uint.MaxValue, (syscall_arg)CLOSE_RANGE_CLOEXEC), out error))
        {
        }
        CheckIo(error, "close_range");
    }

    /// <summary>If the process started with SIGCHLD ignored, the kernel reaps children itself and .NET never learns of an exit.</summary>
    public static void ResetSigchldToDefault()
    {
        int error;
        while (Interrupted(SetSignalHandler(SIGCHLD, 0) == -1 ? -1 : 0, out error))
        {
        }
        CheckIo(error, "signal(SIGCHLD, SIG_DFL)");
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
        int error;
        while (Interrupted(LibC.kill(pid, signal), out error))
        {
        }
        if (error == Errno.ESRCH)
        {
            return false;
        }
        CheckIo(error, "kill", pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return true;
    }

    [LibraryImport("libc", EntryPoint = "signal", SetLastError = true)]
    private static partial nint SetSignalHandler(int signum, nint handler);
}

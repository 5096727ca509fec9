using System.Runtime.InteropServices;

namespace S3Supervisor.TestKit.Interop;

/// <summary>The few libc calls the test kit makes itself (everything else goes through the tools it starts).</summary>
internal static partial class Native
{
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    public const int MNT_DETACH = 2;
    public const int ESRCH = 3;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint SysGetEuid();

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SysUmount2(string target, int flags);

    public static bool IsRoot => SysGetEuid() == 0;

    /// <summary>Sends <paramref name="signal"/>; false when the process is already gone.</summary>
    public static bool Kill(int pid, int signal)
    {
        if (pid <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(pid), pid, "refusing to signal a process group");
        }

        return SysKill(pid, signal) == 0;
    }

    /// <summary>Lazy unmount; returns errno (0 on success).</summary>
    public static int UnmountDetach(string target) =>
        SysUmount2(target, MNT_DETACH) == 0 ? 0 : Marshal.GetLastPInvokeError();
}

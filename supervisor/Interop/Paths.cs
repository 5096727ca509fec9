using System.Runtime.InteropServices;
using System.Text;

namespace S3Supervisor.Supervisor.Interop;

internal static unsafe partial class Libc
{
    /// <summary>realpath(3): the canonical absolute path with every symlink resolved.</summary>
    public static string RealPath(string path)
    {
        var input = Utf8(path);
        var output = new byte[4097];
        fixed (byte* i = input, o = output)
        {
            if (RealPathNative(i, o) == 0)
            {
                throw new InteropException("realpath", Marshal.GetLastPInvokeError(), path);
            }
        }
        var length = Array.IndexOf(output, (byte)0);
        return Encoding.UTF8.GetString(output, 0, length);
    }

    [LibraryImport("libc", EntryPoint = "realpath", SetLastError = true)]
    private static partial nint RealPathNative(byte* path, byte* resolved);
}

internal static unsafe partial class Libc
{
    private const int O_RDONLY = 0;
    private const int O_DIRECTORY = 0x10000;
    private const int O_CLOEXEC = 0x80000;

    /// <summary>fsync of a directory, so a rename inside it is durable.</summary>
    public static void FsyncDirectory(string path)
    {
        var p = Utf8(path);
        int fd;
        fixed (byte* b = p)
        {
            do
            {
                fd = Tmds.Linux.LibC.open(b, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
            }
            while (fd < 0 && Tmds.Linux.LibC.errno == Errno.EINTR);
        }
        if (fd < 0)
        {
            throw new InteropException("open", Tmds.Linux.LibC.errno, path);
        }
        try
        {
            while (Tmds.Linux.LibC.fsync(fd) != 0)
            {
                var error = Tmds.Linux.LibC.errno;
                if (error != Errno.EINTR)
                {
                    throw new InteropException("fsync", error, path);
                }
            }
        }
        finally
        {
            _ = Tmds.Linux.LibC.close(fd);
        }
    }
}

internal static unsafe partial class Libc
{
    /// <summary>chown(2) of the group only (uid -1 keeps the owner).</summary>
    public static void ChangeGroup(string path, int gid)
    {
        var p = Utf8(path);
        fixed (byte* b = p)
        {
            if (Chown(b, uint.MaxValue, (uint)gid) != 0)
            {
                throw new InteropException("chown", Marshal.GetLastPInvokeError(), path);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true)]
    private static partial int Chown(byte* path, uint owner, uint group);
}

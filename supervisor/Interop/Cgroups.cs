using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;

namespace S3Supervisor.Supervisor.Interop;

/// <summary>
/// The cgroup file system seen from libc: directories made and removed with mkdir(2)/rmdir(2),
/// control files read and written with one read(2)/write(2) each, and setns(CLONE_NEWCGROUP) for
/// <see cref="CgroupNamespaceThread"/>. What the files mean is <c>Mounts.ChildCgroups</c>' business.
/// </summary>
internal static unsafe partial class Libc
{
    private const int CLONE_NEWCGROUP = 0x02000000;

    /// <summary>mkdir(path, 0755): 0 when it was made, else the errno (EEXIST: it is already there).</summary>
    public static int MakeDirectoryErrno(string path)
    {
        var p = Utf8(path);
        int error;
        fixed (byte* b = p)
        {
            while (Interrupted(MakeDirectory(b, 0x1ed), out error))
            {
            }
        }
        return error;
    }

    /// <summary>rmdir(path): 0 when it is gone now, else the errno (ENOENT: it was not there; EBUSY: a cgroup that still holds processes or children).</summary>
    public static int RemoveDirectoryErrno(string path)
    {
        var p = Utf8(path);
        int error;
        fixed (byte* b = p)
        {
            while (Interrupted(RemoveDirectory(b), out error))
            {
            }
        }
        return error;
    }

    /// <summary>
    /// Writes <paramref name="value"/> to a control file in one write(2), as cgroup files want
    /// (each write is one command: a pid for cgroup.procs, "+memory" for cgroup.subtree_control).
    /// Opened with O_TRUNC as runc does: harmless on cgroupfs, and a plain file (a test's fake tree)
    /// then holds exactly the last value written. Hands back the errno (0 on success) for the caller
    /// to judge (ChildCgroups names the hierarchy in its error).
    /// </summary>
    public static int WriteControlFileErrno(string path, string value)
    {
        var p = Utf8(path);
        int fd;
        int error;
        fixed (byte* b = p)
        {
            while (Interrupted(fd = LibC.open(b, LibC.O_WRONLY | LibC.O_TRUNC | LibC.O_CLOEXEC, 0), out error))
            {
            }
        }
        if (error != 0)
        {
            return error;
        }
        try
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            long written;
            fixed (byte* data = bytes)
            {
                while (Interrupted(written = WriteNative(fd, data, (nuint)bytes.Length), out error))
                {
                }
            }
            // A control file takes a command whole or refuses it; a short write would be a kernel surprise.
            return error != 0 ? error : written == bytes.Length ? 0 : Errno.EIO;
        }
        finally
        {
            _ = LibC.close(fd);
        }
    }

    /// <summary>Reads a small file (a control file, /proc/&lt;pid&gt;/cgroup) whole: 0 and its text, else the errno.</summary>
    public static int ReadControlFileErrno(string path, out string text)
    {
        text = string.Empty;
        var p = Utf8(path);
        int fd;
        int error;
        fixed (byte* b = p)
        {
            while (Interrupted(fd = LibC.open(b, LibC.O_RDONLY | LibC.O_CLOEXEC, 0), out error))
            {
            }
        }
        if (error != 0)
        {
            return error;
        }
        try
        {
            using var content = new MemoryStream();
            var buffer = new byte[8192];
            while (true)
            {
                long count;
                fixed (byte* data = buffer)
                {
                    while (Interrupted(count = ReadNative(fd, data, (nuint)buffer.Length), out error))
                    {
                    }
                }
                if (error != 0)
                {
                    return error;
                }
                if (count == 0)
                {
                    break;
                }
                content.Write(buffer, 0, (int)count);
            }
            text = Encoding.UTF8.GetString(content.GetBuffer(), 0, (int)content.Length);
            return 0;
        }
        finally
        {
            _ = LibC.close(fd);
        }
    }

    /// <summary>setns(fd, CLONE_NEWCGROUP) for the calling thread alone (see <see cref="CgroupNamespaceThread"/>).</summary>
    public static void EnterCgroupNamespace(FileDescriptorHandle cgroupNamespace, string pathForErrors)
    {
        using var ns = new FdLease(cgroupNamespace);
        int error;
        while (Interrupted(LibC.setns(ns.Fd, CLONE_NEWCGROUP), out error))
        {
        }
        CheckIo(error, "setns(CLONE_NEWCGROUP)", pathForErrors);
    }

    [LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true)]
    private static partial int MakeDirectory(byte* path, uint mode);

    [LibraryImport("libc", EntryPoint = "rmdir", SetLastError = true)]
    private static partial int RemoveDirectory(byte* path);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteNative(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadNative(int fd, byte* buffer, nuint count);
}

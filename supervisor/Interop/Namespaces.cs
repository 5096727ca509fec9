using Tmds.Linux;

namespace S3Supervisor.Supervisor.Interop;

/// <summary>The calls that move one thread into another mount namespace (see <see cref="MountNamespaceThread"/>).</summary>
internal static partial class Libc
{
    /// <summary>unshare(CLONE_FS): gives the calling thread its own root, cwd and umask, which setns(CLONE_NEWNS) requires.</summary>
    public static void UnshareFilesystemAttributes()
    {
        int error;
        while (Interrupted(LibC.unshare(LibC.CLONE_FS), out error))
        {
        }
        CheckIo(error, "unshare(CLONE_FS)");
    }

    /// <summary>setns(fd, CLONE_NEWNS) for the calling thread; also sets its root and cwd to the namespace's root.</summary>
    public static void EnterMountNamespace(FileDescriptorHandle mountNamespace, string pathForErrors)
    {
        using var ns = new FdLease(mountNamespace);
        int error;
        while (Interrupted(LibC.setns(ns.Fd, LibC.CLONE_NEWNS), out error))
        {
        }
        CheckIo(error, "setns(CLONE_NEWNS)", pathForErrors);
    }
}

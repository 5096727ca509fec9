using System.Runtime.InteropServices;

namespace S3Supervisor.Supervisor.Interop;

/// <summary>
/// An owned file descriptor (a namespace, an O_PATH directory, a detached mount tree), closed
/// exactly once when disposed or finalized. 0 is a valid descriptor, so only negatives are invalid.
/// </summary>
internal sealed class FileDescriptorHandle : SafeHandle
{
    public FileDescriptorHandle()
        : base(-1, ownsHandle: true)
    {
    }

    internal FileDescriptorHandle(int fd)
        : base(-1, ownsHandle: true)
    {
        SetHandle(fd);
    }

    public override bool IsInvalid => handle < 0;

    // close(2) is never retried on EINTR under Linux: the descriptor is gone either way.
    protected override bool ReleaseHandle() => Tmds.Linux.LibC.close((int)handle) == 0;
}

using System.Runtime.InteropServices;
using System.Text;

namespace S3Supervisor.Supervisor.Interop;

/// <summary>
/// The one errno funnel every libc call in this folder goes through (dotnet/runtime's
/// Interop.IOErrors.cs does the same): errno is read right after the call, before anything else
/// can overwrite it; EINTR means "make the call again"; any other failure becomes one
/// <see cref="InteropException"/> carrying the errno and the path, or is handed back as the errno
/// where the caller decides what it means (ENOENT, EINVAL, ENOTCONN ...). Written as
/// <c>do { rc = call(); } while (Interrupted(rc, out var error));</c> rather than a delegate: the
/// calls take pinned buffers, which a lambda cannot capture.
/// </summary>
internal static unsafe partial class Libc
{
    /// <summary>
    /// True when <paramref name="result"/> (negative: failed) is a failure with EINTR, so the call
    /// must be made again. Otherwise <paramref name="error"/> is the errno of the failure, 0 on success.
    /// </summary>
    private static bool Interrupted(long result, out int error)
    {
        // Tmds.LibC's errno and our [LibraryImport(SetLastError = true)] calls share this slot.
        error = result < 0 ? Marshal.GetLastPInvokeError() : 0;
        return error == Errno.EINTR;
    }

    /// <summary>Throws the failure <paramref name="error"/> (from <see cref="Interrupted"/>) as an <see cref="InteropException"/>; 0 passes.</summary>
    private static void CheckIo(int error, string operation, string? path = null)
    {
        if (error != 0)
        {
            throw new InteropException(operation, error, path);
        }
    }

    /// <summary>A NUL-terminated UTF-8 copy of a path or name for the kernel.</summary>
    internal static byte[] Utf8(string value)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(value) + 1];
        Encoding.UTF8.GetBytes(value, bytes);
        return bytes;
    }

    /// <summary>Keeps a SafeHandle's descriptor from being closed while a raw call uses it.</summary>
    private readonly ref struct FdLease
    {
        private readonly SafeHandle _handle;

        public FdLease(SafeHandle handle)
        {
            var added = false;
            handle.DangerousAddRef(ref added);
            _handle = handle;
            Fd = (int)handle.DangerousGetHandle();
        }

        public int Fd { get; }

        public void Dispose() => _handle.DangerousRelease();
    }
}

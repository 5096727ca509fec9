namespace S3Supervisor.Supervisor.Interop;

/// <summary>A failed libc call: the operation, the errno read right after it, and the path it was about.</summary>
public sealed class InteropException : IOException
{
    public InteropException(string operation, int errno, string? path = null)
        : base(Describe(operation, errno, path))
    {
        Operation = operation;
        Errno = errno;
        Path = path;
    }

    public InteropException()
        : this("unknown", 0)
    {
    }

    public InteropException(string message)
        : base(message)
    {
        Operation = "unknown";
    }

    public InteropException(string message, Exception innerException)
        : base(message, innerException)
    {
        Operation = "unknown";
    }

    public string Operation { get; } = "unknown";

    public int Errno { get; }

    public string? Path { get; }

    private static string Describe(string operation, int errno, string? path) =>
        path is null
            ? $"{operation} failed: {Interop.Errno.Name(errno)} ({Interop.Errno.Message(errno)})"
            : $"{operation} {path} failed: {Interop.Errno.Name(errno)} ({Interop.Errno.Message(errno)})";
}

using System.Text;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// A child's log file (stdout and stderr, appended by s3fs itself), bounded: when it grows past its
/// limit its newest quarter is kept and the rest dropped. s3fs holds the file with O_APPEND, so its
/// next line lands at the new end. The tail shown in error messages is what this process wrote
/// (from where the file ended when it started).
/// </summary>
internal sealed class ChildLog
{
    private const int MaxTailLines = 40;
    private const int MaxLineLength = 500;
    private const int TailBytes = 64 * 1024;
    private readonly Lock _lock = new();
    private long _start;

    private ChildLog(string path, long maxBytes, long start)
    {
        Path = path;
        MaxBytes = maxBytes;
        _start = start;
    }

    public string Path { get; }

    public long MaxBytes { get; }

    /// <summary>Creates the file (0600, its directory 0700) if needed and trims it; <paramref name="fromEnd"/> false: the tail starts at today's end (a new child).</summary>
    public static ChildLog Open(string path, long maxBytes, bool fromEnd = false)
    {
        var directory = System.IO.Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using (new FileStream(path, new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
        {
        }
        var log = new ChildLog(path, maxBytes, 0);
        log.Bound();
        log._start = fromEnd ? 0 : new FileInfo(path).Length;
        return log;
    }

    /// <summary>Keeps the file under its limit (called at start and by the health loop).</summary>
    public void Bound()
    {
        lock (_lock)
        {
            try
            {
                // A stat first: the health loop asks every volume's log each round, and most are small.
                var info = new FileInfo(Path);
                if (!info.Exists || info.Length <= MaxBytes)
                {
                    return;
                }
                using var file = new FileStream(Path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
                if (file.Length <= MaxBytes)
                {
                    return;
                }
                var keep = (int)Math.Min(MaxBytes / 4, int.MaxValue);
                var buffer = new byte[keep];
                file.Seek(-keep, SeekOrigin.End);
                file.ReadExactly(buffer);
                var firstLine = Array.IndexOf(buffer, (byte)'\n') + 1;
                file.SetLength(0);
                file.Seek(0, SeekOrigin.Begin);
                file.Write("[s3supervisor: older lines dropped, the log is bounded]\n"u8);
                file.Write(buffer.AsSpan(firstLine));
                _start = 0;
            }
            catch (IOException)
            {
                // Gone (an unstaged volume) or unreadable: nothing to bound.
            }
        }
    }

    /// <summary>The last lines written since this process started (bounded in count and length).</summary>
    public string Tail()
    {
        lock (_lock)
        {
            try
            {
                using var file = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                var from = Math.Max(_start > file.Length ? 0 : _start, file.Length - TailBytes);
                file.Seek(from, SeekOrigin.Begin);
                var buffer = new byte[file.Length - from];
                var read = file.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
                var lines = Encoding.UTF8.GetString(buffer, 0, read).Split('\n', StringSplitOptions.RemoveEmptyEntries);
                return string.Join('\n', lines.TakeLast(MaxTailLines).Select(l => l.Length > MaxLineLength ? l[..MaxLineLength] : l));
            }
            catch (IOException)
            {
                return string.Empty;
            }
        }
    }
}

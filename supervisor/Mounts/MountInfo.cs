using System.Globalization;
using System.Text;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>One line of /proc/&lt;pid&gt;/mountinfo.</summary>
/// <param name="Root">The path inside the filesystem that is mounted here (a bind or subPath shows its subdirectory).</param>
/// <param name="Options">Per-mount options (ro/rw, nosuid, nodev, noexec, ...).</param>
public sealed record MountEntry(
    int MountId,
    int ParentId,
    int Major,
    int Minor,
    string Root,
    string MountPoint,
    IReadOnlyList<string> Options,
    IReadOnlyList<string> OptionalFields,
    string FsType,
    string Source,
    string SuperOptions)
{
    public string Device => string.Create(CultureInfo.InvariantCulture, $"{Major}:{Minor}");

    public bool ReadOnly => Options.Contains("ro");

    public bool IsFuse => FsType == "fuse" || FsType.StartsWith("fuse.", StringComparison.Ordinal);
}

/// <summary>Parses mountinfo (proc(5)). Paths are unescaped (\040 and friends).</summary>
public static class MountInfo
{
    public static IReadOnlyList<MountEntry> Read(int? pid = null)
    {
        var path = pid is null ? "/proc/self/mountinfo" : $"/proc/{pid.Value.ToString(CultureInfo.InvariantCulture)}/mountinfo";
        return Parse(File.ReadAllText(path));
    }

    /// <summary>The topmost mount exactly at <paramref name="mountPoint"/> (the last one in the table wins, as in the kernel).</summary>
    public static MountEntry? At(IReadOnlyList<MountEntry> table, string mountPoint)
    {
        MountEntry? found = null;
        foreach (var entry in table)
        {
            if (entry.MountPoint == mountPoint)
            {
                found = entry;
            }
        }
        return found;
    }

    public static IReadOnlyList<MountEntry> Parse(string text)
    {
        var result = new List<MountEntry>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var entry = ParseLine(line);
            if (entry is not null)
            {
                result.Add(entry);
            }
        }
        return result;
    }

    public static MountEntry? ParseLine(string line)
    {
        var fields = line.Split(' ');
        var separator = Array.IndexOf(fields, "-", 6);
        if (fields.Length < 10 || separator < 0 || separator + 3 > fields.Length)
        {
            return null;
        }
        var device = fields[2].Split(':');
        if (device.Length != 2
            || !int.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            || !int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var parent)
            || !int.TryParse(device[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            || !int.TryParse(device[1], NumberStyles.None, CultureInfo.InvariantCulture, out var minor))
        {
            return null;
        }
        return new MountEntry(
            id,
            parent,
            major,
            minor,
            Unescape(fields[3]),
            Unescape(fields[4]),
            fields[5].Split(','),
            fields[6..separator],
            fields[separator + 1],
            Unescape(fields[separator + 2]),
            separator + 3 < fields.Length ? fields[separator + 3] : string.Empty);
    }

    /// <summary>The kernel writes space, tab, newline and backslash in paths as \ooo octal escapes.</summary>
    public static string Unescape(string value)
    {
        if (!value.Contains('\\', StringComparison.Ordinal))
        {
            return value;
        }
        var bytes = new List<byte>(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '\\' && i + 3 < value.Length
                && IsOctal(value[i + 1]) && IsOctal(value[i + 2]) && IsOctal(value[i + 3]))
            {
                bytes.Add((byte)(((value[i + 1] - '0') << 6) | ((value[i + 2] - '0') << 3) | (value[i + 3] - '0')));
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(value[i].ToString()));
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsOctal(char c) => c is >= '0' and <= '7';
}

using System.Globalization;
using System.Text;

namespace S3Supervisor.TestKit;

/// <summary>One line of /proc/PID/mountinfo.</summary>
/// <param name="Root">The path inside the mounted file system that is mounted here (a subPath bind shows it).</param>
/// <param name="SuperOptions">The file system's own options after the source (a cgroup v1 hierarchy's controllers, or name=systemd, are there).</param>
public sealed record MountEntry(int Id, int ParentId, int Major, int Minor, string Root, string MountPoint, string Options, string FileSystemType, string Source, string SuperOptions = "")
{
    public string Device => string.Create(CultureInfo.InvariantCulture, $"{Major}:{Minor}");

    public bool IsReadOnly => Options.Split(',').Contains("ro");
}

/// <summary>
/// Reads mount tables: the test process's own, or another mount namespace's through /proc/PID/mountinfo.
/// This parses mountinfo again, on purpose, instead of using the supervisor's own reader
/// (supervisor/Mounts/MountInfo.cs): it is the tests' oracle, and a bug in the code under test must not
/// be able to hide in the code that checks it.
/// </summary>
public static class MountTable
{
    public static IReadOnlyList<MountEntry> Read(int? pid = null)
    {
        var path = pid is null ? "/proc/self/mountinfo" : $"/proc/{pid.Value.ToString(CultureInfo.InvariantCulture)}/mountinfo";
        return Parse(File.ReadAllText(path));
    }

    public static IReadOnlyList<MountEntry> Parse(string mountinfo)
    {
        var entries = new List<MountEntry>();
        foreach (var line in mountinfo.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split(' ');
            var dash = Array.IndexOf(f, "-", 6);
            if (f.Length < 10 || dash < 0 || dash + 2 >= f.Length)
            {
                continue;
            }

            var dev = f[2].Split(':');
            entries.Add(new MountEntry(
                int.Parse(f[0], CultureInfo.InvariantCulture),
                int.Parse(f[1], CultureInfo.InvariantCulture),
                int.Parse(dev[0], CultureInfo.InvariantCulture),
                int.Parse(dev[1], CultureInfo.InvariantCulture),
                Unescape(f[3]),
                Unescape(f[4]),
                f[5],
                f[dash + 1],
                Unescape(f[dash + 2]),
                dash + 3 < f.Length ? f[dash + 3] : ""));
        }

        return entries;
    }

    /// <summary>The topmost mount at exactly <paramref name="mountPoint"/>, or null.</summary>
    public static MountEntry? Find(string mountPoint, int? pid = null) => Find(Read(pid), mountPoint);

    /// <summary>The topmost mount at exactly <paramref name="mountPoint"/> in a table already read, or null.</summary>
    public static MountEntry? Find(IReadOnlyList<MountEntry> table, string mountPoint)
    {
        var full = Path.TrimEndingDirectorySeparator(mountPoint);
        return table.LastOrDefault(e => e.MountPoint == full);
    }

    /// <summary>The mount that holds <paramref name="path"/>: the one with the longest mount point at or above it (its topmost layer), or null.</summary>
    public static MountEntry? HolderOf(string path, int? pid = null) =>
        Read(pid)
            .Where(m => path == m.MountPoint || path.StartsWith(m.MountPoint.TrimEnd('/') + "/", StringComparison.Ordinal))
            .OrderBy(m => m.MountPoint.Length)
            .LastOrDefault();

    /// <summary>Every mount at or below <paramref name="directory"/>.</summary>
    public static IReadOnlyList<MountEntry> Under(string directory, int? pid = null)
    {
        var dir = Path.TrimEndingDirectorySeparator(directory);
        return Read(pid).Where(e => e.MountPoint == dir || e.MountPoint.StartsWith(dir + "/", StringComparison.Ordinal)).ToList();
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo.</summary>
    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var bytes = new List<byte>(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && IsOctal(field, i + 1))
            {
                bytes.Add(Convert.ToByte(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(field[i].ToString()));
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsOctal(string s, int start) =>
        start + 3 <= s.Length && s.Substring(start, 3).All(c => c is >= '0' and <= '7');
}

using System.Globalization;

namespace S3Supervisor.Bench;

/// <summary>Resident memory of a process from /proc/&lt;pid&gt;/status (kB as the kernel reports them, 1 kB = 1 KiB).</summary>
/// <param name="PssKiB">Proportional set size (smaps_rollup): shared pages (libraries) divided among the processes that map them, so a sum over processes is honest.</param>
internal readonly record struct Memory(long RssKiB, long PssKiB, long AnonKiB, long PeakRssKiB)
{
    public static Memory operator +(Memory a, Memory b) => new(a.RssKiB + b.RssKiB, a.PssKiB + b.PssKiB, a.AnonKiB + b.AnonKiB, a.PeakRssKiB + b.PeakRssKiB);

    public Memory DividedBy(int count) => count == 0 ? default : new(RssKiB / count, PssKiB / count, AnonKiB / count, PeakRssKiB / count);
}

internal static class ProcStatus
{
    /// <summary>VmRSS, Pss, RssAnon and VmHWM of <paramref name="pid"/>; null when it is gone.</summary>
    public static Memory? Read(int pid)
    {
        string[] lines;
        string[] rollup;
        try
        {
            var proc = $"/proc/{pid.ToString(CultureInfo.InvariantCulture)}";
            lines = File.ReadAllLines($"{proc}/status");
            rollup = File.ReadAllLines($"{proc}/smaps_rollup");
        }
        catch (IOException)
        {
            return null;
        }
        return new Memory(Field(lines, "VmRSS"), Field(rollup, "Pss"), Field(lines, "RssAnon"), Field(lines, "VmHWM"));
    }

    private static long Field(string[] lines, string name)
    {
        var line = lines.FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.Ordinal));
        if (line is null)
        {
            return 0;
        }
        var parts = line[(name.Length + 1)..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(parts[0], CultureInfo.InvariantCulture);
    }

    public static string Command(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/comm").Trim();
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }
}

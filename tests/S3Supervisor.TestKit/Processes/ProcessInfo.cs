using System.Globalization;
using S3Supervisor.TestKit.Interop;

namespace S3Supervisor.TestKit;

/// <summary>What /proc says about a process: enough to tell "still the one we started" from a reused pid.</summary>
public static class ProcessInfo
{
    /// <summary>Start time of <paramref name="pid"/> in clock ticks since boot (field 22 of /proc/PID/stat), or null if it is gone.</summary>
    public static long? StartTime(int pid)
    {
        var fields = StatFields(pid);
        return fields is null ? null : long.Parse(fields[19], CultureInfo.InvariantCulture);
    }

    /// <summary>True while <paramref name="pid"/> exists and is not a zombie.</summary>
    public static bool IsRunning(int pid)
    {
        var fields = StatFields(pid);
        return fields is not null && fields[0] != "Z" && fields[0] != "X";
    }

    /// <summary>The argument vector of <paramref name="pid"/>, empty if it is gone (or a kernel thread).</summary>
    public static IReadOnlyList<string> CommandLine(int pid)
    {
        try
        {
            var raw = File.ReadAllText($"/proc/{pid}/cmdline");
            return raw.Split('\0', StringSplitOptions.RemoveEmptyEntries);
        }
        catch (IOException)
        {
            return [];
        }
        catch (UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>SIGTERM, up to <paramref name="grace"/> for it to go, then SIGKILL. True if it had to be killed.</summary>
    public static async Task<bool> TerminateAsync(int pid, TimeSpan grace, Func<bool>? stillOurs = null)
    {
        bool Ours() => IsRunning(pid) && (stillOurs is null || stillOurs());
        if (!Ours())
        {
            return false;
        }

        Native.Kill(pid, Native.SIGTERM);
        var deadline = DateTime.UtcNow + grace;
        while (DateTime.UtcNow < deadline)
        {
            if (!Ours())
            {
                return false;
            }

            await Task.Delay(20).ConfigureAwait(false);
        }

        if (!Ours())
        {
            return false;
        }

        Native.Kill(pid, Native.SIGKILL);
        for (var i = 0; i < 100 && IsRunning(pid); i++)
        {
            await Task.Delay(10).ConfigureAwait(false);
        }

        return true;
    }

    /// <summary>Sends SIGKILL (no grace).</summary>
    public static void Kill(int pid) => Native.Kill(pid, Native.SIGKILL);

    /// <summary>Sends any signal; false if the process is gone.</summary>
    public static bool Signal(int pid, int signal) => Native.Kill(pid, signal);

    // Fields after "(comm)": [0] = state (field 3), [19] = starttime (field 22).
    private static string[]? StatFields(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }

        var close = stat.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }

        var fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields.Length > 19 ? fields : null;
    }
}

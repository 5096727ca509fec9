using System.Runtime.InteropServices;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.Bench;

/// <summary>What the figures were measured on.</summary>
internal static class HostFacts
{
    public static async Task PrintAsync(CancellationToken cancellationToken)
    {
        Out.Section("Host");
        var table = new Table("fact", "value") { AllLeft = true };
        var cpu = Lines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";
        table.Add("cores", $"{Environment.ProcessorCount} ({cpu})");
        var memKiB = Lines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal))?.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        table.Add("memory", memKiB is null ? "unknown" : Fmt.MiB(long.Parse(memKiB, System.Globalization.CultureInfo.InvariantCulture)));
        table.Add("kernel", Read("/proc/sys/kernel/osrelease") ?? RuntimeInformation.OSDescription);
        table.Add("os", Lines("/etc/os-release").FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))?.Split('=', 2)[1].Trim('"') ?? "unknown");
        table.Add("s3fs", await FirstLineAsync("s3fs", ["--version"], cancellationToken));
        table.Add("radosgw", await FirstLineAsync("radosgw", ["--version"], cancellationToken));
        table.Add(".NET", RuntimeInformation.FrameworkDescription);
        table.Add("supervisor (JIT)", ProductBinary.ForSupervisor(BinaryKind.Jit).Describe());
        table.Add("supervisor (AOT)", ProductBinary.AotAvailable(out var missing) ? ProductBinary.ForSupervisor(BinaryKind.Aot).Describe() : $"not measured: {missing}");
        table.Add("load average", LoadAverage);
        table.Add("date (UTC)", DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture));
        Out.Write(table);
    }

    /// <summary>1, 5 and 15 minute load averages, runnable/total tasks.</summary>
    public static string LoadAverage => Read("/proc/loadavg") is { } text ? string.Join(' ', text.Split(' ').Take(4)) : "unknown";

    private static async Task<string> FirstLineAsync(string command, string[] arguments, CancellationToken cancellationToken)
    {
        var path = Prerequisites.Which(command);
        if (path is null)
        {
            return "not installed";
        }
        try
        {
            var result = await ProcessRunner.RunAsync(path, arguments, new ProcessRunOptions { Timeout = TimeSpan.FromSeconds(10) }, cancellationToken);
            var text = (result.Stdout + "\n" + result.Stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return text.FirstOrDefault() ?? "unknown";
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            return $"unknown ({e.Message})";
        }
    }

    private static string? Read(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static string[] Lines(string path) => Read(path)?.Split('\n') ?? [];
}

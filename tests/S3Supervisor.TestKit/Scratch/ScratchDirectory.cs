using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace S3Supervisor.TestKit;

/// <summary>
/// A throwaway directory for one fixture (a Ceph cluster, an s3fs mount, a stand-in container):
/// <c>Root/&lt;name&gt;-&lt;id&gt;/</c> with a <c>.owner</c> file naming this test process.
/// Dispose kills every process whose command line names a path inside it, lazily unmounts
/// everything mounted inside it and only then deletes it (never through a mount).
/// If the test process dies instead (crash, kill -9, Ctrl-C), a detached watchdog started with the
/// first directory does the same within about a second, and the next test run sweeps whatever
/// is left (scripts/sweep-test-dirs.sh, embedded here, is the one implementation of all three).
/// </summary>
public sealed partial class ScratchDirectory : IAsyncDisposable
{
    /// <summary>Environment variable that moves <see cref="Root"/> (default: $TMPDIR/s3supervisor-tests).</summary>
    public const string RootVariable = "S3SUPERVISOR_TEST_ROOT";

    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static string? scriptPath;
    private static bool watchdogStarted;
    private int disposed;

    private ScratchDirectory(string path) => FullPath = path;

    /// <summary>Where every test process keeps its scratch directories. Kept short: unix socket paths inside must stay under 108 bytes.</summary>
    public static string Root { get; } =
        System.Environment.GetEnvironmentVariable(RootVariable) is { Length: > 0 } root
            ? System.IO.Path.GetFullPath(root)
            : System.IO.Path.Combine(System.IO.Path.GetTempPath(), "s3supervisor-tests");

    /// <summary>Absolute path of this directory.</summary>
    public string FullPath { get; }

    /// <summary>Creates <c>Root/&lt;name&gt;-&lt;12 hex&gt;</c>. The first call in a process also sweeps directories of dead test processes and starts the watchdog.</summary>
    public static async Task<ScratchDirectory> CreateAsync(string name, CancellationToken cancellationToken = default)
    {
        if (!SafeName().IsMatch(name))
        {
            throw new ArgumentException("use 1-24 characters of [a-z0-9-]", nameof(name));
        }

        await EnsureGuardAsync(cancellationToken).ConfigureAwait(false);
        var path = System.IO.Path.Combine(Root, $"{name}-{Guid.NewGuid().ToString("N")[..12]}");
        Directory.CreateDirectory(path);
        await File.WriteAllTextAsync(System.IO.Path.Combine(path, ".owner"), OwnerLine, cancellationToken).ConfigureAwait(false);
        return new ScratchDirectory(path);
    }

    /// <summary>Cleans every directory under <paramref name="root"/> (default <see cref="Root"/>) whose owner process is gone.</summary>
    public static async Task SweepStaleAsync(string? root = null, CancellationToken cancellationToken = default)
    {
        var script = await ScriptAsync().ConfigureAwait(false);
        var result = await ProcessRunner.RunAsync("/bin/bash", [script, "sweep-stale", root ?? Root], new ProcessRunOptions { Timeout = TimeSpan.FromSeconds(120) }, cancellationToken).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"sweeping stale test directories under {root ?? Root} failed: {result.Stderr.Trim()}");
        }
    }

    /// <summary>A path inside this directory.</summary>
    public string Combine(params string[] parts) => System.IO.Path.Combine([FullPath, .. parts]);

    /// <summary>Creates (if needed) and returns a subdirectory.</summary>
    public string CreateSubdirectory(params string[] parts)
    {
        var path = Combine(parts);
        Directory.CreateDirectory(path);
        return path;
    }

    public override string ToString() => FullPath;

    /// <summary>Kills what still refers to the directory, unmounts what is mounted in it, deletes it. Throws if a mount could not be removed.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0 || !Directory.Exists(FullPath))
        {
            return;
        }

        var script = await ScriptAsync().ConfigureAwait(false);
        var result = await ProcessRunner.RunAsync("/bin/bash", [script, "clean", FullPath], new ProcessRunOptions { Timeout = TimeSpan.FromSeconds(60) }).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"cleaning {FullPath} failed: {result.Stderr.Trim()}");
        }
    }

    internal static string OwnerLine { get; } = string.Create(
        CultureInfo.InvariantCulture,
        $"{System.Environment.ProcessId} {ProcessInfo.StartTime(System.Environment.ProcessId)}\n");

    /// <summary>The first call in a process sweeps what dead test processes left (directories and <see cref="TestCgroup"/>s) and starts the watchdog.</summary>
    internal static async Task EnsureGuardAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref watchdogStarted))
        {
            return;
        }

        await Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (watchdogStarted)
            {
                return;
            }

            Directory.CreateDirectory(Root);
            try
            {
                await SweepStaleAsync(Root, cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidOperationException)
            {
                // Best effort: another test process may be sweeping the same leftovers right now,
                // and a leftover that cannot be removed must not stop this run (it has its own paths).
            }

            var script = await ScriptAsync().ConfigureAwait(false);
            var self = System.Environment.ProcessId;

            // Detached (own session, stdio on /dev/null so that it never holds the test runner's pipes)
            // and tied to this process by pid + start time, not by a parent-death signal: .NET forks
            // from arbitrary thread-pool threads, and PR_SET_PDEATHSIG fires when that *thread* exits.
            using var watchdog = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/bin/sh")
            {
                ArgumentList =
                {
                    "-c", "exec setsid /bin/bash \"$0\" \"$@\" </dev/null >/dev/null 2>&1",
                    script, "watch",
                    self.ToString(CultureInfo.InvariantCulture),
                    ProcessInfo.StartTime(self)?.ToString(CultureInfo.InvariantCulture) ?? "0",
                    Root,
                },
                UseShellExecute = false,
            }) ?? throw new InvalidOperationException("could not start the scratch directory watchdog");
            Volatile.Write(ref watchdogStarted, true);
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>Path of the extracted sweep script (for tests of the watchdog).</summary>
    internal static Task<string> ScriptPathAsync() => ScriptAsync();

    private static async Task<string> ScriptAsync()
    {
        if (Volatile.Read(ref scriptPath) is { } known && File.Exists(known))
        {
            return known;
        }

        await using var resource = Assembly.GetExecutingAssembly().GetManifestResourceStream("S3Supervisor.TestKit.sweep-test-dirs.sh")
            ?? throw new InvalidOperationException("embedded sweep-test-dirs.sh is missing");
        using var reader = new StreamReader(resource, Encoding.UTF8);
        var text = await reader.ReadToEndAsync().ConfigureAwait(false);
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..12];
        Directory.CreateDirectory(Root);
        var path = System.IO.Path.Combine(Root, $".sweep-{hash}.sh");
        if (!File.Exists(path))
        {
            // write + rename: a bash already running an older copy keeps reading its own inode
            var temp = $"{path}.{System.Environment.ProcessId}.tmp";
            await File.WriteAllTextAsync(temp, text).ConfigureAwait(false);
            File.Move(temp, path, overwrite: true);

            // older versions of the script, left by earlier builds (a running copy keeps its inode)
            foreach (var old in Directory.GetFiles(Root, ".sweep-*.sh").Where(f => f != path && File.GetLastWriteTimeUtc(f) < DateTime.UtcNow.AddHours(-1)))
            {
                File.Delete(old);
            }
        }

        Volatile.Write(ref scriptPath, path);
        return path;
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,23}$")]
    private static partial Regex SafeName();
}

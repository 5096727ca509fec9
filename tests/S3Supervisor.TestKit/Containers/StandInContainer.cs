using System.Diagnostics;
using System.Text;

namespace S3Supervisor.TestKit;

/// <summary>
/// One volume of a <see cref="StandInContainer"/>: <paramref name="HostPath"/> (or its
/// <paramref name="SubPath"/> subdirectory) bind-mounted at <paramref name="ContainerPath"/>.
/// </summary>
/// <param name="HostPath">Absolute path on the host, typically a publish target or a staging mount.</param>
/// <param name="ContainerPath">Absolute path inside the container, e.g. /data.</param>
/// <param name="ReadOnly">Bind read-only, as for <c>readOnly: true</c> in a pod spec.</param>
/// <param name="SubPath">Relative directory inside <paramref name="HostPath"/> to mount instead of its root (a pod's <c>subPath</c>).</param>
public sealed record VolumeMountSpec(string HostPath, string ContainerPath, bool ReadOnly = false, string? SubPath = null);

/// <summary>A command inside a stand-in container failed.</summary>
public sealed class ContainerExecException(string message, int exitCode, string stderr) : Exception(message)
{
    public int ExitCode { get; } = exitCode;

    public string Stderr { get; } = stderr;
}

/// <summary>
/// A stand-in for an app container, for tests of what containers see of a volume: a real process
/// in its own mount namespace (<c>unshare --mount --propagation private</c>) with a root file system
/// of its own, like a container runtime builds one: a tmpfs root with the host's /usr, /etc (and
/// /lib*, /bin, /sbin) bound read-only, /proc, /dev, a private /tmp, and each volume bind-mounted
/// from its host path at its container path; then <c>pivot_root</c> and the old root unmounted, so the
/// namespace holds no copy of other host mounts (other tests' FUSE mounts stay unreferenced).
/// <para>
/// The binds are made once, at start. As in a real pod with the default (private) mount
/// propagation, a later remount on the host does not reach the container: after the host-side s3fs
/// is killed and mounted again, the container still holds the OLD, dead mount (ENOTCONN) until
/// something repairs it inside its namespace. That is the point of this class; nothing here
/// re-resolves a path after start.
/// </para>
/// Commands run inside with <c>nsenter -t PID -m -r -w</c>, so paths in <see cref="ExecAsync(string[])"/>
/// are container paths. The container also exits when the test process dies (its stdin closes).
/// Dispose kills it; its namespace and mounts go with it.
/// </summary>
public sealed class StandInContainer : IAsyncDisposable, Containers.IAppContainer
{
    // $1 = root; then triples: ro|rw SOURCE TARGET. Runs as root in a fresh private mount namespace.
    private const string SetupScript = """
        set -eu
        root=$1; shift
        mount -t tmpfs -o mode=0755,size=64m standin-root "$root"
        robind() { mkdir -p "$2"; mount --bind "$1" "$2"; mount -o remount,bind,ro "$2"; }
        robind /usr "$root/usr"
        robind /etc "$root/etc"
        for d in bin sbin lib lib32 lib64 libx32; do
          if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$root/$d"
          elif [ -d "/$d" ]; then robind "/$d" "$root/$d"; fi
        done
        mkdir -p "$root/proc" "$root/dev" "$root/tmp"
        mount -t proc proc "$root/proc" 2>/dev/null || true
        mount --bind /dev "$root/dev" 2>/dev/null || true
        mount -t tmpfs -o mode=1777 standin-tmp "$root/tmp"
        while [ $# -ge 3 ]; do
          mode=$1 src=$2 dst=$root$3; shift 3
          if [ -d "$src" ]; then mkdir -p "$dst"; else mkdir -p "$(dirname "$dst")"; : >"$dst"; fi
          mount --bind "$src" "$dst"
          if [ "$mode" = ro ]; then mount -o remount,bind,ro "$dst"; fi
        done
        cd "$root"
        mkdir .old-root
        pivot_root . .old-root
        cd /
        umount -l /.old-root
        rmdir /.old-root
        echo READY
        # Keep this shell (its command line names the scratch directory, which the crash sweep looks
        # for) and leave when the test process goes away (stdin reaches EOF).
        while read -r _; do :; done
        """;

    private static readonly TimeSpan DefaultExecTimeout = TimeSpan.FromSeconds(30);
    private readonly ScratchDirectory directory;
    private readonly Process process;
    private readonly StringBuilder stderr = new();
    private int disposed;

    private StandInContainer(string name, ScratchDirectory directory, Process process, IReadOnlyList<VolumeMountSpec> mounts)
    {
        Name = name;
        this.directory = directory;
        this.process = process;
        Mounts = mounts;
    }

    public string Name { get; }

    /// <summary>The container's "init" process; its mount namespace is the container's.</summary>
    public int Pid => process.Id;

    public IReadOnlyList<VolumeMountSpec> Mounts { get; }

    /// <summary>The host directory whose path the container's root tmpfs was mounted on (empty on the host side).</summary>
    public string RootPath => directory.Combine("rootfs");

    public bool IsRunning => ProcessInfo.IsRunning(Pid);

    /// <summary>
    /// Starts the container with <paramref name="mounts"/> bound in. Host paths are resolved now,
    /// once (a FUSE mount must be live at this moment, as it must be when a pod starts).
    /// </summary>
    public static async Task<StandInContainer> StartAsync(string name, IEnumerable<VolumeMountSpec> mounts, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var list = mounts.ToList();
        var arguments = new List<string>();
        foreach (var mount in list)
        {
            arguments.AddRange([mount.ReadOnly ? "ro" : "rw", Source(mount), Target(mount)]);
        }

        var unshare = Prerequisites.Which("unshare") ?? throw new InvalidOperationException(Prerequisites.MountNamespacesMissing());
        var directory = await ScratchDirectory.CreateAsync("container", cancellationToken).ConfigureAwait(false);
        var rootfs = directory.CreateSubdirectory("rootfs");
        var start = new ProcessStartInfo(unshare)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in (string[])["--mount", "--propagation", "private", "--", "/bin/bash", "-c", SetupScript, $"standin-{name}", rootfs, .. arguments])
        {
            start.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = start };
        var container = new StandInContainer(name, directory, process, list);
        try
        {
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                {
                    lock (container.stderr)
                    {
                        container.stderr.AppendLine(e.Data);
                    }
                }
            };
            process.Start();
            process.BeginErrorReadLine();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            string? line;
            try
            {
                line = await process.StandardOutput.ReadLineAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                line = null;
            }

            if (line != "READY")
            {
                if (process.WaitForExit(TimeSpan.FromSeconds(2)))
                {
                    process.WaitForExit();
                }

                string error;
                lock (container.stderr)
                {
                    error = container.stderr.ToString().Trim();
                }

                throw new InvalidOperationException($"stand-in container {name} did not start: {error}");
            }

            return container;
        }
        catch
        {
            await container.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Runs <paramref name="argv"/> inside the container (container paths, the container's root and mounts); never throws for a non-zero exit.</summary>
    public async Task<(int ExitCode, string Stdout, string Stderr)> ExecAsync(params string[] argv) =>
        (await ExecAsync(argv, standardInput: null, DefaultExecTimeout, CancellationToken.None).ConfigureAwait(false)).ToTuple();

    /// <summary><see cref="ExecAsync(string[])"/> with input, a timeout and cancellation.</summary>
    public Task<ProcessResult> ExecAsync(IReadOnlyList<string> argv, string? standardInput, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfZero(argv.Count);
        var nsenter = Prerequisites.Which("nsenter") ?? throw new InvalidOperationException(Prerequisites.MountNamespacesMissing());
        return ProcessRunner.RunAsync(
            nsenter,
            ["-t", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "-m", "-r", "-w", "--", .. argv],
            new ProcessRunOptions { StandardInput = standardInput, Timeout = timeout },
            cancellationToken);
    }

    /// <summary>cat of a container path; throws <see cref="ContainerExecException"/> (e.g. with "Transport endpoint is not connected") on failure.</summary>
    public async Task<string> ReadFileAsync(string containerPath, CancellationToken cancellationToken = default)
    {
        var result = await ExecAsync(["cat", "--", containerPath], null, DefaultExecTimeout, cancellationToken).ConfigureAwait(false);
        return Checked(result, $"reading {containerPath}").Stdout;
    }

    /// <summary>Writes <paramref name="content"/> to a container path (creating or truncating it).</summary>
    public async Task WriteFileAsync(string containerPath, string content, CancellationToken cancellationToken = default)
    {
        var result = await ExecAsync(["/bin/sh", "-c", "cat > \"$1\"", "sh", containerPath], content, DefaultExecTimeout, cancellationToken).ConfigureAwait(false);
        Checked(result, $"writing {containerPath}");
    }

    /// <summary>Names in a container directory (ls -A), sorted.</summary>
    public async Task<IReadOnlyList<string>> ListAsync(string containerPath, CancellationToken cancellationToken = default)
    {
        var result = await ExecAsync(["ls", "-1A", "--", containerPath], null, DefaultExecTimeout, cancellationToken).ConfigureAwait(false);
        return Checked(result, $"listing {containerPath}").Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>
    /// The container's mount table, from the /proc/PID/mountinfo the product's container repair reads,
    /// but parsed by <see cref="MountTable"/>, the tests' own parser: an oracle independent of the code under test.
    /// </summary>
    public IReadOnlyList<MountEntry> ReadMountTable() => MountTable.Read(Pid);

    /// <summary>Kills the container; its mount namespace and every mount in it vanish with it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        try
        {
            if (ProcessInfo.IsRunning(SafePid()))
            {
                ProcessInfo.Kill(Pid);
                await process.WaitForExitAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            process.Dispose();
            await directory.DisposeAsync().ConfigureAwait(false);
        }
    }

    private int SafePid()
    {
        try
        {
            return process.HasExited ? -1 : process.Id;
        }
        catch (InvalidOperationException)
        {
            return -1; // never started
        }
    }

    private static ProcessResult Checked(ProcessResult result, string what) =>
        result.Succeeded ? result : throw new ContainerExecException($"{what} in the container failed (exit {result.ExitCode}): {result.Stderr.Trim()}", result.ExitCode, result.Stderr);

    private static string Source(VolumeMountSpec mount)
    {
        if (!Path.IsPathFullyQualified(mount.HostPath))
        {
            throw new ArgumentException($"host path must be absolute: {mount.HostPath}", nameof(mount));
        }

        if (mount.SubPath is null)
        {
            return mount.HostPath;
        }

        if (Path.IsPathRooted(mount.SubPath) || mount.SubPath.Split('/').Contains(".."))
        {
            throw new ArgumentException($"subPath must be relative and free of '..': {mount.SubPath}", nameof(mount));
        }

        return Path.Combine(mount.HostPath, mount.SubPath);
    }

    private static string Target(VolumeMountSpec mount)
    {
        var path = mount.ContainerPath;
        if (!path.StartsWith('/') || path.Split('/').Contains("..") || path.Any(char.IsControl) || path.TrimEnd('/').Length == 0)
        {
            throw new ArgumentException($"container path must be absolute, not /, and free of '..': {path}", nameof(mount));
        }

        return path.TrimEnd('/');
    }
}

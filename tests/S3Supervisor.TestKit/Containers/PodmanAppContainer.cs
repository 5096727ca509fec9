using System.Globalization;

namespace S3Supervisor.TestKit.Containers;

/// <summary>
/// An application "pod": a real podman container whose volumes are bind mounts of publish targets
/// with the runtime's default (private) propagation, as a CRI runtime gives a pod its CSI volumes; a
/// subPath is a bind of the target's subdirectory, as kubelet makes it. So when an s3fs dies its view
/// here goes stale exactly as in a cluster, and only the supervisor's container repair (setns into
/// this container's mount namespace) brings it back. It runs the supervisor image's shell and
/// coreutils (always built here) as a sleeping root process in no network.
/// </summary>
public sealed class PodmanAppContainer : IAsyncDisposable, IAppContainer
{
    private static readonly TimeSpan ExecTimeout = TimeSpan.FromSeconds(30);
    private int _disposed;

    private PodmanAppContainer(string name, int pid)
    {
        Name = name;
        Pid = pid;
    }

    public string Name { get; }

    /// <summary>Host pid of the container's first process (its mount namespace is /proc/PID/ns/mnt).</summary>
    public int Pid { get; }

    public static async Task<PodmanAppContainer> StartAsync(string name, IEnumerable<VolumeMountSpec> mounts, string label = "s3supervisor-test")
    {
        await Podman.RunAsync(["rm", "-f", "-t", "0", name]).ConfigureAwait(false);
        var args = new List<string> { "run", "-d", "--name", name, "--pull=never", "--label", label, "--network=none", "--entrypoint=/bin/sleep" };
        foreach (var mount in mounts)
        {
            var source = mount.SubPath is { Length: > 0 } sub ? Path.Combine(mount.HostPath, sub) : mount.HostPath;
            args.AddRange(["-v", $"{source}:{mount.ContainerPath}{(mount.ReadOnly ? ":ro" : "")}"]);
        }
        args.AddRange([Podman.LocalImage("s3supervisor/supervisor", Podman.ImageTag), "infinity"]);
        await Podman.CheckedAsync(args).ConfigureAwait(false);
        var pid = int.Parse(await Podman.CheckedAsync(["inspect", "--format", "{{.State.Pid}}", name]).ConfigureAwait(false), CultureInfo.InvariantCulture);
        return new PodmanAppContainer(name, pid);
    }

    /// <summary><c>podman exec</c>; never throws for a non-zero exit.</summary>
    public async Task<(int ExitCode, string Stdout, string Stderr)> ExecAsync(params string[] argv) =>
        (await Podman.RunAsync(["exec", Name, .. argv], ExecTimeout).ConfigureAwait(false)).ToTuple();

    public async Task<string> ReadFileAsync(string path)
    {
        var result = await ExecAsync("cat", "--", path).ConfigureAwait(false);
        return result.ExitCode == 0 ? result.Stdout : throw new ContainerExecException($"{Name}: reading {path}: {result.Stderr.Trim()}", result.ExitCode, result.Stderr);
    }

    public async Task WriteFileAsync(string path, string content)
    {
        var result = await Podman.RunAsync(["exec", "-i", Name, "/bin/sh", "-c", "cat > \"$1\"", "sh", path], ExecTimeout, content).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new ContainerExecException($"{Name}: writing {path}: {result.Stderr.Trim()}", result.ExitCode, result.Stderr);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await Podman.RunAsync(["rm", "-f", "-t", "0", Name]).ConfigureAwait(false);
        }
    }
}

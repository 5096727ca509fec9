using System.Text.RegularExpressions;

namespace S3Supervisor.TestKit.Containers;

/// <summary>
/// The podman command line as the project's scripts run it: with scripts/containers.conf (runc, no
/// default ulimits; see that file), never pulling (no image registry is reachable on the machines this
/// runs on: the images come from scripts/images.sh).
/// </summary>
public static partial class Podman
{
    /// <summary>The repository above the running test (deploy/, scripts/containers.conf), or null.</summary>
    public static string? RepositoryRoot => S3Supervisor.TestKit.Supervisor.ProductBinary.RepositoryRoot;

    private static string Repository => RepositoryRoot ?? throw new InvalidOperationException("the repository (S3Supervisor.sln) is not above this test");

    /// <summary>The tag deploy/base gives both images (its kustomization's newTag); S3SUPERVISOR_IMAGE_TAG overrides it.</summary>
    public static string ImageTag
    {
        get
        {
            var configured = Environment.GetEnvironmentVariable("S3SUPERVISOR_IMAGE_TAG");
            if (!string.IsNullOrEmpty(configured))
            {
                return configured;
            }
            var kustomization = File.ReadAllText(Path.Combine(Repository, "deploy", "base", "kustomization.yaml"));
            return NewTag().Match(kustomization) is { Success: true } m ? m.Groups[1].Value : throw new InvalidOperationException("deploy/base/kustomization.yaml names no newTag");
        }
    }

    /// <summary>
    /// Whether a mount point is the container runtime's own (a container's root filesystem or shm in
    /// podman's storage, runc's state, as root uses them by default): the container tests make such mounts while other tests watch the
    /// machine's mount table for mounts they must not cause.
    /// </summary>
    public static bool IsRuntimeStorage(string mountPoint) =>
        RuntimeDirectories.Any(d => mountPoint.StartsWith(d, StringComparison.Ordinal));

    // podman's storage and run directories, and the OCI runtimes' state (runc mounts under
    // /run/runc/<container> while it creates or execs into a container).
    private static readonly string[] RuntimeDirectories =
        ["/var/lib/containers/", "/run/containers/", "/run/libpod/", "/run/runc/", "/run/crun/", "/run/netns/"];

    /// <summary>The local name podman gives an image built as <paramref name="name"/> (deploy/'s name, e.g. s3supervisor/plugin).</summary>
    public static string LocalImage(string name, string tag) => $"localhost/{name}:{tag}";

    /// <summary>Why the container tests cannot run here, or null: podman and runc installed, both images built.</summary>
    public static async Task<string?> MissingAsync()
    {
        if (Prerequisites.Which("podman") is null || Prerequisites.Which("runc") is null)
        {
            return "podman and runc are not installed (apt-get install podman buildah runc debootstrap; then bash scripts/images.sh)";
        }
        if (RepositoryRoot is null)
        {
            return "the repository (deploy/, scripts/containers.conf) is not above this test";
        }
        foreach (var name in (string[])["s3supervisor/supervisor", "s3supervisor/plugin"])
        {
            var image = LocalImage(name, ImageTag);
            var exists = await RunAsync(["image", "exists", image]).ConfigureAwait(false);
            if (!exists.Succeeded)
            {
                return $"image {image} is not built (bash scripts/images.sh)";
            }
        }
        return null;
    }

    public static Task<ProcessResult> RunAsync(IReadOnlyList<string> arguments, TimeSpan? timeout = null, string? standardInput = null) =>
        ProcessRunner.RunAsync("podman", arguments, Options(timeout, standardInput));

    /// <summary>Runs podman and returns its trimmed standard output; throws with podman's stderr on a non-zero exit.</summary>
    public static async Task<string> CheckedAsync(IReadOnlyList<string> arguments, TimeSpan? timeout = null)
    {
        var result = await ProcessRunner.RunCheckedAsync("podman", arguments, Options(timeout)).ConfigureAwait(false);
        return result.Stdout.Trim();
    }

    private static ProcessRunOptions Options(TimeSpan? timeout, string? standardInput = null) => new()
    {
        Timeout = timeout ?? TimeSpan.FromSeconds(120),
        StandardInput = standardInput,
        Environment = new Dictionary<string, string?> { ["CONTAINERS_CONF"] = Path.Combine(Repository, "scripts", "containers.conf") },
    };

    [GeneratedRegex(@"newTag:\s*""?([^""\s]+)")]
    private static partial Regex NewTag();
}

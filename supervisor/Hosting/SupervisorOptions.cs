using Microsoft.Extensions.Options;
using S3Supervisor.Common;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Hosting;

/// <summary>
/// Configuration section "Supervisor" (env: Supervisor__SocketPath, Supervisor__AllowedRoots__0, ...).
/// The same section also feeds the features' own options: <c>Api.ApiAccessOptions</c> (AllowedUids)
/// and <c>Recovery.RebuildOptions</c> (RestoreParallelism).
/// </summary>
public sealed class SupervisorOptions
{
    public const string Section = "Supervisor";

    /// <summary>The unix socket the API listens on. Its directory is created 0750, the socket is 0660.</summary>
    public string SocketPath { get; set; } = "/run/s3supervisor/supervisor.sock";

    /// <summary>Group that owns the socket (so an unprivileged plugin can connect). Empty keeps root's group.</summary>
    public int? SocketGroup { get; set; }

    /// <summary>Every staging and target path must resolve under one of these.</summary>
    public List<string> AllowedRoots { get; set; } = [];

    /// <summary>Journal of non-secret mount records; a hostPath in a cluster so it outlives the pod.</summary>
    public string StateDirectory { get; set; } = "/var/lib/s3supervisor";

    /// <summary>Private directory (0700) for per-volume passwd files. Must be on tmpfs (memory).</summary>
    public string SecretsDirectory { get; set; } = "/run/s3supervisor/secrets";

    /// <summary>Refuse to start when the secrets directory is not on tmpfs (tests may turn this off).</summary>
    public bool RequireTmpfsSecrets { get; set; } = true;

    /// <summary>
    /// The supervisor's own directory (0700) where each s3fs mounts first; the staging path then gets a
    /// bind of it made through file descriptors, so a path swapped under kubelet's root can never
    /// redirect s3fs's own mount(2) by name. Not shared with any other container.
    /// </summary>
    public string MountDirectory { get; set; } = "/run/s3supervisor/mounts";

    /// <summary>Parent of per-volume s3fs cache directories (option use_cache).</summary>
    public string CacheDirectory { get; set; } = "/var/cache/s3supervisor";

    public string S3fsPath { get; set; } = "s3fs";

    public TimeSpan MountTimeout { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan HealthCheckInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one health stat may take before the mount counts as hung.</summary>
    public TimeSpan HealthCheckTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Grace for each s3fs to flush buffered writes on shutdown or unstage before SIGKILL.</summary>
    public TimeSpan ShutdownGrace { get; set; } = TimeSpan.FromSeconds(20);

    public TimeSpan BackoffInitial { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan BackoffMax { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>oom_score_adj of every s3fs child: the OOM killer takes one runaway mount before the supervisor.</summary>
    public int ChildOomScoreAdj { get; set; } = 500;

    /// <summary>Replace stale FUSE mounts inside running containers after a remount (needs hostPID).</summary>
    public bool RepairContainers { get; set; } = true;

    /// <summary>"ip:port" for Prometheus metrics (GET /metrics, HTTP/1.1), e.g. 127.0.0.1:9810. Empty: no metrics listener.</summary>
    public string MetricsAddress { get; set; } = string.Empty;

    /// <summary>
    /// false (the default): SIGTERM leaves every s3fs running with its mounts, for the next supervisor
    /// to adopt (a restart or an upgrade costs nothing). true: SIGTERM drains, as `s3supervisor drain` does.
    /// </summary>
    public bool StopChildrenOnShutdown { get; set; }

    /// <summary>Each s3fs's log file (StateDirectory/logs) is cut back to its newest quarter beyond this size.</summary>
    public long ChildLogMaxBytes { get; set; } = 1 << 20;

    /// <summary>
    /// true (the default): each s3fs is moved right after start into its volume's cgroup below
    /// <see cref="ChildCgroupParent"/>, outside this container's cgroups, so that a runtime killing
    /// the supervisor's container leaves it running. false: children stay in the supervisor's cgroup
    /// (they then die with its container; a SIGTERM restart still keeps them).
    /// </summary>
    public bool PlaceChildrenInCgroups { get; set; } = true;

    /// <summary>
    /// Where the host's cgroup hierarchies are mounted: /sys/fs/cgroup on a node; in a pod the host's
    /// /sys/fs/cgroup as a hostPath, e.g. /host/sys/fs/cgroup (the container's own /sys/fs/cgroup
    /// shows only its own cgroups). Each s3fs gets a cgroup below it in every hierarchy.
    /// </summary>
    public string CgroupRoot { get; set; } = ChildCgroupSettings.DefaultRoot;

    /// <summary>The parent of the per-volume cgroups in each hierarchy, relative to its root (s3supervisor: /sys/fs/cgroup/memory/s3supervisor/&lt;volume&gt;).</summary>
    public string ChildCgroupParent { get; set; } = ChildCgroupSettings.DefaultParent;

    /// <summary>Memory limit of each s3fs's cgroup, a Kubernetes quantity (512Mi, 1Gi, 1G). Empty: no limit.</summary>
    public string ChildMemoryMax { get; set; } = string.Empty;

    /// <summary><see cref="ChildMemoryMax"/> in bytes; null when empty (no limit) or invalid (the validator stops start-up then).</summary>
    public long? ChildMemoryMaxBytes =>
        ChildMemoryMax.Length > 0 && MemoryQuantity.TryParseBytes(ChildMemoryMax, out var bytes, out _) ? bytes : null;
}

internal sealed class SupervisorOptionsValidator : IValidateOptions<SupervisorOptions>
{
    public ValidateOptionsResult Validate(string? name, SupervisorOptions options)
    {
        var failures = new List<string>();
        if (!Path.IsPathFullyQualified(options.SocketPath))
        {
            failures.Add("Supervisor:SocketPath must be an absolute path.");
        }
        if (options.AllowedRoots.Count == 0)
        {
            failures.Add("Supervisor:AllowedRoots needs at least one absolute directory (the kubelet root, /var/lib/kubelet).");
        }
        foreach (var root in options.AllowedRoots)
        {
            if (!Path.IsPathFullyQualified(root) || root == "/")
            {
                failures.Add($"Supervisor:AllowedRoots entry '{root}' must be an absolute directory other than '/'.");
            }
        }
        foreach (var (value, key) in new[] { (options.StateDirectory, "StateDirectory"), (options.SecretsDirectory, "SecretsDirectory"), (options.CacheDirectory, "CacheDirectory"), (options.MountDirectory, "MountDirectory") })
        {
            if (!Path.IsPathFullyQualified(value))
            {
                failures.Add($"Supervisor:{key} must be an absolute path.");
            }
        }
        if (options.MountTimeout <= TimeSpan.Zero || options.HealthCheckInterval <= TimeSpan.Zero || options.HealthCheckTimeout <= TimeSpan.Zero)
        {
            failures.Add("Supervisor:MountTimeout, HealthCheckInterval and HealthCheckTimeout must be positive.");
        }
        if (options.BackoffInitial <= TimeSpan.Zero || options.BackoffMax < options.BackoffInitial)
        {
            failures.Add("Supervisor:BackoffInitial must be positive and not above BackoffMax.");
        }
        if (options.ChildOomScoreAdj is < -1000 or > 1000)
        {
            failures.Add("Supervisor:ChildOomScoreAdj must be between -1000 and 1000.");
        }
        if (options.ChildLogMaxBytes < 4096)
        {
            failures.Add("Supervisor:ChildLogMaxBytes must be at least 4096.");
        }
        if (options.MetricsAddress.Length > 0 && (!System.Net.IPEndPoint.TryParse(options.MetricsAddress, out var metrics) || metrics.Port == 0))
        {
            failures.Add($"Supervisor:MetricsAddress '{options.MetricsAddress}' must be ip:port, e.g. 127.0.0.1:9810.");
        }
        if (ChildCgroupSettings.RootProblem(options.CgroupRoot) is { } cgroupRoot)
        {
            failures.Add($"Supervisor:CgroupRoot {cgroupRoot}.");
        }
        if (ChildCgroupSettings.ParentProblem(options.ChildCgroupParent) is { } parent)
        {
            failures.Add($"Supervisor:ChildCgroupParent {parent}.");
        }
        if (options.ChildMemoryMax.Length > 0 && (MemoryQuantity.TryParseBytes(options.ChildMemoryMax, out var limit, out var memoryProblem) ? MemoryQuantity.ChildLimitProblem((ulong)limit) : memoryProblem) is { } problem)
        {
            failures.Add($"Supervisor:ChildMemoryMax {problem}.");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

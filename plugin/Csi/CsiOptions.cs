namespace S3Supervisor.Plugin.Csi;

/// <summary>
/// The plugin's configuration, section "Csi" (environment: Csi__Endpoint, Csi__NodeId, ...).
/// Validated by <see cref="CsiOptionsValidator"/> before anything listens. The S3 client's settings in
/// the same section are <c>Storage.S3ClientOptions</c>.
/// </summary>
public sealed class CsiOptions
{
    public const string Section = "Csi";
    public const string DefaultEndpoint = "unix:///csi/csi.sock";
    public const string DefaultDriverName = "s3.csi.s3supervisor.io";
    public const string DefaultSupervisorSocket = "/run/s3supervisor/supervisor.sock";

    /// <summary>Where kubelet and the sidecars reach the plugin: "unix:///path" or an absolute path.</summary>
    public string Endpoint { get; set; } = DefaultEndpoint;

    /// <summary>The CSI driver name (GetPluginInfo), as in the CSIDriver object and StorageClass provisioner.</summary>
    public string DriverName { get; set; } = DefaultDriverName;

    /// <summary>This node's id (NodeGetInfo). Falls back to KUBE_NODE_NAME, then NODE_ID, from the environment.</summary>
    public string? NodeId { get; set; }

    /// <summary>The supervisor's unix socket; node calls go there.</summary>
    public string SupervisorSocket { get; set; } = DefaultSupervisorSocket;

    /// <summary>"node" (DaemonSet), "controller" (Deployment) or "all".</summary>
    public string Mode { get; set; } = PluginModes.All;

    /// <summary>How long Probe waits for the supervisor before it reports not-ready.</summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(2);

    public bool ServesNode => PluginModes.ServesNode(Mode);

    public bool ServesController => PluginModes.ServesController(Mode);

    /// <summary>The socket path of <see cref="Endpoint"/>; only meaningful once validated.</summary>
    public string SocketPath => CsiEndpoint.TryGetSocketPath(Endpoint, out var path, out _) ? path : Endpoint;
}

public static class PluginModes
{
    public const string Node = "node";
    public const string Controller = "controller";
    public const string All = "all";

    public static bool IsValid(string? mode) => mode is not null && (Is(mode, Node) || Is(mode, Controller) || Is(mode, All));

    public static bool ServesNode(string? mode) => mode is not null && (Is(mode, Node) || Is(mode, All));

    public static bool ServesController(string? mode) => mode is not null && (Is(mode, Controller) || Is(mode, All));

    private static bool Is(string mode, string value) => string.Equals(mode.Trim(), value, StringComparison.OrdinalIgnoreCase);
}

/// <summary>CSI endpoints as the sidecars spell them: "unix:///csi/csi.sock", or a plain absolute path.</summary>
public static class CsiEndpoint
{
    private const string UnixScheme = "unix://";

    public static bool TryGetSocketPath(string? endpoint, out string path, out string error)
    {
        path = string.Empty;
        if (string.IsNullOrWhiteSpace(endpoint))
        {
            error = "is required";
            return false;
        }
        var candidate = endpoint.StartsWith(UnixScheme, StringComparison.OrdinalIgnoreCase) ? endpoint[UnixScheme.Length..] : endpoint;
        if (candidate.Contains("://", StringComparison.Ordinal))
        {
            error = "must be a unix socket: \"unix:///path/to/csi.sock\" or an absolute path";
            return false;
        }
        if (!candidate.StartsWith('/'))
        {
            error = "must name an absolute socket path (\"unix:///csi/csi.sock\" has three slashes)";
            return false;
        }
        if (candidate.EndsWith('/') || candidate.Any(char.IsControl))
        {
            error = "must name a socket file, not a directory, without control characters";
            return false;
        }
        // sun_path holds 108 bytes including the terminating NUL.
        if (System.Text.Encoding.UTF8.GetByteCount(candidate) > 107)
        {
            error = "socket path is longer than 107 bytes";
            return false;
        }
        path = candidate;
        error = string.Empty;
        return true;
    }
}

namespace S3Supervisor.Plugin.Storage;

/// <summary>
/// How the controller talks to S3. Bound from section "Csi" beside the plugin's other settings
/// (Csi__S3ForcePathStyle, Csi__S3InsecureSkipTlsVerify), so the keys stay where they were.
/// </summary>
public sealed class S3ClientOptions
{
    public const string Section = "Csi";

    /// <summary>Send path-style S3 requests (bucket in the path). MinIO, Ceph RGW and OBS want it; AWS accepts it.</summary>
    public bool S3ForcePathStyle { get; set; } = true;

    /// <summary>Skip TLS certificate checks towards S3 (self-signed on-premise endpoints).</summary>
    public bool S3InsecureSkipTlsVerify { get; set; }
}

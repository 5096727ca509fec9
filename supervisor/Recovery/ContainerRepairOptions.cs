namespace S3Supervisor.Supervisor.Recovery;

/// <summary>Settings of the in-place repair of stale FUSE mounts inside running containers.</summary>
public sealed class ContainerRepairOptions
{
    /// <summary>
    /// When false, stale container mounts are still found and reported (so the pod's Event can
    /// say so) but left alone; pods then rely on a livenessProbe on the mount path
    /// (HostToContainer propagation does not carry the remount, see README "Fallbacks").
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Where procfs is mounted (a fake tree in tests). With hostPID this shows every container.</summary>
    public string ProcRoot { get; set; } = "/proc";

    /// <summary>
    /// Bound on each confirming stat. A dead FUSE connection answers ENOTCONN in microseconds;
    /// a reused device number may belong to a live but hung filesystem, which would block.
    /// </summary>
    public TimeSpan ConfirmTimeout { get; set; } = TimeSpan.FromSeconds(2);
}

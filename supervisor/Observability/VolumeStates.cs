using S3Supervisor.Api.V1;

namespace S3Supervisor.Supervisor.Observability;

/// <summary>
/// How a volume's state is spelled wherever people read it: metrics labels, state-change log lines,
/// status details and the operator CLI. Here, below Mounts, so that metrics need nothing from Mounts.
/// </summary>
public static class VolumeStates
{
    public static string Name(VolumeState state) => state switch
    {
        VolumeState.Mounting => "Mounting",
        VolumeState.Ready => "Ready",
        VolumeState.Stale => "Stale",
        VolumeState.Recovering => "Recovering",
        VolumeState.Failed => "Failed",
        VolumeState.Unmounting => "Unmounting",
        _ => "Unknown",
    };
}

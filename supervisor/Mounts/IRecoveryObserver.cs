using S3Supervisor.Api.V1;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// Told when a volume's s3fs was replaced. Container repair and Kubernetes Events hang off this,
/// so the volume manager itself knows nothing of pods or namespaces.
/// </summary>
public interface IRecoveryObserver
{
    /// <param name="deadDevice">The FUSE connection that died ("major:minor"), empty when unknown.</param>
    Task OnRecoveredAsync(Volume volume, string deadDevice, CancellationToken cancellationToken);

    Task OnRecoveryFailedAsync(Volume volume, string reason, CancellationToken cancellationToken);

    /// <summary>Files written to the node's disk under an unmounted staging directory were moved aside.</summary>
    Task OnStrayFilesAsync(Volume volume, string message, CancellationToken cancellationToken);
}

public sealed class NullRecoveryObserver : IRecoveryObserver
{
    public Task OnRecoveredAsync(Volume volume, string deadDevice, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task OnRecoveryFailedAsync(Volume volume, string reason, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task OnStrayFilesAsync(Volume volume, string message, CancellationToken cancellationToken) => Task.CompletedTask;
}

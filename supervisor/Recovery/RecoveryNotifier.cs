using S3Supervisor.Api.V1;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Recovery;

/// <summary>
/// After a volume's s3fs was replaced: repairs the stale copies held inside running containers
/// (when enabled) and tells each affected pod with an Event what happened.
/// </summary>
public sealed partial class RecoveryNotifier : IRecoveryObserver
{
    private readonly ContainerRepairer _repairer;
    private readonly IPodEventRecorder _events;
    private readonly VolumeEventHub _hub;
    private readonly ILogger<RecoveryNotifier> _logger;

    private readonly Observability.SupervisorMetrics _metrics;

    public RecoveryNotifier(ContainerRepairer repairer, IPodEventRecorder events, VolumeEventHub hub, ILogger<RecoveryNotifier> logger, Observability.SupervisorMetrics metrics)
    {
        _metrics = metrics;
        _repairer = repairer;
        _events = events;
        _hub = hub;
        _logger = logger;
    }

    public async Task OnRecoveredAsync(Volume volume, string deadDevice, CancellationToken cancellationToken)
    {
        var repaired = 0;
        var failed = new List<string>();
        if (deadDevice.Length > 0)
        {
            var results = await _repairer.RepairAsync(deadDevice, volume.StagingPath, cancellationToken).ConfigureAwait(false);
            repaired = results.Count(r => r.Success);
            failed.AddRange(results.Where(r => !r.Success).Select(r => $"pid {r.Pid} {r.MountPoint}: {r.Error}"));
            LogRepaired(volume.VolumeId, deadDevice, repaired, failed.Count);
            _metrics.ContainerRepairs(repaired, failed.Count);
            _hub.Publish(new VolumeEvent
            {
                Time = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
                VolumeId = volume.VolumeId,
                State = volume.State,
                Reason = failed.Count == 0 ? "ContainersRepaired" : "ContainerRepairFailed",
                Message = $"{repaired} container mount(s) of dead connection {deadDevice} replaced" + (failed.Count > 0 ? $"; {failed.Count} failed: {string.Join("; ", failed)}" : string.Empty),
                Volume = volume,
            });
        }
        foreach (var pod in Pods(volume))
        {
            if (failed.Count > 0)
            {
                var why = _repairer.Enabled
                    ? $"s3 volume {volume.VolumeId} was remounted, but {failed.Count} container mount(s) could not be repaired ({failed[0]}); restart the pod, or give it a livenessProbe on the mount path"
                    : $"s3 volume {volume.VolumeId} was remounted; container repair is turned off, so running containers still see the old mount: restart the pod, or use mountPropagation: HostToContainer or a livenessProbe on the mount path";
                await _events.RecordAsync(pod, warning: true, "ContainerRepairFailed", why, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await _events.RecordAsync(pod, warning: false, "VolumeRecovered", $"s3 volume {volume.VolumeId} was remounted (s3fs pid {volume.Pid}, restart {volume.RestartCount}); {repaired} container mount(s) repaired in place", cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public async Task OnRecoveryFailedAsync(Volume volume, string reason, CancellationToken cancellationToken)
    {
        foreach (var pod in Pods(volume))
        {
            await _events.RecordAsync(pod, warning: true, "VolumeRecoveryFailed", $"s3 volume {volume.VolumeId} could not be remounted: {reason}; the supervisor keeps retrying with backoff", cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task OnStrayFilesAsync(Volume volume, string message, CancellationToken cancellationToken)
    {
        foreach (var pod in Pods(volume))
        {
            await _events.RecordAsync(pod, warning: true, "StrayFilesMovedAside", $"s3 volume {volume.VolumeId}: {message}", cancellationToken).ConfigureAwait(false);
        }
    }

    private static IEnumerable<PodIdentity> Pods(Volume volume) =>
        volume.Targets.Where(t => t.Pod is { Name.Length: > 0 }).Select(t => new PodIdentity(t.Pod.Uid, t.Pod.Name, t.Pod.Namespace)).Distinct();

    [LoggerMessage(EventId = 1400, Level = LogLevel.Information, Message = "Volume {VolumeId}: dead connection {Device}: {Repaired} container mount(s) repaired, {Failed} failed")]
    private partial void LogRepaired(string volumeId, string device, int repaired, int failed);
}

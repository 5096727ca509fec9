using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using S3Supervisor.Api.V1;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// How a volume's life is told: state changes (one log line and one event each), other events, and
/// the recovery observer (pod Events, container repair), whose failures never stop the caller.
/// </summary>
internal sealed partial class VolumeReporter(VolumeEventHub events, IRecoveryObserver observer, TimeProvider time, ILogger logger, CancellationToken shutdown)
{
    private readonly ILogger _logger = logger;

    public VolumeEventHub Events => events;

    public void SetState(ManagedVolume volume, VolumeState state, string reason, string message)
    {
        volume.State = state;
        volume.StateSince = time.GetUtcNow();
        if (state == VolumeState.Ready)
        {
            volume.LastError = string.Empty;
        }
        LogStateChanged(volume.VolumeId, StateName(state), reason, message);
        Emit(volume, reason, message);
    }

    public void Emit(ManagedVolume volume, string reason, string message) =>
        events.Publish(new VolumeEvent
        {
            Time = Now(),
            VolumeId = volume.VolumeId,
            State = volume.State,
            Reason = reason,
            Message = message,
            Volume = volume.Snapshot(),
        });

    /// <summary>An event about a volume no record is held for (unstaged, or one the rebuild reports on).</summary>
    public void Report(string volumeId, VolumeState state, string reason, string message) =>
        events.Publish(new VolumeEvent { Time = Now(), VolumeId = volumeId, State = state, Reason = reason, Message = message });

    public Task RecoveredAsync(Volume snapshot, string deadDevice) =>
        NotifyAsync(snapshot.VolumeId, () => observer.OnRecoveredAsync(snapshot, deadDevice, shutdown));

    public Task RecoveryFailedAsync(Volume snapshot, string reason) =>
        NotifyAsync(snapshot.VolumeId, () => observer.OnRecoveryFailedAsync(snapshot, reason, shutdown));

    public Task StrayFilesAsync(Volume snapshot, string message) =>
        NotifyAsync(snapshot.VolumeId, () => observer.OnStrayFilesAsync(snapshot, message, shutdown));

    public static string StateName(VolumeState state) => Observability.VolumeStates.Name(state);

    private async Task NotifyAsync(string volumeId, Func<Task> notify)
    {
        try
        {
            await notify().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogObserverFailed(volumeId, e.Message);
        }
    }

    private Timestamp Now() => Timestamp.FromDateTimeOffset(time.GetUtcNow());

    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "Volume {VolumeId} is {State} ({Reason}): {Detail}")]
    private partial void LogStateChanged(string volumeId, string state, string reason, string detail);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Warning, Message = "Volume {VolumeId}: recovery observer failed: {Reason}")]
    private partial void LogObserverFailed(string volumeId, string reason);
}

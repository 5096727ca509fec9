using Microsoft.Extensions.Logging;
using S3Supervisor.Api.V1;
using S3Supervisor.Supervisor.Interop;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// Healing: a volume whose child died or whose mount stopped answering gets its s3fs started again
/// and every target re-bound, in the background, with per-volume backoff, so one sick volume never
/// holds up another. Learns of a death at once (the child's exit) and from the periodic health check.
/// </summary>
internal sealed partial class VolumeHealer(
    VolumeTable table,
    IMounter mounter,
    S3fsStarter starter,
    VolumeReporter reporter,
    Observability.SupervisorMetrics metrics,
    TimeProvider time,
    VolumeManagerSettings settings,
    ILogger logger,
    Func<Task> saveJournal,
    CancellationToken shutdown)
{
    private readonly ILogger _logger = logger;

    /// <summary>Starts s3fs (see <see cref="S3fsStarter.StartAsync"/>) and heals the volume when that child exits unasked.</summary>
    public async Task StartWatchedAsync(ManagedVolume volume, CancellationToken cancellationToken)
    {
        await starter.StartAsync(volume, cancellationToken).ConfigureAwait(false);
        WatchChild(volume, volume.Child!);
    }

    /// <summary>Heals the volume when <paramref name="child"/> (started here or adopted) exits unasked.</summary>
    public void Watch(ManagedVolume volume, IS3fsProcess child) => WatchChild(volume, child);

    /// <summary>Health check of every volume: a Ready volume whose mount is gone or answers ENOTCONN is healed.</summary>
    public async Task CheckHealthAsync(CancellationToken cancellationToken)
    {
        var volumes = table.Where(v => v.Staged && v.State == VolumeState.Ready && !v.Stopping && !v.HealPending);
        foreach (var volume in volumes)
        {
            volume.Child?.BoundLog();
        }
        if (volumes.Length == 0)
        {
            return;
        }
        // One read of the mount table for the whole sweep, not one per volume.
        var mounts = mounter.ReadMounts();
        await Parallel.ForEachAsync(volumes, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (volume, ct) =>
        {
            var problem = await ProbeAsync(volume, mounts, ct).ConfigureAwait(false);
            if (problem is not null)
            {
                ScheduleHeal(volume, "MountNotConnected", problem);
            }
        }).ConfigureAwait(false);
    }

    /// <summary>Publish binds only a live FUSE mount of this very volume; otherwise the volume is healed first and the caller retries.</summary>
    public async Task EnsureLiveStagingAsync(ManagedVolume volume, CancellationToken cancellationToken)
    {
        var problem = await ProbeAsync(volume, mounter.ReadMounts(), cancellationToken).ConfigureAwait(false);
        if (problem is null)
        {
            return;
        }
        ScheduleHeal(volume, "StagingMountLost", problem);
        throw new VolumeException(VolumeErrorKind.Unavailable, "volume_id", $"{volume.VolumeId} has no live staging mount ({problem}); the supervisor is healing it, retry");
    }

    /// <summary>Schedules a heal in the background unless one is already pending for this volume.</summary>
    public void ScheduleHeal(ManagedVolume volume, string reason, string message)
    {
        lock (volume)
        {
            if (volume.HealPending || volume.Stopping || shutdown.IsCancellationRequested)
            {
                return;
            }
            volume.HealPending = true;
        }
        var observed = volume.Device;
        _ = Task.Run(() => HealLoopAsync(volume, reason, message, observed), CancellationToken.None);
    }

    /// <summary>One heal now (an operator's remount); on failure the background loop takes over and the caller learns why.</summary>
    public async Task HealAsync(ManagedVolume volume, string reason, string message, CancellationToken cancellationToken, bool waitForContainerRepair = false)
    {
        if (!await TryHealAsync(volume, reason, message, cancellationToken, waitForRepair: waitForContainerRepair).ConfigureAwait(false))
        {
            ScheduleHeal(volume, "RetryAfterFailure", volume.LastError);
            throw new VolumeException(VolumeErrorKind.Unavailable, "volume_id", $"{volume.VolumeId} could not be remounted: {volume.LastError}");
        }
    }

    /// <summary>Swaps every target to the live staging mount: dead layers off, the new bind on, one target at a time.</summary>
    public void RebindAllTargets(ManagedVolume volume)
    {
        PublishTarget[] targets;
        lock (volume.Targets)
        {
            targets = volume.Targets.Values.ToArray();
        }
        foreach (var target in targets)
        {
            mounter.UnmountAllLayers(target.TargetPath);
            mounter.CreateDirectory(target.TargetPath);
            mounter.Bind(volume.StagingPath, target.TargetPath, target.ReadOnly, volume.Device);
        }
    }

    private async Task<string?> ProbeAsync(ManagedVolume volume, IReadOnlyList<MountEntry> mounts, CancellationToken cancellationToken)
    {
        var errno = await mounter.StatWithinAsync(volume.StagingPath, settings.HealthCheckTimeout, time, cancellationToken).ConfigureAwait(false);
        if (errno is null)
        {
            return $"stat of {volume.StagingPath} did not answer within {settings.HealthCheckTimeout.TotalSeconds:0} s";
        }
        if (errno != 0)
        {
            return $"stat of {volume.StagingPath} failed: {Errno.Name(errno.Value)}";
        }
        var mount = MountInfo.At(mounts, volume.StagingPath);
        if (mount is null || !mount.IsFuse || mount.Device != volume.Device)
        {
            return $"{volume.StagingPath} is no longer mounted by this volume's s3fs";
        }
        return null;
    }

    private void WatchChild(ManagedVolume volume, IS3fsProcess child)
    {
        _ = child.Exited.ContinueWith(
            exit =>
            {
                if (volume.Stopping || volume.Child != child)
                {
                    return;
                }
                var code = exit.Result;
                var how = code < 0 ? "exited (it was adopted after a supervisor restart, so its exit status went to its new parent)"
                    : code > 128 ? $"was killed by signal {code - 128}" : $"exited with code {code}";
                if (code is 137 or -1 && starter.OomKilled(volume))
                {
                    how = $"was killed by the kernel for exceeding its memory limit ({starter.MemoryLimitText(volume)})";
                    reporter.Emit(volume, "ChildOomKilled", $"s3fs pid {child.Pid} {how}");
                }
                LogChildExited(volume.VolumeId, child.Pid, code, starter.Redact(child.StderrTail, volume));
                ScheduleHeal(volume, "ChildExited", $"s3fs pid {child.Pid} {how}");
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private async Task HealLoopAsync(ManagedVolume volume, string reason, string message, string observedDevice)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(shutdown, volume.Lifetime.Token);
        try
        {
            while (!linked.IsCancellationRequested)
            {
                if (volume.Failures > 0)
                {
                    var delay = Backoff.Delay(volume.Failures, settings.BackoffInitial, settings.BackoffMax);
                    LogBackoff(volume.VolumeId, volume.Failures, delay.TotalSeconds);
                    await Task.Delay(delay, time, linked.Token).ConfigureAwait(false);
                }
                if (await TryHealAsync(volume, reason, message, linked.Token, observedDevice).ConfigureAwait(false))
                {
                    return;
                }
                reason = "RetryAfterFailure";
                message = volume.LastError;
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            lock (volume)
            {
                volume.HealPending = false;
            }
        }
    }

    /// <summary>One heal attempt: lazily unmount the stale staging mount and binds, start s3fs, re-bind every target.</summary>
    /// <param name="observedDevice">The connection that looked dead when the heal was scheduled; when the volume
    /// has been remounted since (an operator remount, a restore), the heal is moot.</param>
    private async Task<bool> TryHealAsync(ManagedVolume volume, string reason, string message, CancellationToken cancellationToken, string? observedDevice = null, bool waitForRepair = false)
    {
        var (healed, repaired) = await TryHealLockedAsync(volume, reason, message, observedDevice, cancellationToken).ConfigureAwait(false);
        // Outside the volume's lock: the repair of containers takes no lock of ours.
        if (waitForRepair && repaired is not null)
        {
            await repaired.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        return healed;
    }

    private async Task<(bool Healed, Task? Repaired)> TryHealLockedAsync(ManagedVolume volume, string reason, string message, string? observedDevice, CancellationToken cancellationToken)
    {
        await using var held = await VolumeTable.LockAsync(volume, wait: true, cancellationToken).ConfigureAwait(false);
        if (volume.Stopping || !volume.Staged)
        {
            return (true, null);
        }
        if (observedDevice is not null && volume.State == VolumeState.Ready && volume.Device.Length > 0 && volume.Device != observedDevice)
        {
            return (true, null);
        }
        var deadDevice = volume.Device;
        var started = time.GetTimestamp();
        reporter.SetState(volume, VolumeState.Stale, reason, message);
        try
        {
            // The connection is already dead or hung: nothing more reaches S3 through it, so a short
            // grace is enough before the replacement starts.
            await S3fsStarter.StopAsync(volume, starter.HealGrace).ConfigureAwait(false);
            starter.UnmountStaging(volume);
            reporter.SetState(volume, VolumeState.Recovering, "Remounting", $"starting s3fs again (attempt {volume.Failures + 1})");
            await StartWatchedAsync(volume, cancellationToken).ConfigureAwait(false);
            RebindAllTargets(volume);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            volume.Failures++;
            volume.LastError = e.Message;
            metrics.Recovery(success: false, time.GetElapsedTime(started));
            reporter.SetState(volume, VolumeState.Failed, "RecoveryFailed", volume.LastError);
            _ = reporter.RecoveryFailedAsync(volume.Snapshot(), volume.LastError);
            return (false, null);
        }
        volume.Failures = 0;
        volume.RestartCount++;
        try
        {
            // The new child's pid and start time, so that a supervisor restart adopts it.
            await saveJournal().ConfigureAwait(false);
        }
        catch (IOException e)
        {
            LogJournalFailed(volume.VolumeId, e.Message);
        }
        var elapsed = time.GetElapsedTime(started);
        metrics.Recovery(success: true, elapsed);
        reporter.SetState(volume, VolumeState.Ready, "Recovered", $"s3fs pid {volume.Child?.Pid} serves {volume.StagingPath} and {volume.Targets.Count} target(s) again after {elapsed.TotalMilliseconds:0} ms");
        return (true, reporter.RecoveredAsync(volume.Snapshot(), deadDevice));
    }

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Volume {VolumeId}: s3fs pid {Pid} exited with code {ExitCode}; stderr: {StderrTail}")]
    private partial void LogChildExited(string volumeId, int pid, int exitCode, string stderrTail);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Warning, Message = "Volume {VolumeId}: healed, but the journal could not be written: {Reason}")]
    private partial void LogJournalFailed(string volumeId, string reason);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "Volume {VolumeId}: heal attempt {Attempt} waits {Seconds} s (backoff)")]
    private partial void LogBackoff(string volumeId, int attempt, double seconds);
}

/// <summary>Periodic health check: catches a mount that answers ENOTCONN or vanished without its child exiting.</summary>
internal sealed class HealthCheckLoop : BackgroundService
{
    private readonly VolumeManager _volumes;
    private readonly TimeProvider _time;
    private readonly TimeSpan _interval;

    public HealthCheckLoop(VolumeManager volumes, TimeProvider time, VolumeManagerSettings settings)
    {
        _volumes = volumes;
        _time = time;
        _interval = settings.HealthCheckInterval ?? TimeSpan.FromSeconds(10);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_interval, _time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            await _volumes.CheckHealthAsync(stoppingToken).ConfigureAwait(false);
        }
    }
}

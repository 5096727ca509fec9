using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using S3Supervisor.Api.V1;
using S3Supervisor.Supervisor.Interop;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>Settings the volume manager needs (a slice of SupervisorOptions).</summary>
public sealed record VolumeManagerSettings(
    TimeSpan MountTimeout,
    TimeSpan ShutdownGrace,
    TimeSpan BackoffInitial,
    TimeSpan BackoffMax,
    TimeSpan HealthCheckTimeout,
    string CacheDirectory,
    string MountDirectory = "/run/s3supervisor/mounts",
    string StateDirectory = "/var/lib/s3supervisor");

/// <summary>
/// Owns every volume on the node: one s3fs child per volume at its staging path, and bind mounts
/// of it on each publish target. Calls for one volume are serialised by its lock (a concurrent call
/// gets Aborted); a repeated call that is already satisfied succeeds. When a child dies or its mount
/// stops answering, the volume is healed in the background with per-volume backoff, so one sick
/// volume never holds up another.
/// </summary>
public sealed partial class VolumeManager : IAsyncDisposable
{
    private readonly Dictionary<string, ManagedVolume> _volumes = new(StringComparer.Ordinal);
    private readonly Lock _volumesLock = new();
    private readonly IS3fsLauncher _launcher;
    private readonly IMounter _mounter;
    private readonly CredentialStore _credentials;
    private readonly Journal _journal;
    private readonly VolumeEventHub _events;
    private readonly IRecoveryObserver _observer;
    private readonly TimeProvider _time;
    private readonly VolumeManagerSettings _settings;
    private readonly ILogger<VolumeManager> _logger;
    private readonly Observability.SupervisorMetrics _metrics;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly IS3AccessCheck _access;

    /// <summary>A name no one uses: its stat makes s3fs ask S3 once with the volume's credentials.</summary>
    private const string ReadinessProbeName = ".s3supervisor-readiness-probe";
    private readonly Dictionary<string, Volume> _pendingRecords = new(StringComparer.Ordinal);
    private readonly HashSet<string> _awaitingRestore = new(StringComparer.Ordinal);
    private bool _restoreScanPending;

    public VolumeManager(
        IS3fsLauncher launcher,
        IMounter mounter,
        CredentialStore credentials,
        Journal journal,
        VolumeEventHub events,
        IRecoveryObserver observer,
        TimeProvider time,
        VolumeManagerSettings settings,
        ILogger<VolumeManager> logger,
        Observability.SupervisorMetrics? metrics = null,
        IS3AccessCheck? accessCheck = null)
    {
        _access = accessCheck ?? new HttpS3AccessCheck(time);
        _metrics = metrics ?? new Observability.SupervisorMetrics();
        _launcher = launcher;
        _mounter = mounter;
        _credentials = credentials;
        _journal = journal;
        _events = events;
        _observer = observer;
        _time = time;
        _settings = settings;
        _logger = logger;
    }

    public VolumeEventHub Events => _events;

    public IReadOnlyList<Volume> List()
    {
        lock (_volumesLock)
        {
            return _volumes.Values.Where(v => v.Staged).OrderBy(v => v.VolumeId, StringComparer.Ordinal).Select(v => v.Snapshot()).ToArray();
        }
    }

    public Volume Get(string volumeId) =>
        Find(volumeId)?.Snapshot() ?? throw NotFound(volumeId);

    /// <summary>Starts s3fs at the staging path and returns once the mount answers.</summary>
    public async Task<Volume> StageAsync(string volumeId, string stagingPath, VolumeSource source, Credentials? credentials, CancellationToken cancellationToken)
    {
        var (volume, created, held) = await AcquireAsync(volumeId, wait: false, cancellationToken).ConfigureAwait(false);
        await using var lease = held;
        if (volume.Staged)
        {
            if (volume.StagingPath != stagingPath || !volume.Source.Equals(source))
            {
                throw new RpcException(new Status(StatusCode.AlreadyExists, $"volume_id: {volumeId} is already staged at {volume.StagingPath} with a different source"));
            }
            RotateCredentials(volume, credentials);
            return volume.State == VolumeState.Ready
                ? volume.Snapshot()
                : throw new RpcException(new Status(StatusCode.Unavailable, $"volume_id: {volumeId} is staged but {StateName(volume.State)}; the supervisor is healing it, retry later"));
        }

        try
        {
            volume.StagingPath = stagingPath;
            volume.Source = source;
            SetState(volume, VolumeState.Mounting, "Staging", $"mounting {Describe(source)} at {stagingPath}");
            ClearLeftoverMount(volume, stagingPath, "staging_path");
            if (!source.Options.PublicBucket)
            {
                _credentials.Write(volumeId, credentials ?? throw Common.Validate.Invalid("credentials", "are required unless the public_bucket option is set"));
            }
            await _access.CheckAsync(source, source.Options.PublicBucket ? null : credentials, cancellationToken).ConfigureAwait(false);
            await StartChildAsync(volume, cancellationToken).ConfigureAwait(false);
            volume.Staged = true;
            await SaveJournalAsync().ConfigureAwait(false);
            SetState(volume, VolumeState.Ready, "Staged", $"s3fs pid {volume.Child?.Pid} mounted {Describe(source)} at {stagingPath}");
            return volume.Snapshot();
        }
        catch
        {
            // Nothing half-made survives a failed first stage: no child, no mount, no record, no secret.
            volume.Staged = false;
            volume.Stopping = true;
            await StopChildAsync(volume, HealGrace).ConfigureAwait(false);
            if (volume.Device.Length > 0)
            {
                UnmountStaging(volume);
            }
            RemovePrivateMountDirectory(volume);
            Forget(volume);
            _credentials.Remove(volumeId);
            throw;
        }
    }

    /// <param name="credentials">Node-publish credentials, if any: rotated keys replace the stored ones.</param>
    public async Task<Volume> PublishAsync(string volumeId, string targetPath, bool readOnly, PodRef? pod, CancellationToken cancellationToken, Credentials? credentials = null)
    {
        var volume = Find(volumeId) ?? throw NotFound(volumeId);
        await using var held = await LockAsync(volume, wait: false, cancellationToken).ConfigureAwait(false);
        if (!volume.Staged)
        {
            throw NotFound(volumeId);
        }
        RotateCredentials(volume, credentials);
        if (targetPath == volume.StagingPath)
        {
            throw Common.Validate.Invalid("target_path", "must differ from the staging path");
        }
        PublishTarget? existing;
        lock (volume.Targets)
        {
            volume.Targets.TryGetValue(targetPath, out existing);
        }
        if (existing is not null)
        {
            if (existing.ReadOnly != readOnly)
            {
                throw new RpcException(new Status(StatusCode.AlreadyExists, $"target_path: {targetPath} is already published {(existing.ReadOnly ? "read-only" : "read-write")}"));
            }
            if (volume.State == VolumeState.Ready && _mounter.FindMount(targetPath)?.Device != volume.Device)
            {
                // The bind went missing (someone unmounted it): put it back, from the live mount only.
                await EnsureLiveStagingAsync(volume, cancellationToken).ConfigureAwait(false);
                ClearLeftoverMount(volume, targetPath, "target_path");
                MountOrExplain("target_path", () => _mounter.Bind(volume.StagingPath, targetPath, readOnly, volume.Device));
            }
            return volume.Snapshot();
        }
        if (volume.State != VolumeState.Ready)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"volume_id: {volumeId} is {StateName(volume.State)}; retry once it is ready"));
        }
        // Only a live FUSE mount of this very volume is ever bound: never the bare staging directory
        // (a file written there would land on the node's disk, and block every later heal).
        await EnsureLiveStagingAsync(volume, cancellationToken).ConfigureAwait(false);
        MountOrExplain("target_path", () => _mounter.CreateDirectory(targetPath));
        ClearLeftoverMount(volume, targetPath, "target_path");
        MountOrExplain("target_path", () => _mounter.Bind(volume.StagingPath, targetPath, readOnly, volume.Device));
        var target = new PublishTarget { TargetPath = targetPath, ReadOnly = readOnly, Pod = pod ?? new PodRef() };
        lock (volume.Targets)
        {
            volume.Targets[targetPath] = target;
        }
        try
        {
            await SaveJournalAsync().ConfigureAwait(false);
        }
        catch
        {
            lock (volume.Targets)
            {
                volume.Targets.Remove(targetPath);
            }
            _mounter.UnmountLazy(targetPath);
            throw;
        }
        Emit(volume, "Published", $"bound to {targetPath}{(readOnly ? " read-only" : string.Empty)}{PodSuffix(pod)}");
        return volume.Snapshot();
    }

    /// <summary>Rotated keys: s3fs reads its passwd file at start, so the next (re)start of s3fs uses them.</summary>
    private void RotateCredentials(ManagedVolume volume, Credentials? credentials)
    {
        if (credentials is not null && !volume.Source.Options.PublicBucket && !_credentials.Matches(volume.VolumeId, credentials))
        {
            _credentials.Write(volume.VolumeId, credentials);
            LogCredentialsRotated(volume.VolumeId);
        }
    }

    /// <summary>Removes one publish target. Succeeds when it is already gone; clears a leftover s3fs bind of an unknown volume.</summary>
    public async Task UnpublishAsync(string volumeId, string targetPath, CancellationToken cancellationToken)
    {
        var volume = Find(volumeId);
        if (volume is null)
        {
            await ReleaseUnownedPathAsync(volumeId, targetPath, "target_path", isTarget: true, cancellationToken).ConfigureAwait(false);
            return;
        }
        await using var held = await LockAsync(volume, wait: false, cancellationToken).ConfigureAwait(false);
        bool known;
        lock (volume.Targets)
        {
            known = volume.Targets.ContainsKey(targetPath);
        }
        if (!known)
        {
            await ReleaseUnownedPathAsync(volumeId, targetPath, "target_path", isTarget: true, cancellationToken).ConfigureAwait(false);
            return;
        }
        MountOrExplain("target_path", () => _mounter.UnmountAllLayers(targetPath));
        lock (volume.Targets)
        {
            volume.Targets.Remove(targetPath);
        }
        await SaveJournalAsync().ConfigureAwait(false);
        RemoveTargetDirectory(targetPath);
        Emit(volume, "Unpublished", $"unbound from {targetPath}");
    }

    /// <summary>Stops s3fs (flushing writes), unmounts and removes the credentials. Succeeds for an unknown volume.</summary>
    public async Task UnstageAsync(string volumeId, string stagingPath, CancellationToken cancellationToken)
    {
        var volume = Find(volumeId);
        if (volume is null)
        {
            await ReleaseUnownedPathAsync(volumeId, stagingPath, "staging_path", isTarget: false, cancellationToken).ConfigureAwait(false);
            _credentials.Remove(volumeId);
            // kubelet is done with it: a rebuild still working on it must not bring it back.
            RestoreSettled(volumeId);
            return;
        }
        await using var held = await LockAsync(volume, wait: false, cancellationToken).ConfigureAwait(false);
        if (volume.StagingPath != stagingPath)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"staging_path: volume {volumeId} is staged at {volume.StagingPath}, not at {stagingPath}"));
        }
        int targets;
        lock (volume.Targets)
        {
            targets = volume.Targets.Count;
        }
        if (targets > 0)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"volume_id: {volumeId} is still published at {targets} target(s); unpublish them first"));
        }
        volume.Stopping = true;
        await volume.Lifetime.CancelAsync().ConfigureAwait(false);
        SetState(volume, VolumeState.Unmounting, "Unstaging", $"stopping s3fs pid {volume.Child?.Pid}");
        await StopChildAsync(volume).ConfigureAwait(false);
        UnmountStaging(volume);
        RemovePrivateMountDirectory(volume);
        _credentials.Remove(volumeId);
        Forget(volume);
        await SaveJournalAsync().ConfigureAwait(false);
        LogUnstaged(volumeId, stagingPath);
        _events.Publish(new VolumeEvent { Time = Now(), VolumeId = volumeId, State = VolumeState.Unmounting, Reason = "Unstaged", Message = $"unmounted {stagingPath}" });
    }

    /// <summary>Operator action: restart s3fs now and re-bind every target. Returns the healed volume.</summary>
    public async Task<Volume> RemountAsync(string volumeId, CancellationToken cancellationToken)
    {
        var volume = Find(volumeId) ?? throw NotFound(volumeId);
        if (!volume.Staged)
        {
            throw NotFound(volumeId);
        }
        await HealAsync(volume, "OperatorRemount", "remount requested by an operator", cancellationToken).ConfigureAwait(false);
        return volume.Snapshot();
    }

    /// <summary>
    /// Brings a volume back after a supervisor restart: clears stale mounts, starts s3fs with the
    /// given credentials and re-binds the targets. Used by the rebuild; the volume must be unknown.
    /// </summary>
    public async Task<Volume> RestoreAsync(string volumeId, string stagingPath, VolumeSource source, Credentials? credentials, IEnumerable<PublishTarget> targets, CancellationToken cancellationToken)
    {
        var (volume, created, held) = await AcquireAsync(volumeId, wait: true, cancellationToken).ConfigureAwait(false);
        await using var lease = held;
        RestoreSettled(volumeId);
        if (!created && volume.Staged)
        {
            return volume.Snapshot();
        }
        volume.StagingPath = stagingPath;
        volume.Source = source;
        lock (volume.Targets)
        {
            foreach (var target in targets)
            {
                volume.Targets[target.TargetPath] = target.Clone();
            }
        }
        ClearPendingRecord(volumeId);
        var deadDevice = _mounter.FindMount(stagingPath) is { IsFuse: true } stale ? stale.Device : string.Empty;
        if (deadDevice.Length == 0)
        {
            // The staging mount may be gone already (s3fs unmounted itself on SIGTERM); a target still shows the dead connection.
            deadDevice = TargetDevices(volume).FirstOrDefault() ?? string.Empty;
        }
        try
        {
            SetState(volume, VolumeState.Recovering, "Restoring", $"restoring {Describe(source)} at {stagingPath}");
            if (!source.Options.PublicBucket)
            {
                _credentials.Write(volumeId, credentials ?? throw Common.Validate.Invalid("credentials", "are required unless the public_bucket option is set"));
            }
            await _access.CheckAsync(source, source.Options.PublicBucket ? null : credentials, cancellationToken).ConfigureAwait(false);
            UnmountStaging(volume);
            await StartChildAsync(volume, cancellationToken).ConfigureAwait(false);
            RebindAllTargets(volume);
            volume.Staged = true;
            volume.RestartCount++;
            _metrics.Restore(success: true);
            SetState(volume, VolumeState.Ready, "Restored", $"s3fs pid {volume.Child?.Pid} serves {stagingPath} and {volume.Targets.Count} target(s)");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Keep the volume known (Failed), so the health loop retries and the operator sees it.
            volume.Staged = true;
            volume.LastError = Message(e);
            _metrics.Restore(success: false);
            SetState(volume, VolumeState.Failed, "RestoreFailed", volume.LastError);
            ScheduleHeal(volume, "RestoreFailed", volume.LastError);
            await SaveJournalAsync().ConfigureAwait(false);
            return volume.Snapshot();
        }
        await SaveJournalAsync().ConfigureAwait(false);
        var snapshot = volume.Snapshot();
        _ = NotifyRecoveredAsync(snapshot, deadDevice);
        return snapshot;
    }

    /// <summary>Health check of one volume: a Ready volume whose mount is gone or answers ENOTCONN is healed.</summary>
    public async Task CheckHealthAsync(CancellationToken cancellationToken)
    {
        ManagedVolume[] volumes;
        lock (_volumesLock)
        {
            volumes = _volumes.Values.Where(v => v.Staged && v.State == VolumeState.Ready && !v.Stopping && !v.HealPending).ToArray();
        }
        if (volumes.Length == 0)
        {
            return;
        }
        // One read of the mount table for the whole sweep, not one per volume.
        var mounts = _mounter.ReadMounts();
        await Parallel.ForEachAsync(volumes, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (volume, ct) =>
        {
            var problem = await ProbeAsync(volume, mounts, ct).ConfigureAwait(false);
            if (problem is not null)
            {
                ScheduleHeal(volume, "MountNotConnected", problem);
            }
        }).ConfigureAwait(false);
    }

    /// <summary>Stops every child gracefully (SIGTERM, so buffered writes reach S3) within the grace period. The journal is kept.</summary>
    public async Task ShutdownAsync()
    {
        await _shutdown.CancelAsync().ConfigureAwait(false);
        ManagedVolume[] volumes;
        lock (_volumesLock)
        {
            volumes = _volumes.Values.ToArray();
        }
        foreach (var volume in volumes)
        {
            volume.Stopping = true;
        }
        await Task.WhenAll(volumes.Select(StopChildAsync)).ConfigureAwait(false);
        // The children are gone: their credentials are of no use any more. The next start gets
        // them again from the API server (the rebuild) or from kubelet's NodeStage.
        foreach (var volume in volumes)
        {
            _credentials.Remove(volume.VolumeId);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await ShutdownAsync().ConfigureAwait(false);
        _shutdown.Dispose();
    }

    private async Task<string?> ProbeAsync(ManagedVolume volume, IReadOnlyList<MountEntry> mounts, CancellationToken cancellationToken)
    {
        var statTask = Task.Run(() => _mounter.Stat(volume.StagingPath), CancellationToken.None);
        var finished = await Task.WhenAny(statTask, Task.Delay(_settings.HealthCheckTimeout, _time, cancellationToken)).ConfigureAwait(false);
        if (finished != statTask)
        {
            return $"stat of {volume.StagingPath} did not answer within {_settings.HealthCheckTimeout.TotalSeconds:0} s";
        }
        var errno = await statTask.ConfigureAwait(false);
        if (errno != 0)
        {
            return $"stat of {volume.StagingPath} failed: {Errno.Name(errno)}";
        }
        var mount = MountInfo.At(mounts, volume.StagingPath);
        if (mount is null || !mount.IsFuse || mount.Device != volume.Device)
        {
            return $"{volume.StagingPath} is no longer mounted by this volume's s3fs";
        }
        return null;
    }

    /// <summary>Schedules a heal in the background unless one is already pending for this volume.</summary>
    private void ScheduleHeal(ManagedVolume volume, string reason, string message)
    {
        lock (volume)
        {
            if (volume.HealPending || volume.Stopping || _shutdown.IsCancellationRequested)
            {
                return;
            }
            volume.HealPending = true;
        }
        var observed = volume.Device;
        _ = Task.Run(() => HealLoopAsync(volume, reason, message, observed), CancellationToken.None);
    }

    private async Task HealLoopAsync(ManagedVolume volume, string reason, string message, string observedDevice)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(_shutdown.Token, volume.Lifetime.Token);
        try
        {
            while (!linked.IsCancellationRequested)
            {
                if (volume.Failures > 0)
                {
                    var delay = Backoff(volume.Failures);
                    LogBackoff(volume.VolumeId, volume.Failures, delay.TotalSeconds);
                    await Task.Delay(delay, _time, linked.Token).ConfigureAwait(false);
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

    private async Task HealAsync(ManagedVolume volume, string reason, string message, CancellationToken cancellationToken)
    {
        if (!await TryHealAsync(volume, reason, message, cancellationToken).ConfigureAwait(false))
        {
            ScheduleHeal(volume, "RetryAfterFailure", volume.LastError);
            throw new RpcException(new Status(StatusCode.Unavailable, $"volume_id: {volume.VolumeId} could not be remounted: {volume.LastError}"));
        }
    }

    /// <summary>One heal attempt: lazily unmount the stale staging mount and binds, start s3fs, re-bind every target.</summary>
    /// <param name="observedDevice">The connection that looked dead when the heal was scheduled; when the volume
    /// has been remounted since (an operator remount, a restore), the heal is moot.</param>
    private async Task<bool> TryHealAsync(ManagedVolume volume, string reason, string message, CancellationToken cancellationToken, string? observedDevice = null)
    {
        await using var held = await LockAsync(volume, wait: true, cancellationToken).ConfigureAwait(false);
        if (volume.Stopping || !volume.Staged)
        {
            return true;
        }
        if (observedDevice is not null && volume.State == VolumeState.Ready && volume.Device.Length > 0 && volume.Device != observedDevice)
        {
            return true;
        }
        var deadDevice = volume.Device;
        var started = _time.GetTimestamp();
        SetState(volume, VolumeState.Stale, reason, message);
        try
        {
            // The connection is already dead or hung: nothing more reaches S3 through it, so a short
            // grace is enough before the replacement starts.
            await StopChildAsync(volume, HealGrace).ConfigureAwait(false);
            UnmountStaging(volume);
            SetState(volume, VolumeState.Recovering, "Remounting", $"starting s3fs again (attempt {volume.Failures + 1})");
            await StartChildAsync(volume, cancellationToken).ConfigureAwait(false);
            RebindAllTargets(volume);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            volume.Failures++;
            volume.LastError = Message(e);
            _metrics.Recovery(success: false, _time.GetElapsedTime(started));
            SetState(volume, VolumeState.Failed, "RecoveryFailed", volume.LastError);
            _ = NotifyFailedAsync(volume.Snapshot(), volume.LastError);
            return false;
        }
        volume.Failures = 0;
        volume.RestartCount++;
        var elapsed = _time.GetElapsedTime(started);
        _metrics.Recovery(success: true, elapsed);
        SetState(volume, VolumeState.Ready, "Recovered", $"s3fs pid {volume.Child?.Pid} serves {volume.StagingPath} and {volume.Targets.Count} target(s) again after {elapsed.TotalMilliseconds:0} ms");
        _ = NotifyRecoveredAsync(volume.Snapshot(), deadDevice);
        return true;
    }

    private async Task NotifyRecoveredAsync(Volume snapshot, string deadDevice)
    {
        try
        {
            await _observer.OnRecoveredAsync(snapshot, deadDevice, _shutdown.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogObserverFailed(snapshot.VolumeId, e.Message);
        }
    }

    private async Task NotifyFailedAsync(Volume snapshot, string reason)
    {
        try
        {
            await _observer.OnRecoveryFailedAsync(snapshot, reason, _shutdown.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogObserverFailed(snapshot.VolumeId, e.Message);
        }
    }

    private TimeSpan Backoff(int failures)
    {
        var seconds = _settings.BackoffInitial.TotalSeconds * Math.Pow(2, Math.Min(failures - 1, 20));
        return TimeSpan.FromSeconds(Math.Min(seconds, _settings.BackoffMax.TotalSeconds));
    }

    /// <summary>Starts s3fs and waits until the FUSE mount is in mountinfo and answers stat. On failure nothing is left mounted or running.</summary>
    private async Task StartChildAsync(ManagedVolume volume, CancellationToken cancellationToken)
    {
        MountOrExplain("staging_path", () => _mounter.CreateDirectory(volume.StagingPath));
        // s3fs mounts by name inside its own mount(2) call (libfuse2 realpath()s the mountpoint
        // first), so it is never given a path under kubelet's root, where a directory could be
        // swapped for a symlink in between: it mounts in our private directory, and the staging
        // path gets a bind of that mount made through file descriptors (Mounter.Bind).
        var mountPoint = PrivateMountPath(volume);
        _mounter.UnmountAllLayers(mountPoint);
        Directory.CreateDirectory(mountPoint, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var passwd = volume.Source.Options.PublicBucket ? null : _credentials.PasswdFile(volume.VolumeId);
        string? cache = null;
        if (volume.Source.Options.UseCache)
        {
            cache = Path.Combine(_settings.CacheDirectory, CredentialStore.FileName(volume.VolumeId));
            Directory.CreateDirectory(cache, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var arguments = S3fsArguments.Build(volume.Source, mountPoint, passwd, cache);
        var child = _launcher.Start(arguments);
        volume.Child = child;
        LogChildStarted(volume.VolumeId, child.Pid, volume.StagingPath);
        var deadline = _time.GetTimestamp();
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (child.Exited.IsCompleted)
                {
                    var code = await child.Exited.ConfigureAwait(false);
                    throw ChildFailed(volume, child, $"s3fs exited with code {code} before the mount was ready");
                }
                var mount = _mounter.FindMount(mountPoint);
                if (mount is { IsFuse: true } && await StatBeforeDeadlineAsync(volume, child, mountPoint, deadline, cancellationToken).ConfigureAwait(false) == 0)
                {
                    // s3fs 1.90 mounts first and checks the bucket and credentials inside its FUSE
                    // init, then exits (with code 0!) when they are wrong. A stat of a name that
                    // does not exist makes it ask S3 (HEAD) with the credentials: ENOENT means S3
                    // answered and let us in.
                    var probe = await StatBeforeDeadlineAsync(volume, child, Path.Combine(mountPoint, ReadinessProbeName), deadline, cancellationToken).ConfigureAwait(false);
                    if (probe is Errno.EACCES or Errno.EPERM)
                    {
                        throw ChildFailed(volume, child, "S3 denied access (check the credentials and the bucket policy)", StatusCode.PermissionDenied);
                    }
                    if (probe is 0 or Errno.ENOENT && !child.Exited.IsCompleted)
                    {
                        MoveStrayFilesAside(volume);
                        MountOrExplain("staging_path", () => _mounter.Bind(mountPoint, volume.StagingPath, readOnly: false, mount.Device));
                        volume.Device = mount.Device;
                        break;
                    }
                }
                if (_time.GetElapsedTime(deadline) > _settings.MountTimeout)
                {
                    throw ChildFailed(volume, child, $"the mount was not ready within {_settings.MountTimeout.TotalSeconds:0} s", StatusCode.Unavailable);
                }
                await Task.WhenAny(child.Exited, Task.Delay(TimeSpan.FromMilliseconds(20), _time, cancellationToken)).ConfigureAwait(false);
            }
        }
        catch
        {
            child.Kill();
            await child.Exited.ConfigureAwait(false);
            // The staging bind is the last step and cannot have been made: only s3fs's own mount goes.
            _mounter.UnmountAllLayers(mountPoint);
            volume.Child = null;
            volume.Device = string.Empty;
            child.Dispose();
            throw;
        }
        WatchChild(volume, child);
    }

    /// <summary>
    /// A stat through a mount whose s3fs is still in its FUSE init (which checks the bucket over the
    /// network) blocks until that check ends, possibly minutes against an unreachable endpoint. The stat
    /// runs on a worker and the mount timeout and cancellation still apply; the caller kills the child
    /// on failure, which makes the blocked stat return.
    /// </summary>
    private async Task<int> StatBeforeDeadlineAsync(ManagedVolume volume, IS3fsProcess child, string path, long started, CancellationToken cancellationToken)
    {
        var remaining = _settings.MountTimeout - _time.GetElapsedTime(started);
        var stat = Task.Run(() => _mounter.Stat(path), CancellationToken.None);
        if (remaining <= TimeSpan.Zero || await Task.WhenAny(stat, Task.Delay(remaining, _time, cancellationToken)).ConfigureAwait(false) != stat)
        {
            cancellationToken.ThrowIfCancellationRequested();
            throw ChildFailed(volume, child, $"the mount did not answer within {_settings.MountTimeout.TotalSeconds:0} s (is the endpoint reachable?)", StatusCode.Unavailable);
        }
        return await stat.ConfigureAwait(false);
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
                LogChildExited(volume.VolumeId, child.Pid, code, Redact(child.StderrTail, volume));
                ScheduleHeal(volume, "ChildExited", $"s3fs pid {child.Pid} exited with code {code}");
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private RpcException ChildFailed(ManagedVolume volume, IS3fsProcess child, string what, StatusCode? known = null)
    {
        var tail = Redact(child.StderrTail, volume);
        var code = known ?? (tail.Contains("invalid credentials", StringComparison.OrdinalIgnoreCase)
            || tail.Contains("403", StringComparison.Ordinal)
            || tail.Contains("SignatureDoesNotMatch", StringComparison.Ordinal)
            || tail.Contains("InvalidAccessKeyId", StringComparison.Ordinal)
            ? StatusCode.PermissionDenied
            : tail.Contains("NoSuchBucket", StringComparison.Ordinal) || tail.Contains("bucket not found", StringComparison.OrdinalIgnoreCase)
                ? StatusCode.NotFound
                : StatusCode.Internal);
        var message = $"mounting {Describe(volume.Source)} at {volume.StagingPath} failed: {what}" + (tail.Length > 0 ? $"; s3fs said: {tail}" : string.Empty);
        return new RpcException(new Status(code, message));
    }

    /// <summary>s3fs does not print secrets, but make sure: the stored key material never reaches a message.</summary>
    private string Redact(string text, ManagedVolume volume)
    {
        try
        {
            var passwd = _credentials.PasswdFile(volume.VolumeId);
            if (File.Exists(passwd))
            {
                foreach (var part in File.ReadAllText(passwd).Trim().Split(':'))
                {
                    if (part.Length >= 4)
                    {
                        text = text.Replace(part, "[REDACTED]", StringComparison.Ordinal);
                    }
                }
            }
        }
        catch (IOException)
        {
        }
        return text;
    }

    private Task StopChildAsync(ManagedVolume volume) => StopChildAsync(volume, _settings.ShutdownGrace);

    private TimeSpan HealGrace => _settings.ShutdownGrace < TimeSpan.FromSeconds(3) ? _settings.ShutdownGrace : TimeSpan.FromSeconds(3);

    private static async Task StopChildAsync(ManagedVolume volume, TimeSpan grace)
    {
        var child = volume.Child;
        if (child is null)
        {
            return;
        }
        volume.Child = null;
        await child.StopAsync(grace).ConfigureAwait(false);
        child.Dispose();
    }

    /// <summary>
    /// Only the staging mount goes before a restart (s3fs needs its mountpoint). The publish targets
    /// keep the dead mount until the new s3fs answers: a target must never be an empty directory on
    /// the node's disk, where a container started meanwhile would write without an error.
    /// </summary>
    private void UnmountStaging(ManagedVolume volume)
    {
        _mounter.UnmountAllLayers(volume.StagingPath);
        _mounter.UnmountAllLayers(PrivateMountPath(volume));
        volume.Device = string.Empty;
    }

    /// <summary>Where this volume's s3fs mounts: the supervisor's private directory, never a path a caller chose.</summary>
    private string PrivateMountPath(ManagedVolume volume) => Path.Combine(_settings.MountDirectory, CredentialStore.FileName(volume.VolumeId));

    private void RemovePrivateMountDirectory(ManagedVolume volume)
    {
        try
        {
            Directory.Delete(PrivateMountPath(volume));
        }
        catch (IOException)
        {
            // Gone already, or (after a failed unmount) still a mount point: the next start clears it.
        }
    }

    /// <summary>Swaps every target to the live staging mount: dead layers off, the new bind on, one target at a time.</summary>
    private void RebindAllTargets(ManagedVolume volume)
    {
        PublishTarget[] targets;
        lock (volume.Targets)
        {
            targets = volume.Targets.Values.ToArray();
        }
        foreach (var target in targets)
        {
            _mounter.UnmountAllLayers(target.TargetPath);
            _mounter.CreateDirectory(target.TargetPath);
            _mounter.Bind(volume.StagingPath, target.TargetPath, target.ReadOnly, volume.Device);
        }
    }

    private static string[] TargetPaths(ManagedVolume volume)
    {
        lock (volume.Targets)
        {
            return volume.Targets.Keys.ToArray();
        }
    }

    private IEnumerable<string> TargetDevices(ManagedVolume volume) =>
        TargetPaths(volume).Select(_mounter.FindMount).Where(m => m is { IsFuse: true }).Select(m => m!.Device);

    /// <summary>
    /// A path about to be mounted on may hold a leftover of an earlier life (a dead s3fs, a bind of
    /// one). A dead FUSE leftover that no other volume owns is cleared; anything else is not ours to remove.
    /// </summary>
    private void ClearLeftoverMount(ManagedVolume self, string path, string field)
    {
        var mount = _mounter.FindMount(path);
        if (mount is null)
        {
            return;
        }
        if (OwnerOf(path, mount, except: self) is { } owner)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"{field}: {path} is a mount of volume {owner.VolumeId}; only that volume's calls may change it"));
        }
        if (mount.IsFuse && _mounter.Stat(path) == Errno.ENOTCONN)
        {
            MountOrExplain(field, () => _mounter.UnmountAllLayers(path));
            LogLeftoverCleared(path, mount.Device);
            return;
        }
        throw new RpcException(new Status(StatusCode.FailedPrecondition, $"{field}: {path} is already a mount point ({mount.FsType} from {mount.Source})"));
    }

    /// <summary>
    /// Unpublish or unstage of a path the named volume does not own (an unknown id, a retry after the
    /// volume went away, a rebuild not yet done). Only the owner may remove a mount: a path that is
    /// another volume's staging path, target or connection is refused; a dead FUSE leftover nobody
    /// owns is cleared; a path with nothing mounted is an idempotent success.
    /// </summary>
    private async Task ReleaseUnownedPathAsync(string volumeId, string path, string field, bool isTarget, CancellationToken cancellationToken)
    {
        var mount = _mounter.FindMount(path);
        if (mount is not null)
        {
            if (OwnerOf(path, mount) is { } owner && owner.VolumeId != volumeId)
            {
                throw new RpcException(new Status(StatusCode.FailedPrecondition, $"{field}: {path} is a mount of volume {owner.VolumeId}, not of {volumeId}; only that volume's calls may remove it"));
            }
            if (!mount.IsFuse)
            {
                throw new RpcException(new Status(StatusCode.FailedPrecondition, $"{field}: {path} is a {mount.FsType} mount this supervisor did not make; not touched"));
            }
            var errno = await BoundedStatAsync(path, cancellationToken).ConfigureAwait(false);
            if (errno != Errno.ENOTCONN)
            {
                throw new RpcException(new Status(StatusCode.FailedPrecondition, $"{field}: {path} is a live FUSE mount ({mount.Source}) that no volume of this supervisor owns; not touched"));
            }
            MountOrExplain(field, () => _mounter.UnmountAllLayers(path));
            LogLeftoverCleared(path, mount.Device);
        }
        if (isTarget)
        {
            RemoveTargetDirectory(path);
        }
    }

    /// <summary>The known volume a mounted path belongs to: its staging path, one of its targets, or its live connection.</summary>
    private ManagedVolume? OwnerOf(string path, MountEntry mount, ManagedVolume? except = null)
    {
        lock (_volumesLock)
        {
            foreach (var volume in _volumes.Values)
            {
                if (volume == except)
                {
                    continue;
                }
                bool target;
                lock (volume.Targets)
                {
                    target = volume.Targets.ContainsKey(path);
                }
                if (volume.StagingPath == path || target || (mount.IsFuse && volume.Device.Length > 0 && volume.Device == mount.Device))
                {
                    return volume;
                }
            }
        }
        return null;
    }

    /// <summary>CSI: the SP deletes the target directory it created. Only an empty directory goes; never anything in it.</summary>
    private void RemoveTargetDirectory(string targetPath)
    {
        try
        {
            if (!_mounter.RemoveDirectory(targetPath))
            {
                LogTargetKept(targetPath);
            }
        }
        catch (IOException e)
        {
            LogTargetKept(targetPath + " (" + e.Message + ")");
        }
    }

    /// <summary>Publish binds only a live FUSE mount of this very volume; otherwise the volume is healed first and the caller retries.</summary>
    private async Task EnsureLiveStagingAsync(ManagedVolume volume, CancellationToken cancellationToken)
    {
        var problem = await ProbeAsync(volume, _mounter.ReadMounts(), cancellationToken).ConfigureAwait(false);
        if (problem is null)
        {
            return;
        }
        ScheduleHeal(volume, "StagingMountLost", problem);
        throw new RpcException(new Status(StatusCode.Unavailable, $"volume_id: {volume.VolumeId} has no live staging mount ({problem}); the supervisor is healing it, retry"));
    }

    /// <summary>
    /// Before s3fs's mount is bound on the staging directory: files found there were written to the
    /// node's disk while no mount covered it. They are moved aside (never deleted) into the state
    /// directory, and the move is reported.
    /// </summary>
    private void MoveStrayFilesAside(ManagedVolume volume)
    {
        var staging = volume.StagingPath;
        if (_mounter.FindMount(staging) is not null || !Directory.Exists(staging))
        {
            return;
        }
        var entries = Directory.EnumerateFileSystemEntries(staging).ToArray();
        if (entries.Length == 0)
        {
            return;
        }
        var destination = Path.Combine(_settings.StateDirectory, "stray", CredentialStore.FileName(volume.VolumeId) + "-" + _time.GetUtcNow().ToString("yyyyMMdd'T'HHmmssfff", System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(destination, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        foreach (var entry in entries)
        {
            StrayFiles.Move(entry, Path.Combine(destination, Path.GetFileName(entry)));
        }
        var message = $"{entries.Length} file(s) found in the unmounted staging directory {staging} (written to the node's disk, not to S3) were moved to {destination}";
        LogStrayFiles(volume.VolumeId, message);
        Emit(volume, "StrayFilesMovedAside", message);
        _ = NotifyStrayAsync(volume.Snapshot(), message);
    }

    private async Task NotifyStrayAsync(Volume snapshot, string message)
    {
        try
        {
            await _observer.OnStrayFilesAsync(snapshot, message, _shutdown.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            LogObserverFailed(snapshot.VolumeId, e.Message);
        }
    }

    /// <summary>Runs a mount-layer step and turns its path errors into statuses naming the field.</summary>
    private static void MountOrExplain(string field, Action step)
    {
        try
        {
            step();
        }
        catch (PathRefusedException e)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"{field}: {e.PathName} {e.Reason}"));
        }
        catch (MountSourceException e)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"{field}: the staging mount {e.Message}; retry once the volume is healed"));
        }
        catch (InteropException e) when (e.Errno is Errno.EACCES or Errno.EPERM or Errno.EROFS)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"{field}: {e.Message}"));
        }
        catch (InteropException e) when (e.Errno is Errno.ENAMETOOLONG)
        {
            throw Common.Validate.Invalid(field, "is too long for the file system");
        }
        catch (InteropException e) when (e.Errno is Errno.ENOENT or Errno.EEXIST)
        {
            // Something else renamed or removed a directory on the way in between: nothing was mounted.
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"{field}: {e.Path} changed while it was being mounted ({Errno.Name(e.Errno)}); nothing was mounted, retry"));
        }
    }

    /// <summary>A forced statx that gives up after the health-check timeout (a hung FUSE connection blocks it).</summary>
    private async Task<int> BoundedStatAsync(string path, CancellationToken cancellationToken)
    {
        var stat = Task.Run(() => _mounter.Stat(path), CancellationToken.None);
        return await Task.WhenAny(stat, Task.Delay(_settings.HealthCheckTimeout, _time, cancellationToken)).ConfigureAwait(false) == stat
            ? await stat.ConfigureAwait(false)
            : Errno.ETIMEDOUT;
    }

    private (ManagedVolume Volume, bool Created) GetOrAdd(string volumeId)
    {
        lock (_volumesLock)
        {
            if (_volumes.TryGetValue(volumeId, out var existing))
            {
                return (existing, false);
            }
            var volume = new ManagedVolume(volumeId) { StateSince = _time.GetUtcNow() };
            _volumes[volumeId] = volume;
            return (volume, true);
        }
    }

    /// <summary>
    /// Gets (or creates) the record and takes its lock, making sure the record is still the live one:
    /// a call that waited for the lock while a failed stage forgot the record starts over.
    /// </summary>
    private async Task<(ManagedVolume Volume, bool Created, LockHolder Held)> AcquireAsync(string volumeId, bool wait, CancellationToken cancellationToken)
    {
        while (true)
        {
            var (volume, created) = GetOrAdd(volumeId);
            var held = await LockAsync(volume, wait, cancellationToken).ConfigureAwait(false);
            if (Find(volumeId) == volume)
            {
                return (volume, created, held);
            }
            await held.DisposeAsync().ConfigureAwait(false);
        }
    }

    private ManagedVolume? Find(string volumeId)
    {
        lock (_volumesLock)
        {
            return _volumes.GetValueOrDefault(volumeId);
        }
    }

    private void Forget(ManagedVolume volume)
    {
        lock (_volumesLock)
        {
            if (_volumes.TryGetValue(volume.VolumeId, out var current) && current == volume)
            {
                _volumes.Remove(volume.VolumeId);
            }
        }
    }

    private static async Task<LockHolder> LockAsync(ManagedVolume volume, bool wait, CancellationToken cancellationToken)
    {
        if (wait)
        {
            await volume.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        else if (!await volume.Lock.WaitAsync(TimeSpan.Zero, cancellationToken).ConfigureAwait(false))
        {
            throw new RpcException(new Status(StatusCode.Aborted, $"volume_id: an operation on {volume.VolumeId} is already in progress"));
        }
        return new LockHolder(volume.Lock);
    }

    /// <summary>
    /// Journal records the rebuild could not restore yet (API server down, secret missing). They stay
    /// in the journal until restored or dropped, even while other volumes rewrite it.
    /// </summary>
    public void SetPendingRecords(IEnumerable<Volume> records)
    {
        lock (_pendingRecords)
        {
            _pendingRecords.Clear();
            foreach (var record in records)
            {
                _pendingRecords[record.VolumeId] = record;
            }
        }
    }

    public void ClearPendingRecord(string volumeId)
    {
        lock (_pendingRecords)
        {
            _pendingRecords.Remove(volumeId);
        }
    }

    /// <summary>Writes the journal now (the rebuild calls it after dropping records).</summary>
    public Task SaveJournalAsync() => _journal.SaveAsync(JournalRecords, CancellationToken.None);

    private IEnumerable<Volume> JournalRecords()
    {
        var known = List();
        lock (_pendingRecords)
        {
            return known.Concat(_pendingRecords.Values.Where(p => known.All(k => k.VolumeId != p.VolumeId))).ToArray();
        }
    }

    /// <summary>Publishes an event about a volume the manager does not hold (the rebuild's reports).</summary>
    public void Report(string volumeId, VolumeState state, string reason, string message) =>
        _events.Publish(new VolumeEvent { Time = Now(), VolumeId = volumeId, State = state, Reason = reason, Message = message });

    private void SetState(ManagedVolume volume, VolumeState state, string reason, string message)
    {
        volume.State = state;
        volume.StateSince = _time.GetUtcNow();
        if (state == VolumeState.Ready)
        {
            volume.LastError = string.Empty;
        }
        LogStateChanged(volume.VolumeId, StateName(state), reason, message);
        Emit(volume, reason, message);
    }

    private void Emit(ManagedVolume volume, string reason, string message) =>
        _events.Publish(new VolumeEvent
        {
            Time = Now(),
            VolumeId = volume.VolumeId,
            State = volume.State,
            Reason = reason,
            Message = message,
            Volume = volume.Snapshot(),
        });

    private Timestamp Now() => Timestamp.FromDateTimeOffset(_time.GetUtcNow());

    private static string Describe(VolumeSource source) =>
        source.Prefix.Length == 0 ? $"s3://{source.Bucket}" : $"s3://{source.Bucket}/{source.Prefix}";

    private static string PodSuffix(PodRef? pod) =>
        pod is null || pod.Name.Length == 0 ? string.Empty : $" for pod {pod.Namespace}/{pod.Name}";

    public static string StateName(VolumeState state) => Observability.VolumeStates.Name(state);

    private static string Message(Exception e) => e is RpcException rpc ? rpc.Status.Detail : e.Message;

    /// <summary>
    /// NOT_FOUND is final for kubelet. While the rebuild after a restart has not yet looked at its
    /// sources, or still works on this very volume (kubelet's directories or the journal know it),
    /// the answer is UNAVAILABLE: retry, it is coming back.
    /// </summary>
    private RpcException NotFound(string volumeId)
    {
        lock (_awaitingRestore)
        {
            if (_restoreScanPending || _awaitingRestore.Contains(volumeId))
            {
                return new RpcException(new Status(StatusCode.Unavailable, $"volume_id: {volumeId} is being restored after a supervisor restart; retry shortly"));
            }
        }
        return new RpcException(new Status(StatusCode.NotFound, $"volume_id: {volumeId} is not staged on this node"));
    }

    /// <summary>Called before the host serves when a rebuild will run: until it has scanned, unknown ids are "not yet", not "never".</summary>
    public void ExpectRestore()
    {
        lock (_awaitingRestore)
        {
            _restoreScanPending = true;
        }
    }

    /// <summary>The volumes the rebuild will try to bring back (known to kubelet's directories or the journal).</summary>
    public void SetAwaitingRestore(IEnumerable<string> volumeIds)
    {
        lock (_awaitingRestore)
        {
            _awaitingRestore.Clear();
            _awaitingRestore.UnionWith(volumeIds);
            _restoreScanPending = false;
        }
    }

    /// <summary>The rebuild is done with a volume (restored, dropped, or given up): its id is answered for what it is.</summary>
    public void RestoreSettled(string volumeId)
    {
        lock (_awaitingRestore)
        {
            _awaitingRestore.Remove(volumeId);
        }
    }

    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "Volume {VolumeId} is {State} ({Reason}): {Detail}")]
    private partial void LogStateChanged(string volumeId, string state, string reason, string detail);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Volume {VolumeId}: s3fs pid {Pid} started for {StagingPath}")]
    private partial void LogChildStarted(string volumeId, int pid, string stagingPath);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Volume {VolumeId}: s3fs pid {Pid} exited with code {ExitCode}; stderr: {StderrTail}")]
    private partial void LogChildExited(string volumeId, int pid, int exitCode, string stderrTail);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "Volume {VolumeId}: unstaged from {StagingPath}")]
    private partial void LogUnstaged(string volumeId, string stagingPath);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "Volume {VolumeId}: heal attempt {Attempt} waits {Seconds} s (backoff)")]
    private partial void LogBackoff(string volumeId, int attempt, double seconds);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "Cleared a leftover FUSE mount {Device} at {Path}")]
    private partial void LogLeftoverCleared(string path, string device);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Information, Message = "Volume {VolumeId}: credentials rotated; they take effect at the next s3fs start")]
    private partial void LogCredentialsRotated(string volumeId);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Warning, Message = "Volume {VolumeId}: recovery observer failed: {Reason}")]
    private partial void LogObserverFailed(string volumeId, string reason);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Warning, Message = "Volume {VolumeId}: {Detail}")]
    private partial void LogStrayFiles(string volumeId, string detail);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Warning, Message = "Target directory {Path} kept after unpublish: it is not empty or still a mount point")]
    private partial void LogTargetKept(string path);

    private readonly struct LockHolder(SemaphoreSlim semaphore) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            semaphore.Release();
            return ValueTask.CompletedTask;
        }
    }
}

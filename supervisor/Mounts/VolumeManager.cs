using Microsoft.Extensions.Logging;
using S3Supervisor.Api.V1;

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
    string StateDirectory = "/var/lib/s3supervisor",
    TimeSpan? HealthCheckInterval = null,
    long? ChildMemoryMaxBytes = null);

/// <summary>
/// Owns every volume on the node: one s3fs child per volume at its staging path, and bind mounts
/// of it on each publish target. Calls for one volume are serialised by its lock (a concurrent call
/// gets Aborted); a repeated call that is already satisfied succeeds. When a child dies or its mount
/// stops answering, the volume is healed in the background with per-volume backoff, so one sick
/// volume never holds up another.
/// </summary>
public sealed partial class VolumeManager : IAsyncDisposable
{
    private readonly VolumeTable _table;
    private readonly RestoreWaitList _awaitingRestore = new();
    private readonly IMounter _mounter;
    private readonly CredentialStore _credentials;
    private readonly Journal _journal;
    private readonly VolumeReporter _reporter;
    private readonly MountOwnership _ownership;
    private readonly S3fsStarter _starter;
    private readonly VolumeHealer _healer;
    private readonly ChildAdoption _adoption;
    private volatile bool _draining;
    private Task<int>? _drain;
    private readonly ILogger<VolumeManager> _logger;
    private readonly Observability.SupervisorMetrics _metrics;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly IS3AccessCheck _access;

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
        _mounter = mounter;
        _credentials = credentials;
        _journal = journal;
        _logger = logger;
        // The rooms share this manager's logger, so every line keeps its category and event id.
        _table = new VolumeTable(time);
        _reporter = new VolumeReporter(events, observer, time, logger, _shutdown.Token);
        _ownership = new MountOwnership(_table, mounter, _reporter, time, settings, logger);
        _starter = new S3fsStarter(launcher, mounter, credentials, _ownership, time, settings, logger);
        _healer = new VolumeHealer(_table, mounter, _starter, _reporter, _metrics, time, settings, logger, SaveJournalAsync, _shutdown.Token);
        _adoption = new ChildAdoption(_table, mounter, launcher, _starter, _healer, _reporter, credentials, time, settings, logger);
    }

    public VolumeEventHub Events => _reporter.Events;

    public IReadOnlyList<Volume> List() => _table.Staged();

    public Volume Get(string volumeId)
    {
        var volume = _table.Find(volumeId) ?? throw NotFound(volumeId);
        var snapshot = volume.Snapshot();
        snapshot.LogTail = volume.Child is { } child ? _starter.Redact(child.StderrTail, volume) : string.Empty;
        return snapshot;
    }

    /// <summary>Starts s3fs at the staging path and returns once the mount answers.</summary>
    public async Task<Volume> StageAsync(string volumeId, string stagingPath, VolumeSource source, Credentials? credentials, CancellationToken cancellationToken)
    {
        RefuseWhileDraining();
        var (volume, created, held) = await _table.AcquireAsync(volumeId, wait: false, cancellationToken).ConfigureAwait(false);
        await using var lease = held;
        if (volume.Staged)
        {
            if (volume.StagingPath != stagingPath || !volume.Source.Equals(source))
            {
                throw new VolumeException(VolumeErrorKind.AlreadyExists, "volume_id", $"{volumeId} is already staged at {volume.StagingPath} with a different source");
            }
            RotateCredentials(volume, credentials);
            return volume.State == VolumeState.Ready
                ? volume.Snapshot()
                : throw new VolumeException(VolumeErrorKind.Unavailable, "volume_id", $"{volumeId} is staged but {StateName(volume.State)}; the supervisor is healing it, retry later");
        }

        try
        {
            volume.StagingPath = stagingPath;
            volume.Source = source;
            _reporter.SetState(volume, VolumeState.Mounting, "Staging", $"mounting {S3Location.Of(source)} at {stagingPath}");
            _ownership.ClearLeftoverMount(volume, stagingPath, "staging_path");
            if (!source.Options.PublicBucket)
            {
                _credentials.Write(volumeId, credentials ?? throw VolumeException.Invalid("credentials", "are required unless the public_bucket option is set"));
            }
            // S3 is asked (bucket, key, policy) while s3fs starts, and its verdict is heard before the
            // volume counts as staged: a refused key is PERMISSION_DENIED naming S3's error code, never a
            // mount that seemed to answer (see the README's pitfalls), and the check costs no time of its own.
            var check = _access.CheckAsync(source, source.Options.PublicBucket ? null : credentials, cancellationToken);
            Exception? startFailed = null;
            try
            {
                await _healer.StartWatchedAsync(volume, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                startFailed = e;
            }
            await check.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (startFailed is not null && check.IsCompletedSuccessfully)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(startFailed);
            }
            // Both failed: S3's answer names the cause better than s3fs's exit does.
            await check.ConfigureAwait(false);
            volume.Staged = true;
            await SaveJournalAsync().ConfigureAwait(false);
            _reporter.SetState(volume, VolumeState.Ready, "Staged", $"s3fs pid {volume.Child?.Pid} mounted {S3Location.Of(source)} at {stagingPath}");
            return volume.Snapshot();
        }
        catch
        {
            // Nothing half-made survives a failed first stage: no child, no mount, no record, no secret.
            volume.Staged = false;
            volume.Stopping = true;
            await S3fsStarter.StopAsync(volume, _starter.HealGrace).ConfigureAwait(false);
            if (volume.Device.Length > 0)
            {
                _starter.UnmountStaging(volume);
            }
            _starter.RemoveVolumeDirectories(volume);
            _table.Forget(volume);
            _credentials.Remove(volumeId);
            throw;
        }
    }

    /// <param name="credentials">Node-publish credentials, if any: rotated keys replace the stored ones.</param>
    public async Task<Volume> PublishAsync(string volumeId, string targetPath, bool readOnly, PodRef? pod, CancellationToken cancellationToken, Credentials? credentials = null)
    {
        var volume = _table.Find(volumeId) ?? throw NotFound(volumeId);
        await using var held = await VolumeTable.LockAsync(volume, wait: false, cancellationToken).ConfigureAwait(false);
        if (!volume.Staged)
        {
            throw NotFound(volumeId);
        }
        RotateCredentials(volume, credentials);
        if (targetPath == volume.StagingPath)
        {
            throw VolumeException.Invalid("target_path", "must differ from the staging path");
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
                throw new VolumeException(VolumeErrorKind.AlreadyExists, "target_path", $"{targetPath} is already published {(existing.ReadOnly ? "read-only" : "read-write")}");
            }
            if (volume.State == VolumeState.Ready && _mounter.FindMount(targetPath)?.Device != volume.Device)
            {
                // The bind went missing (someone unmounted it): put it back, from the live mount only.
                await _healer.EnsureLiveStagingAsync(volume, cancellationToken).ConfigureAwait(false);
                _ownership.ClearLeftoverMount(volume, targetPath, "target_path");
                MountOwnership.MountOrExplain("target_path", () => _mounter.Bind(volume.StagingPath, targetPath, readOnly, volume.Device));
            }
            return volume.Snapshot();
        }
        if (volume.State != VolumeState.Ready)
        {
            throw new VolumeException(VolumeErrorKind.Unavailable, "volume_id", $"{volumeId} is {StateName(volume.State)}; retry once it is ready");
        }
        // Only a live FUSE mount of this very volume is ever bound: never the bare staging directory
        // (a file written there would land on the node's disk, and block every later heal).
        await _healer.EnsureLiveStagingAsync(volume, cancellationToken).ConfigureAwait(false);
        MountOwnership.MountOrExplain("target_path", () => _mounter.CreateDirectory(targetPath));
        _ownership.ClearLeftoverMount(volume, targetPath, "target_path");
        MountOwnership.MountOrExplain("target_path", () => _mounter.Bind(volume.StagingPath, targetPath, readOnly, volume.Device));
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
        _reporter.Emit(volume, "Published", $"bound to {targetPath}{(readOnly ? " read-only" : string.Empty)}{PodSuffix(pod)}");
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
        var volume = _table.Find(volumeId);
        if (volume is null)
        {
            await _ownership.ReleaseUnownedPathAsync(volumeId, targetPath, "target_path", isTarget: true, cancellationToken).ConfigureAwait(false);
            return;
        }
        await using var held = await VolumeTable.LockAsync(volume, wait: false, cancellationToken).ConfigureAwait(false);
        bool known;
        lock (volume.Targets)
        {
            known = volume.Targets.ContainsKey(targetPath);
        }
        if (!known)
        {
            await _ownership.ReleaseUnownedPathAsync(volumeId, targetPath, "target_path", isTarget: true, cancellationToken).ConfigureAwait(false);
            return;
        }
        MountOwnership.MountOrExplain("target_path", () => _mounter.UnmountAllLayers(targetPath));
        lock (volume.Targets)
        {
            volume.Targets.Remove(targetPath);
        }
        await SaveJournalAsync().ConfigureAwait(false);
        _ownership.RemoveTargetDirectory(targetPath);
        _reporter.Emit(volume, "Unpublished", $"unbound from {targetPath}");
    }

    /// <summary>Stops s3fs (flushing writes), unmounts and removes the credentials. Succeeds for an unknown volume.</summary>
    public async Task UnstageAsync(string volumeId, string stagingPath, CancellationToken cancellationToken)
    {
        var volume = _table.Find(volumeId);
        if (volume is null)
        {
            await _ownership.ReleaseUnownedPathAsync(volumeId, stagingPath, "staging_path", isTarget: false, cancellationToken).ConfigureAwait(false);
            _credentials.Remove(volumeId);
            // kubelet is done with it: a rebuild still working on it must not bring it back.
            _awaitingRestore.Settled(volumeId);
            return;
        }
        await using var held = await VolumeTable.LockAsync(volume, wait: false, cancellationToken).ConfigureAwait(false);
        if (volume.StagingPath != stagingPath)
        {
            throw new VolumeException(VolumeErrorKind.FailedPrecondition, "staging_path", $"volume {volumeId} is staged at {volume.StagingPath}, not at {stagingPath}");
        }
        int targets;
        lock (volume.Targets)
        {
            targets = volume.Targets.Count;
        }
        if (targets > 0)
        {
            throw new VolumeException(VolumeErrorKind.FailedPrecondition, "volume_id", $"{volumeId} is still published at {targets} target(s); unpublish them first");
        }
        volume.Stopping = true;
        await volume.Lifetime.CancelAsync().ConfigureAwait(false);
        _reporter.SetState(volume, VolumeState.Unmounting, "Unstaging", $"stopping s3fs pid {volume.Child?.Pid}");
        await _starter.StopAsync(volume).ConfigureAwait(false);
        _starter.UnmountStaging(volume);
        _starter.RemoveVolumeDirectories(volume);
        _starter.Release(volume);
        _credentials.Remove(volumeId);
        _table.Forget(volume);
        await SaveJournalAsync().ConfigureAwait(false);
        LogUnstaged(volumeId, stagingPath);
        _reporter.Report(volumeId, VolumeState.Unmounting, "Unstaged", $"unmounted {stagingPath}");
    }

    /// <summary>Operator action: restart s3fs now and re-bind every target. Returns the healed volume.</summary>
    public async Task<Volume> RemountAsync(string volumeId, CancellationToken cancellationToken, bool waitForContainerRepair = false)
    {
        RefuseWhileDraining();
        var volume = _table.Find(volumeId) ?? throw NotFound(volumeId);
        if (!volume.Staged)
        {
            throw NotFound(volumeId);
        }
        await _healer.HealAsync(volume, "OperatorRemount", "remount requested by an operator", cancellationToken, waitForContainerRepair).ConfigureAwait(false);
        return volume.Snapshot();
    }

    /// <summary>Health check of every volume: a Ready volume whose mount is gone or answers ENOTCONN is healed.</summary>
    public Task CheckHealthAsync(CancellationToken cancellationToken) => _healer.CheckHealthAsync(cancellationToken);

    /// <summary>Writes the journal now (the rebuild calls it after dropping records).</summary>
    public Task SaveJournalAsync() => _journal.SaveEntriesAsync(_table.JournalEntries, CancellationToken.None);

    /// <summary>Publishes an event about a volume the manager does not hold (the rebuild's reports).</summary>
    public void Report(string volumeId, VolumeState state, string reason, string message) => _reporter.Report(volumeId, state, reason, message);

    public static string StateName(VolumeState state) => VolumeReporter.StateName(state);

    private VolumeException NotFound(string volumeId) => _awaitingRestore.NotFound(volumeId);

    private static string[] TargetPaths(ManagedVolume volume)
    {
        lock (volume.Targets)
        {
            return volume.Targets.Keys.ToArray();
        }
    }

    private IEnumerable<string> TargetDevices(ManagedVolume volume) =>
        TargetPaths(volume).Select(_mounter.FindMount).Where(m => m is { IsFuse: true }).Select(m => m!.Device);

    private static string PodSuffix(PodRef? pod) =>
        pod is null || pod.Name.Length == 0 ? string.Empty : $" for pod {pod.Namespace}/{pod.Name}";

    [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "Volume {VolumeId}: unstaged from {StagingPath}")]
    private partial void LogUnstaged(string volumeId, string stagingPath);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Information, Message = "Volume {VolumeId}: credentials rotated; they take effect at the next s3fs start")]
    private partial void LogCredentialsRotated(string volumeId);
}

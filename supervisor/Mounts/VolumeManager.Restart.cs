using Microsoft.Extensions.Logging;
using S3Supervisor.Api.V1;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// The volume manager across supervisor restarts: adopting the children a predecessor left running,
/// restoring what the rebuild brings back, leaving every child running on SIGTERM, and the drain that
/// stops them all.
/// </summary>
public sealed partial class VolumeManager
{
    /// <summary>
    /// Brings a volume back after a supervisor restart: clears stale mounts, starts s3fs with the
    /// given credentials (null: the passwd file stored before the restart) and re-binds the targets.
    /// Used by the rebuild; a volume already staged is left as it is.
    /// </summary>
    public async Task<Volume> RestoreAsync(string volumeId, string stagingPath, VolumeSource source, Credentials? credentials, IEnumerable<PublishTarget> targets, CancellationToken cancellationToken)
    {
        var (volume, created, held) = await _table.AcquireAsync(volumeId, wait: true, cancellationToken).ConfigureAwait(false);
        await using var lease = held;
        _awaitingRestore.Settled(volumeId);
        if (!created && volume.Staged)
        {
            if (credentials is not null && (volume.CredentialsMissing || volume.State == VolumeState.Failed))
            {
                // CredentialsMissing: adopted after a restart that lost the secrets tmpfs. Failed: restored
                // from the journal with its stored passwd file and that failed (a rotated secret, say):
                // the healer's next start uses what the API server says now.
                // Adopted after a restart that lost the secrets tmpfs: the running s3fs needs nothing,
                // but its next start (a heal) will.
                _credentials.Write(volumeId, credentials);
                volume.CredentialsMissing = false;
            }
            return volume.Snapshot();
        }
        RefuseWhileDraining();
        volume.StagingPath = stagingPath;
        volume.Source = source;
        lock (volume.Targets)
        {
            foreach (var target in targets)
            {
                volume.Targets[target.TargetPath] = target.Clone();
            }
        }
        _journal.ClearPendingRecord(volumeId);
        var deadDevice = _mounter.FindMount(stagingPath) is { IsFuse: true } stale ? stale.Device : string.Empty;
        if (deadDevice.Length == 0)
        {
            // The staging mount may be gone already (s3fs unmounted itself on SIGTERM); a target still shows the dead connection.
            deadDevice = TargetDevices(volume).FirstOrDefault() ?? string.Empty;
        }
        try
        {
            _reporter.SetState(volume, VolumeState.Recovering, "Restoring", $"restoring {S3Location.Of(source)} at {stagingPath}");
            // No credentials: the journal's fast path, with the passwd file this volume was staged with
            // (checked against S3 then, and s3fs's readiness probe reports a denial again now).
            var stored = credentials is null && !source.Options.PublicBucket;
            if (stored)
            {
                if (!HasStoredCredentials(volumeId))
                {
                    throw VolumeException.Invalid("credentials", "are required unless the public_bucket option is set");
                }
            }
            else
            {
                if (!source.Options.PublicBucket)
                {
                    _credentials.Write(volumeId, credentials!);
                }
                await _access.CheckAsync(source, source.Options.PublicBucket ? null : credentials, cancellationToken).ConfigureAwait(false);
            }
            _starter.UnmountStaging(volume);
            await _healer.StartWatchedAsync(volume, cancellationToken).ConfigureAwait(false);
            _healer.RebindAllTargets(volume);
            volume.Staged = true;
            volume.RestartCount++;
            _metrics.Restore(success: true);
            _reporter.SetState(volume, VolumeState.Ready, "Restored", $"s3fs pid {volume.Child?.Pid} serves {stagingPath} and {volume.Targets.Count} target(s)");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Keep the volume known (Failed), so the health loop retries and the operator sees it.
            volume.Staged = true;
            volume.LastError = e.Message;
            _metrics.Restore(success: false);
            _reporter.SetState(volume, VolumeState.Failed, "RestoreFailed", volume.LastError);
            _healer.ScheduleHeal(volume, "RestoreFailed", volume.LastError);
            await SaveJournalAsync().ConfigureAwait(false);
            return volume.Snapshot();
        }
        await SaveJournalAsync().ConfigureAwait(false);
        var snapshot = volume.Snapshot();
        _ = _reporter.RecoveredAsync(snapshot, deadDevice);
        return snapshot;
    }

    /// <summary>
    /// Adopts, before anything else runs, every s3fs a predecessor started that still serves its
    /// volume (see <see cref="ChildAdoption"/>). Returns the adopted ids; the rebuild leaves them alone.
    /// </summary>
    public async Task<StartingVolumes> AdoptAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<JournalEntry> entries;
        try
        {
            entries = _journal.LoadEntries();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            // An unreadable journal must not stop the supervisor (that would stop serving every
            // healthy mount): nothing is adopted, and the rebuild reports the journal itself.
            LogJournalUnreadable(e.Message);
            return new StartingVolumes([], []);
        }
        var adopted = await _adoption.AdoptAsync(entries, cancellationToken).ConfigureAwait(false);
        return new StartingVolumes(adopted, entries.Select(e => e.Volume.VolumeId).ToArray());
    }

    /// <summary>
    /// Whether a volume's passwd file from before the restart is still here (the secrets directory
    /// outlives the supervisor's process and container, not its pod): the rebuild can then remount it
    /// from the journal at once, without waiting for the API server.
    /// </summary>
    public bool HasStoredCredentials(string volumeId) => _credentials.Has(volumeId);

    /// <summary>
    /// After the rebuild: the passwd files of journal records that did not come back (dropped, not
    /// explained, never restorable) go. A volume known meanwhile (restored, or staged anew) keeps its own.
    /// </summary>
    public void RemoveStoredCredentialsOfUnknown(IEnumerable<string> volumeIds)
    {
        foreach (var id in volumeIds)
        {
            if (_table.Find(id) is null)
            {
                _credentials.Remove(id);
            }
        }
    }

    /// <summary>Whether the rebuild has nothing to do for this volume: it is served, with its credentials at hand.</summary>
    public bool IsServed(string volumeId) => _table.Find(volumeId) is { Staged: true, CredentialsMissing: false };

    /// <summary>
    /// The supervisor stops (SIGTERM: a restart or an upgrade): every s3fs keeps running and keeps its
    /// mounts, so no application sees anything; the journal records them for the next supervisor to
    /// adopt. Healing stops here. <see cref="DrainAsync"/> is the way to stop the children.
    /// </summary>
    public async Task ShutdownAsync()
    {
        if (_shutdown.IsCancellationRequested)
        {
            return;
        }
        await _shutdown.CancelAsync().ConfigureAwait(false);
        try
        {
            // After a drain the journal was written without children already.
            if (!_draining)
            {
                await SaveJournalAsync().ConfigureAwait(false);
            }
        }
        catch (IOException e)
        {
            LogJournalAtShutdownFailed(e.Message);
        }
        foreach (var volume in _table.All())
        {
            // The process goes on; only our handle on it closes.
            volume.Child?.Dispose();
        }
    }

    /// <summary>
    /// Stops every child gracefully (SIGTERM, so buffered writes reach S3, SIGKILL after the grace) and
    /// unmounts every staging mount; the targets keep their dead binds (never an empty directory on
    /// the node's disk). The journal keeps every record without a child, so the next supervisor
    /// rebuilds them all. New stages are refused from here on. Returns how many children were stopped.
    /// </summary>
    public Task<int> DrainAsync()
    {
        lock (_table)
        {
            // Idempotent: a second Drain (or SIGTERM during one) waits for the same one.
            _draining = true;
            return _drain ??= DrainOnceAsync();
        }
    }

    private async Task<int> DrainOnceAsync()
    {
        await Task.Yield();
        var volumes = _table.All();
        foreach (var volume in volumes)
        {
            volume.Stopping = true;
            await volume.Lifetime.CancelAsync().ConfigureAwait(false);
        }
        var running = volumes.Count(v => v.Child is { Exited.IsCompleted: false });
        LogDraining(running, _starter.Grace.TotalSeconds);
        await Task.WhenAll(volumes.Select(async volume =>
        {
            await using var held = await VolumeTable.LockAsync(volume, wait: true, CancellationToken.None).ConfigureAwait(false);
            _reporter.SetState(volume, VolumeState.Unmounting, "Draining", $"stopping s3fs pid {volume.Child?.Pid}");
            await _starter.StopAsync(volume).ConfigureAwait(false);
            _starter.UnmountStaging(volume);
            _starter.RemoveVolumeDirectories(volume);
            _starter.Release(volume);
            _credentials.Remove(volume.VolumeId);
        })).ConfigureAwait(false);
        await SaveJournalAsync().ConfigureAwait(false);
        return running;
    }

    public bool Draining => _draining;

    private void RefuseWhileDraining()
    {
        if (_draining)
        {
            throw new VolumeException(VolumeErrorKind.Unavailable, "volume_id", "the supervisor is draining (every s3fs is being stopped); retry once it has restarted");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await ShutdownAsync().ConfigureAwait(false);
        _shutdown.Dispose();
    }

    /// <summary>
    /// Journal records the rebuild could not restore yet (API server down, secret missing). They stay
    /// in the journal until restored or dropped, even while other volumes rewrite it.
    /// </summary>
    public void SetPendingRecords(IEnumerable<Volume> records) => _journal.SetPendingRecords(records);

    public void ClearPendingRecord(string volumeId) => _journal.ClearPendingRecord(volumeId);

    /// <summary>Called before the host serves when a rebuild will run: until it has scanned, unknown ids are "not yet", not "never".</summary>
    public void ExpectRestore() => _awaitingRestore.Expect();

    /// <summary>The volumes the rebuild will try to bring back (known to kubelet's directories or the journal).</summary>
    public void SetAwaitingRestore(IEnumerable<string> volumeIds) => _awaitingRestore.Set(volumeIds);

    /// <summary>The rebuild is done with a volume (restored, dropped, or given up): its id is answered for what it is.</summary>
    public void RestoreSettled(string volumeId) => _awaitingRestore.Settled(volumeId);

    [LoggerMessage(EventId = 1016, Level = LogLevel.Error, Message = "The journal cannot be read ({Reason}): no s3fs is adopted")]
    private partial void LogJournalUnreadable(string reason);

    [LoggerMessage(EventId = 1014, Level = LogLevel.Warning, Message = "Stopping: the journal could not be written ({Reason}); the next supervisor rebuilds instead of adopting")]
    private partial void LogJournalAtShutdownFailed(string reason);

    [LoggerMessage(EventId = 1015, Level = LogLevel.Information, Message = "Draining: SIGTERM to {Count} s3fs children, grace {Seconds} s; the journal keeps every volume for the next start")]
    private partial void LogDraining(int count, double seconds);
}

/// <summary>What the start found: the volumes whose s3fs was adopted, and every volume the journal recorded.</summary>
public sealed record StartingVolumes(IReadOnlyCollection<string> Adopted, IReadOnlyCollection<string> Journaled);

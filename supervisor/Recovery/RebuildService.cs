using System.Collections.Concurrent;
using k8s;
using Microsoft.Extensions.Options;
using S3Supervisor.Api.V1;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Recovery;

/// <summary>
/// At start, brings back every volume this node served before the supervisor restarted. It
/// cross-checks three sources: kubelet's directories (what kubelet believes is mounted), the journal
/// (what this supervisor mounted), and the API server (what pods on the node use, and the only source
/// of credentials). A journal record with neither a kubelet directory nor a pod is dropped; a volume
/// kubelet knows but the API server does not explain is reported, never guessed. Everything else is
/// restored in parallel (bounded), retrying with backoff while the API server is unreachable or a
/// secret is missing; one bad volume never blocks the rest.
/// </summary>
public sealed partial class RebuildService : BackgroundService
{
    private readonly VolumeManager _volumes;
    private readonly Journal _journal;
    private readonly IMounter _mounter;
    private readonly KubernetesAccess _access;
    private readonly PathGuard _paths;
    private readonly IPodEventRecorder _events;
    private readonly KubernetesOptions _k8s;
    private readonly RebuildOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<RebuildService> _logger;
    private readonly Observability.SupervisorMetrics _metrics;

    public RebuildService(
        VolumeManager volumes,
        Journal journal,
        IMounter mounter,
        KubernetesAccess access,
        PathGuard paths,
        IPodEventRecorder events,
        IOptions<KubernetesOptions> k8s,
        IOptions<RebuildOptions> options,
        TimeProvider time,
        ILogger<RebuildService> logger,
        Observability.SupervisorMetrics metrics)
    {
        _metrics = metrics;
        _volumes = volumes;
        _journal = journal;
        _mounter = mounter;
        _access = access;
        _paths = paths;
        _events = events;
        _k8s = k8s.Value;
        _options = options.Value;
        _time = time;
        _logger = logger;
        // Until the rebuild has looked at kubelet's directories and the journal, an unknown volume id
        // may be one that is coming back: kubelet must hear UNAVAILABLE (retry), not NOT_FOUND (final).
        _volumes.ExpectRestore();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Off the start-up path: the host goes on to bind the socket while this runs.
        await Task.Yield();
        try
        {
            await RebuildAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            // Never let the rebuild stop the host: that would kill every healthy mount on the node.
            LogRebuildFailed(e.ToString());
        }
        finally
        {
            // Whatever is still unknown now is answered for what it is.
            _volumes.SetAwaitingRestore([]);
        }
    }

    private async Task RebuildAsync(CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var kubelet = KubeletVolumes.Scan(_k8s.KubeletRoot, _k8s.DriverName);
        var journal = _journal.Load().ToDictionary(v => v.VolumeId, StringComparer.Ordinal);
        var journaled = journal.Keys.ToArray();
        await RebuildAsync(started, kubelet, journal, cancellationToken).ConfigureAwait(false);
        // Passwd files kept for the journal's fast path that no volume uses now. Not when the rebuild was
        // stopped midway: the next supervisor's fast path needs those of the volumes not restored yet.
        _volumes.RemoveStoredCredentialsOfUnknown(journaled);
    }

    private async Task RebuildAsync(long started, KubeletView kubelet, Dictionary<string, Volume> journal, CancellationToken cancellationToken)
    {
        var attempt = 0;
        var handles = new SortedSet<string>(StringComparer.Ordinal);
        handles.UnionWith(journal.Keys);
        handles.UnionWith(kubelet.Stagings.Select(s => s.VolumeHandle));
        handles.UnionWith(kubelet.Targets.Select(t => t.VolumeHandle));
        // Adopted at start (their s3fs outlived the previous supervisor): nothing to restore. One
        // adopted without its passwd file stays in, for its credentials.
        var served = handles.Where(_volumes.IsServed).ToArray();
        foreach (var id in served)
        {
            handles.Remove(id);
            journal.Remove(id);
            _volumes.RestoreSettled(id);
        }
        if (handles.Count == 0)
        {
            LogNothingToRestore();
            return;
        }

        // Journal-only volumes: kubelet has forgotten them (node reboot, pod gone). Drop, do not remount.
        foreach (var id in handles.ToArray())
        {
            if (!KubeletHas(kubelet, id) && journal.TryGetValue(id, out var record))
            {
                ClearDeadMounts(record.StagingPath, record.Targets.Select(t => t.TargetPath));
                journal.Remove(id);
                handles.Remove(id);
                LogDropped(id);
                _metrics.RebuildOutcome("dropped");
                _volumes.Report(id, VolumeState.Unmounting, "Dropped", "in the journal, but kubelet has no staging or pod directory for it any more");
            }
        }
        _volumes.SetPendingRecords(journal.Values);
        _volumes.SetAwaitingRestore(handles);
        await _volumes.SaveJournalAsync().ConfigureAwait(false);
        if (handles.Count == 0)
        {
            return;
        }
        // The journal's fast path runs while the API server is asked about the rest.
        var fromJournal = RestoreFromJournalAsync(handles, journal, kubelet, cancellationToken);
        var client = await ClientAsync(handles, () => ++attempt, cancellationToken).ConfigureAwait(false);
        if (client is null)
        {
            handles.ExceptWith(await fromJournal.ConfigureAwait(false));
            if (handles.Count == 0)
            {
                return;
            }
            LogNoApiServer(handles.Count);
            foreach (var id in handles)
            {
                _volumes.Report(id, VolumeState.Failed, "RestoreImpossible", "no Kubernetes API server is configured (Kubernetes:Kubeconfig or in-cluster), so there are no credentials to remount with");
            }
            return;
        }

        var clusterVolumes = new ClusterVolumes(client, _k8s.DriverName);
        var pending = new ConcurrentDictionary<string, string>(handles.ToDictionary(h => h, _ => string.Empty), StringComparer.Ordinal);
        var journalDone = false;
        // The look-ups ran beside the fast path; what it brought back is done (and is never reported as
        // waiting for the API server).
        async Task SettleJournalPathAsync()
        {
            if (!journalDone)
            {
                journalDone = true;
                foreach (var id in await fromJournal.ConfigureAwait(false))
                {
                    pending.TryRemove(id, out _);
                }
            }
        }
        while (!pending.IsEmpty)
        {
            cancellationToken.ThrowIfCancellationRequested();
            IReadOnlyDictionary<string, ClusterVolume> cluster;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(_k8s.RequestTimeout * 3);
                // Volumes kubelet keeps staged between pods have no pod to find them by: their PVs are looked up by handle.
                var staged = kubelet.Stagings.Select(s => s.VolumeHandle).Where(pending.ContainsKey).ToHashSet(StringComparer.Ordinal);
                cluster = await clusterVolumes.LoadAsync(_k8s.NodeName, staged, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                await SettleJournalPathAsync().ConfigureAwait(false);
                if (pending.IsEmpty)
                {
                    break;
                }
                var delay = Backoff(++attempt);
                LogApiUnreachable(e.Message, delay.TotalSeconds, pending.Count);
                foreach (var id in pending.Keys)
                {
                    _volumes.Report(id, VolumeState.Failed, "ApiServerUnreachable", $"waiting for the Kubernetes API server to restore: {e.Message}");
                }
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
                continue;
            }

            await SettleJournalPathAsync().ConfigureAwait(false);
            if (pending.IsEmpty)
            {
                break;
            }

            // kubelet may have unpublished or unstaged a pending volume meanwhile (our answer for an
            // unknown volume is "done"): look again before each round, never resurrect what it removed.
            if (attempt > 0)
            {
                kubelet = KubeletVolumes.Scan(_k8s.KubeletRoot, _k8s.DriverName);
            }
            await Parallel.ForEachAsync(pending.Keys.ToArray(), new ParallelOptions { MaxDegreeOfParallelism = _options.RestoreParallelism, CancellationToken = cancellationToken }, async (id, ct) =>
            {
                if (!KubeletHas(kubelet, id))
                {
                    pending.TryRemove(id, out _);
                    _volumes.RestoreSettled(id);
                    _volumes.ClearPendingRecord(id);
                    LogDropped(id);
                    _metrics.RebuildOutcome("dropped");
                    _volumes.Report(id, VolumeState.Unmounting, "Dropped", "kubelet no longer has a staging or pod directory for it");
                    return;
                }
                if (!cluster.TryGetValue(id, out var volume))
                {
                    pending.TryRemove(id, out _);
                    _volumes.RestoreSettled(id);
                    var message = "kubelet has directories for this volume, but no pod on this node uses a PersistentVolume with this handle; not restored (kubelet will unpublish and unstage it)";
                    LogUnexplained(id);
                    _metrics.RebuildOutcome("unexplained");
                    _volumes.Report(id, VolumeState.Failed, "Unexplained", message);
                    return;
                }
                try
                {
                    var (source, credentials) = await clusterVolumes.ResolveAsync(volume, ct).ConfigureAwait(false);
                    if (journal.TryGetValue(id, out var record) && record.Source is not null)
                    {
                        // Exactly what kubelet staged before the restart (mount flags, access mode included);
                        // the API server only supplies the credentials.
                        source = VolumeException.Checked(() => Common.VolumeSourceRules.Check(record.Source));
                    }
                    var staging = StagingPath(id, kubelet, record);
                    var targets = Targets(id, volume, kubelet, record).Where(t => Exists(t.TargetPath)).ToList();
                    foreach (var target in targets)
                    {
                        target.TargetPath = _paths.Check(target.TargetPath, "target_path");
                    }
                    var restored = await _volumes.RestoreAsync(id, staging, source, credentials, targets, ct).ConfigureAwait(false);
                    pending.TryRemove(id, out _);
                    if (restored.State != VolumeState.Ready)
                    {
                        LogRestoreFailed(id, restored.LastError);
                    }
                }
                catch (Exception e) when (e is not VolumeNotRestorableException && !ct.IsCancellationRequested)
                {
                    // An API error (403, 429, 5xx, a timeout), a bad path, a journal write: this volume waits for
                    // the next round; the others go on.
                    var message = e.Message;
                    if (!pending.TryGetValue(id, out var last) || last != message)
                    {
                        pending[id] = message;
                        LogNotRestorable(id, message, true);
                        _volumes.Report(id, VolumeState.Failed, "RestoreBlocked", message);
                    }
                }
                catch (VolumeNotRestorableException e)
                {
                    if (!e.Retry)
                    {
                        pending.TryRemove(id, out _);
                        _volumes.RestoreSettled(id);
                    }
                    if (pending.TryGetValue(id, out var last) && last == e.Message)
                    {
                        return;
                    }
                    if (e.Retry)
                    {
                        pending[id] = e.Message;
                    }
                    LogNotRestorable(id, e.Message, e.Retry);
                    _metrics.RebuildOutcome("blocked");
                    _volumes.Report(id, VolumeState.Failed, "RestoreBlocked", e.Message);
                    foreach (var pod in volume.Pods)
                    {
                        await _events.RecordAsync(new PodIdentity(pod.PodUid, pod.PodName, pod.PodNamespace), warning: true, "VolumeRestoreBlocked",
                            $"s3 volume {id} cannot be remounted after a supervisor restart: {e.Message}" + (e.Retry ? "; retrying" : string.Empty), ct).ConfigureAwait(false);
                    }
                }
            }).ConfigureAwait(false);

            if (!pending.IsEmpty)
            {
                await Task.Delay(Backoff(++attempt), _time, cancellationToken).ConfigureAwait(false);
            }
        }
        LogRebuilt(handles.Count, _time.GetElapsedTime(started).TotalMilliseconds);
    }

    /// <summary>
    /// The fast path: a volume the journal recorded exactly as kubelet staged it, whose kubelet
    /// directories are all still there and known to the journal, and whose passwd file survived the
    /// restart (or a public bucket), is remounted at once from the journal, in parallel, without a word
    /// from the API server. Returns the ids it brought back Ready; the rest (none of this, or a restore
    /// that failed: a rotated secret, say) go through the API server as before.
    /// </summary>
    private async Task<IReadOnlyCollection<string>> RestoreFromJournalAsync(IReadOnlyCollection<string> handles, Dictionary<string, Volume> journal, KubeletView kubelet, CancellationToken cancellationToken)
    {
        var candidates = new List<(string Id, Volume Record, List<PublishTarget> Targets)>();
        foreach (var id in handles)
        {
            if (journal.TryGetValue(id, out var record) && record.Source is not null
                && (record.Source.Options.PublicBucket || _volumes.HasStoredCredentials(id))
                && JournalTargets(id, kubelet, record) is { } targets)
            {
                candidates.Add((id, record, targets));
            }
        }
        if (candidates.Count == 0)
        {
            return [];
        }
        await Task.Yield();
        var began = _time.GetTimestamp();
        var restored = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(candidates, new ParallelOptions { MaxDegreeOfParallelism = _options.RestoreParallelism, CancellationToken = cancellationToken }, async (candidate, ct) =>
        {
            var (id, record, targets) = candidate;
            try
            {
                var source = VolumeException.Checked(() => Common.VolumeSourceRules.Check(record.Source));
                var staging = StagingPath(id, kubelet, record);
                foreach (var target in targets)
                {
                    target.TargetPath = _paths.Check(target.TargetPath, "target_path");
                }
                var volume = await _volumes.RestoreAsync(id, staging, source, credentials: null, targets, ct).ConfigureAwait(false);
                if (volume.State == VolumeState.Ready)
                {
                    restored.Add(id);
                    _metrics.RebuildOutcome("journal");
                }
                else
                {
                    LogJournalPathFailed(id, volume.LastError);
                }
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                LogJournalPathFailed(id, e.Message);
            }
        }).ConfigureAwait(false);
        LogJournalPath(restored.Count, candidates.Count, _time.GetElapsedTime(began).TotalMilliseconds);
        return restored;
    }

    /// <summary>The journal's targets of a volume, if it knows every target kubelet still has (null otherwise: the API server names the pod).</summary>
    private List<PublishTarget>? JournalTargets(string id, KubeletView kubelet, Volume record)
    {
        var result = new List<PublishTarget>();
        foreach (var target in kubelet.Targets.Where(t => t.VolumeHandle == id && Exists(t.TargetPath)))
        {
            var journaled = record.Targets.FirstOrDefault(t => t.TargetPath == target.TargetPath);
            if (journaled is null)
            {
                return null;
            }
            result.Add(journaled.Clone());
        }
        return result;
    }

    private string StagingPath(string id, KubeletView kubelet, Volume? record) => _paths.Check(
        kubelet.Stagings.FirstOrDefault(s => s.VolumeHandle == id)?.StagingPath
        ?? (record is { StagingPath.Length: > 0 } ? record.StagingPath : KubeletVolumes.StagingPathFor(_k8s.KubeletRoot, _k8s.DriverName, id)),
        "staging_path");

    private static List<PublishTarget> Targets(string id, ClusterVolume volume, KubeletView kubelet, Volume? record)
    {
        var result = new List<PublishTarget>();
        foreach (var target in kubelet.Targets.Where(t => t.VolumeHandle == id))
        {
            var pod = volume.Pods.FirstOrDefault(p => p.PodUid == target.PodUid);
            var journaled = record?.Targets.FirstOrDefault(t => t.TargetPath == target.TargetPath);
            result.Add(new PublishTarget
            {
                TargetPath = target.TargetPath,
                ReadOnly = journaled?.ReadOnly ?? (volume.ReadOnly || (pod?.ReadOnly ?? false)),
                Pod = pod is null ? journaled?.Pod ?? new PodRef { Uid = target.PodUid } : new PodRef { Uid = pod.PodUid, Name = pod.PodName, Namespace = pod.PodNamespace },
            });
        }
        return result;
    }

    /// <summary>
    /// The one rule for "kubelet still has this volume": a staging or pod directory of it that exists.
    /// Used for the journal-only drop and before every round alike.
    /// </summary>
    private bool KubeletHas(KubeletView kubelet, string id) =>
        kubelet.Stagings.Any(s => s.VolumeHandle == id && Exists(s.StagingPath))
        || kubelet.Targets.Any(t => t.VolumeHandle == id && Exists(t.TargetPath));

    /// <summary>
    /// A directory kubelet still has: it answers stat, or it is a dead FUSE mount (ENOTCONN). Never
    /// Directory.Exists: it is false on a dead FUSE mount, and a staging directory whose s3fs died with
    /// the old supervisor is exactly what the rebuild is for. (A plain stat hides this for about a second
    /// after the kill, from FUSE's attribute cache; _mounter.Stat forces a sync and answers ENOTCONN at once.)
    /// </summary>
    private bool Exists(string path) => _mounter.Stat(path) is 0 or Interop.Errno.ENOTCONN;

    /// <summary>
    /// The API server client, or null when none is configured. A client that cannot be built (a bad
    /// kubeconfig despite the check at start, an unreadable in-cluster token) is logged and reported on
    /// every pending volume, then tried again with backoff: a configuration problem never ends the rebuild.
    /// </summary>
    private async Task<IKubernetes?> ClientAsync(SortedSet<string> handles, Func<int> nextAttempt, CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                return _access.Client;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                var delay = Backoff(nextAttempt());
                LogClientFailed(e.Message, delay.TotalSeconds, handles.Count);
                foreach (var id in handles)
                {
                    _volumes.Report(id, VolumeState.Failed, "KubernetesClientFailed", $"cannot build the Kubernetes API client to restore with (Kubernetes:Kubeconfig or in-cluster): {e.Message}; retrying");
                }
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private void ClearDeadMounts(string stagingPath, IEnumerable<string> targets)
    {
        foreach (var path in targets.Append(stagingPath))
        {
            if (path.Length > 0 && _mounter.FindMount(path) is { IsFuse: true })
            {
                _mounter.UnmountAllLayers(path);
            }
        }
    }

    private TimeSpan Backoff(int attempt) => Mounts.Backoff.Delay(attempt, _k8s.RetryInitial, _k8s.RetryMax);

    [LoggerMessage(EventId = 1510, Level = LogLevel.Information, Message = "Rebuild: {Restored} of {Candidates} volume(s) remounted from the journal and their stored passwd files in {Milliseconds} ms")]
    private partial void LogJournalPath(int restored, int candidates, double milliseconds);

    [LoggerMessage(EventId = 1511, Level = LogLevel.Warning, Message = "Rebuild: volume {VolumeId} not remounted from the journal ({Reason}); the API server decides")]
    private partial void LogJournalPathFailed(string volumeId, string reason);

    [LoggerMessage(EventId = 1500, Level = LogLevel.Information, Message = "Rebuild: nothing to restore on this node")]
    private partial void LogNothingToRestore();

    [LoggerMessage(EventId = 1501, Level = LogLevel.Information, Message = "Rebuild: volume {VolumeId} dropped (journal only; kubelet no longer has it)")]
    private partial void LogDropped(string volumeId);

    [LoggerMessage(EventId = 1502, Level = LogLevel.Warning, Message = "Rebuild: API server unreachable ({Error}); retry in {Seconds} s for {Count} volume(s)")]
    private partial void LogApiUnreachable(string error, double seconds, int count);

    [LoggerMessage(EventId = 1503, Level = LogLevel.Warning, Message = "Rebuild: volume {VolumeId} is known to kubelet but not explained by the API server; not restored")]
    private partial void LogUnexplained(string volumeId);

    [LoggerMessage(EventId = 1504, Level = LogLevel.Warning, Message = "Rebuild: volume {VolumeId} not restorable: {Reason} (retry: {Retry})")]
    private partial void LogNotRestorable(string volumeId, string reason, bool retry);

    [LoggerMessage(EventId = 1505, Level = LogLevel.Warning, Message = "Rebuild: volume {VolumeId} restore failed, healing goes on with backoff: {Reason}")]
    private partial void LogRestoreFailed(string volumeId, string reason);

    [LoggerMessage(EventId = 1506, Level = LogLevel.Information, Message = "Rebuild: {Count} volume(s) handled in {Milliseconds} ms")]
    private partial void LogRebuilt(int count, double milliseconds);

    [LoggerMessage(EventId = 1508, Level = LogLevel.Error, Message = "Rebuild stopped by an unexpected error; volumes not yet restored wait for kubelet or a restart: {Error}")]
    private partial void LogRebuildFailed(string error);

    [LoggerMessage(EventId = 1507, Level = LogLevel.Error, Message = "Rebuild: {Count} volume(s) need restoring but no Kubernetes API server is configured")]
    private partial void LogNoApiServer(int count);

    [LoggerMessage(EventId = 1509, Level = LogLevel.Error, Message = "Rebuild: cannot build the Kubernetes API client ({Error}); retry in {Seconds} s for {Count} volume(s)")]
    private partial void LogClientFailed(string error, double seconds, int count);
}

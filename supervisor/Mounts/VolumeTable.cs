using S3Supervisor.Api.V1;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// The volumes this supervisor knows, by id, and their locks. A record is created by the first
/// stage or restore and forgotten when it is unstaged or its first stage fails; a call that waited
/// for a record's lock meanwhile starts over on the live one.
/// </summary>
internal sealed class VolumeTable(TimeProvider time)
{
    private readonly Dictionary<string, ManagedVolume> _volumes = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>Snapshots of the staged volumes, ordered by id.</summary>
    public IReadOnlyList<Volume> Staged()
    {
        lock (_lock)
        {
            return _volumes.Values.Where(v => v.Staged).OrderBy(v => v.VolumeId, StringComparer.Ordinal).Select(v => v.Snapshot()).ToArray();
        }
    }

    /// <summary>The journal's records of the staged volumes: each with the s3fs serving it, if one runs.</summary>
    public IReadOnlyList<JournalEntry> JournalEntries()
    {
        lock (_lock)
        {
            return _volumes.Values.Where(v => v.Staged).OrderBy(v => v.VolumeId, StringComparer.Ordinal)
                .Select(v => v.Child is { Exited.IsCompleted: false } child
                    ? new JournalEntry(v.Snapshot(), child.Record, v.Device)
                    : new JournalEntry(v.Snapshot()))
                .ToArray();
        }
    }

    public ManagedVolume[] All() => Where(_ => true);

    public ManagedVolume[] Where(Func<ManagedVolume, bool> predicate)
    {
        lock (_lock)
        {
            return _volumes.Values.Where(predicate).ToArray();
        }
    }

    public ManagedVolume? Find(string volumeId)
    {
        lock (_lock)
        {
            return _volumes.GetValueOrDefault(volumeId);
        }
    }

    public void Forget(ManagedVolume volume)
    {
        lock (_lock)
        {
            if (_volumes.TryGetValue(volume.VolumeId, out var current) && current == volume)
            {
                _volumes.Remove(volume.VolumeId);
            }
        }
    }

    /// <summary>
    /// Gets (or creates) the record and takes its lock, making sure the record is still the live one:
    /// a call that waited for the lock while a failed stage forgot the record starts over.
    /// </summary>
    public async Task<(ManagedVolume Volume, bool Created, LockHolder Held)> AcquireAsync(string volumeId, bool wait, CancellationToken cancellationToken)
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

    /// <summary>Takes a volume's lock: waits for it, or (an API call) fails at once with Aborted when another call holds it.</summary>
    public static async Task<LockHolder> LockAsync(ManagedVolume volume, bool wait, CancellationToken cancellationToken)
    {
        if (wait)
        {
            await volume.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        else if (!await volume.Lock.WaitAsync(TimeSpan.Zero, cancellationToken).ConfigureAwait(false))
        {
            throw new VolumeException(VolumeErrorKind.Aborted, "volume_id", $"an operation on {volume.VolumeId} is already in progress");
        }
        return new LockHolder(volume.Lock);
    }

    /// <summary>The known volume a mounted path belongs to: its staging path, one of its targets, or its live connection.</summary>
    public ManagedVolume? OwnerOf(string path, MountEntry mount, ManagedVolume? except = null)
    {
        lock (_lock)
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

    private (ManagedVolume Volume, bool Created) GetOrAdd(string volumeId)
    {
        lock (_lock)
        {
            if (_volumes.TryGetValue(volumeId, out var existing))
            {
                return (existing, false);
            }
            var volume = new ManagedVolume(volumeId) { StateSince = time.GetUtcNow() };
            _volumes[volumeId] = volume;
            return (volume, true);
        }
    }

    internal readonly struct LockHolder(SemaphoreSlim semaphore) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            semaphore.Release();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>
/// After a supervisor restart, the ids the rebuild will still bring back. NOT_FOUND is final for
/// kubelet: while the rebuild has not yet looked at its sources, or still works on this very volume
/// (kubelet's directories or the journal know it), an unknown id is "not yet", not "never".
/// </summary>
internal sealed class RestoreWaitList
{
    private readonly HashSet<string> _awaiting = new(StringComparer.Ordinal);
    private bool _scanPending;

    /// <summary>The error for a volume that is not staged: UNAVAILABLE (retry, it is coming back) or NOT_FOUND.</summary>
    public VolumeException NotFound(string volumeId)
    {
        lock (_awaiting)
        {
            if (_scanPending || _awaiting.Contains(volumeId))
            {
                return new VolumeException(VolumeErrorKind.Unavailable, "volume_id", $"{volumeId} is being restored after a supervisor restart; retry shortly");
            }
        }
        return new VolumeException(VolumeErrorKind.NotFound, "volume_id", $"{volumeId} is not staged on this node");
    }

    public void Expect()
    {
        lock (_awaiting)
        {
            _scanPending = true;
        }
    }

    public void Set(IEnumerable<string> volumeIds)
    {
        lock (_awaiting)
        {
            _awaiting.Clear();
            _awaiting.UnionWith(volumeIds);
            _scanPending = false;
        }
    }

    public void Settled(string volumeId)
    {
        lock (_awaiting)
        {
            _awaiting.Remove(volumeId);
        }
    }
}

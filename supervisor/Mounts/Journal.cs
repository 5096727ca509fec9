using Google.Protobuf;
using S3Supervisor.Api.V1;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>One journal record: the volume, and the s3fs serving it with the connection it mounted (none after a drain).</summary>
public sealed record JournalEntry(Volume Volume, ChildRecord? Child = null, string Device = "");

/// <summary>
/// The non-secret record of every volume this node serves: id, staging path, source and publish
/// targets. Rewritten whole on each change with write, fsync, rename and a directory fsync, so a
/// crash at any moment leaves either the old or the new journal, never a torn one.
/// </summary>
public sealed class Journal
{
    /// <summary>The format this supervisor writes; it reads this one and the unversioned one before it.</summary>
    public const uint CurrentVersion = 1;

    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithIndentation());
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private long _requested;
    private long _written;
    private readonly Dictionary<string, Volume> _pendingRecords = new(StringComparer.Ordinal);

    public Journal(string directory)
    {
        Directory = directory;
    }

    public string Directory { get; }

    public string FilePath => Path.Combine(Directory, "journal.json");

    public IReadOnlyList<Volume> Load() => LoadEntries().Select(e => e.Volume).ToArray();

    /// <summary>The records with the children that served them, for adoption after a restart.</summary>
    public IReadOnlyList<JournalEntry> LoadEntries()
    {
        if (!File.Exists(FilePath))
        {
            return [];
        }
        return ParseEntries(File.ReadAllText(FilePath));
    }

    /// <summary>
    /// The records in a journal's text: a <see cref="JournalFile"/>, or a file written before the
    /// journal had a message of its own (a <see cref="ListVolumesResponse"/>), read as it was.
    /// </summary>
    internal static IReadOnlyList<Volume> Parse(string text) => ParseEntries(text).Select(e => e.Volume).ToArray();

    internal static IReadOnlyList<JournalEntry> ParseEntries(string text)
    {
        if (text.Length == 0)
        {
            return [];
        }
        var file = Parser.Parse<JournalFile>(text);
        if (file.Version == 0)
        {
            return Parser.Parse<ListVolumesResponse>(text).Volumes.Select(v => new JournalEntry(v)).ToArray();
        }
        // A newer format (a rolled-back image reading its successor's file) is read for what this
        // one knows: its volumes must still be restored.
        return file.Volumes.Select(ToEntry).ToArray();
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

    /// <summary>
    /// Writes the records of the volumes <paramref name="snapshot"/> returns, and the pending records
    /// of volumes it does not hold (runtime fields such as pid and state are dropped). Takes the snapshot
    /// and writes it under one lock, so that a later snapshot is never overwritten by an earlier one
    /// when several changes save at once. Saves that wait meanwhile are committed as a group: a write
    /// whose snapshot was taken after a save was asked for serves that save too (200 restores at once
    /// would otherwise queue 200 full rewrites, each with two fsyncs). So one journal serves one table:
    /// every caller passes a snapshot of the same volumes.
    /// </summary>
    public Task SaveAsync(Func<IEnumerable<Volume>> snapshot, CancellationToken cancellationToken = default) =>
        SaveEntriesAsync(() => snapshot().Select(v => new JournalEntry(v)), cancellationToken);

    /// <inheritdoc cref="SaveAsync(Func{IEnumerable{Volume}}, CancellationToken)"/>
    public async Task SaveEntriesAsync(Func<IEnumerable<JournalEntry>> snapshot, CancellationToken cancellationToken = default)
    {
        // The caller's change is made before it asks: a snapshot taken after this count is read has it.
        var mine = Interlocked.Increment(ref _requested);
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Interlocked.Read(ref _written) >= mine)
            {
                return;
            }
            var covered = Interlocked.Read(ref _requested);
            await WriteAsync(Format(WithPending(snapshot()))).ConfigureAwait(false);
            Interlocked.Exchange(ref _written, covered);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private JournalEntry[] WithPending(IEnumerable<JournalEntry> known)
    {
        var held = known.ToArray();
        lock (_pendingRecords)
        {
            return held.Concat(_pendingRecords.Values.Where(p => held.All(k => k.Volume.VolumeId != p.VolumeId)).Select(p => new JournalEntry(p))).ToArray();
        }
    }

    internal static string Format(IEnumerable<Volume> volumes) => Format(volumes.Select(v => new JournalEntry(v)));

    internal static string Format(IEnumerable<JournalEntry> entries)
    {
        var content = new JournalFile { Version = CurrentVersion };
        content.Volumes.AddRange(entries.Select(FromEntry));
        return Formatter.Format(content);
    }

    private static JournalVolume FromEntry(JournalEntry entry)
    {
        var volume = entry.Volume;
        var record = new JournalVolume { VolumeId = volume.VolumeId, StagingPath = volume.StagingPath, Source = volume.Source, Device = entry.Device };
        if (entry.Child is { } child)
        {
            record.Child = new JournalChild
            {
                Pid = child.Pid,
                StartTime = child.StartTime,
                BootId = child.BootId,
                Cgroup = child.Cgroup,
                LogPath = child.LogPath,
            };
            record.Child.Argv.AddRange(child.Argv);
        }
        record.Targets.AddRange(volume.Targets.Select(t => new JournalTarget
        {
            TargetPath = t.TargetPath,
            ReadOnly = t.ReadOnly,
            PodUid = t.Pod?.Uid ?? string.Empty,
            PodName = t.Pod?.Name ?? string.Empty,
            PodNamespace = t.Pod?.Namespace ?? string.Empty,
        }));
        return record;
    }

    private static JournalEntry ToEntry(JournalVolume record)
    {
        var child = record.Child is { Pid: > 0 } c ? new ChildRecord(c.Pid, c.StartTime, c.BootId, c.Argv.ToArray(), c.Cgroup, c.LogPath) : null;
        return new JournalEntry(ToVolume(record), child, record.Device);
    }

    private static Volume ToVolume(JournalVolume record)
    {
        var volume = new Volume { VolumeId = record.VolumeId, StagingPath = record.StagingPath, Source = record.Source };
        volume.Targets.AddRange(record.Targets.Select(t => new PublishTarget
        {
            TargetPath = t.TargetPath,
            ReadOnly = t.ReadOnly,
            Pod = new PodRef { Uid = t.PodUid, Name = t.PodName, Namespace = t.PodNamespace },
        }));
        return volume;
    }

    private async Task WriteAsync(string text)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var temp = FilePath + ".tmp";
        await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 4096, FileOptions.None))
        {
            await stream.WriteAsync(System.Text.Encoding.UTF8.GetBytes(text), CancellationToken.None).ConfigureAwait(false);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, FilePath, overwrite: true);
        Interop.Libc.FsyncDirectory(Directory);
    }
}

using Google.Protobuf.WellKnownTypes;
using S3Supervisor.Api.V1;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// The supervisor's live record of one volume. Mutable fields are changed only while
/// <see cref="Lock"/> is held; <see cref="Snapshot"/> may be taken at any time.
/// </summary>
internal sealed class ManagedVolume
{
    public ManagedVolume(string volumeId)
    {
        VolumeId = volumeId;
    }

    public string VolumeId { get; }

    /// <summary>Serialises every operation on this volume: API calls, healing, unstage.</summary>
    public SemaphoreSlim Lock { get; } = new(1, 1);

    public string StagingPath { get; set; } = string.Empty;

    public VolumeSource Source { get; set; } = new();

    public VolumeState State { get; set; } = VolumeState.Mounting;

    public DateTimeOffset StateSince { get; set; }

    public IS3fsProcess? Child { get; set; }

    public int RestartCount { get; set; }

    /// <summary>The cgroup's OOM-kill count when the child started: a higher count at its exit means the kernel killed it for its memory limit.</summary>
    public long OomKillsSeen { get; set; }

    public string LastError { get; set; } = string.Empty;

    /// <summary>"major:minor" of the live FUSE connection.</summary>
    public string Device { get; set; } = string.Empty;

    /// <summary>Publish targets by canonical path.</summary>
    public Dictionary<string, PublishTarget> Targets { get; } = new(StringComparer.Ordinal);

    /// <summary>Adopted after a restart without its passwd file (the secrets tmpfs did not survive): the rebuild fetches the credentials again.</summary>
    public bool CredentialsMissing { get; set; }

    /// <summary>True once the volume is fully staged (a failed first stage never becomes known).</summary>
    public bool Staged { get; set; }

    /// <summary>Set while unstaging or shutting down: a child exit is then expected, not a crash.</summary>
    public bool Stopping { get; set; }

    /// <summary>Consecutive failed heal attempts (drives the backoff); reset on success.</summary>
    public int Failures { get; set; }

    /// <summary>A heal is scheduled or running; further triggers are folded into it.</summary>
    public bool HealPending { get; set; }

    /// <summary>Cancels a scheduled backoff wait when the volume goes away.</summary>
    public CancellationTokenSource Lifetime { get; } = new();

    public Volume Snapshot()
    {
        var volume = new Volume
        {
            VolumeId = VolumeId,
            StagingPath = StagingPath,
            Source = Source.Clone(),
            State = State,
            Pid = Child is { Exited.IsCompleted: false } child ? child.Pid : 0,
            RestartCount = RestartCount,
            LastError = LastError,
            StateSince = Timestamp.FromDateTimeOffset(StateSince),
            Device = Device,
            Cgroup = Child?.Record.Cgroup ?? string.Empty,
            Adopted = Child?.Adopted ?? false,
        };
        lock (Targets)
        {
            volume.Targets.AddRange(Targets.Values.OrderBy(t => t.TargetPath, StringComparer.Ordinal).Select(t => t.Clone()));
        }
        return volume;
    }
}

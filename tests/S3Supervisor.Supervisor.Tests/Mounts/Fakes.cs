using System.Globalization;
using S3Supervisor.Supervisor.Interop;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Tests.Mounts;

/// <summary>A mount table in memory: an s3fs "start" mounts a fresh FUSE device at its mountpoint.</summary>
internal sealed class FakeMounter : IMounter
{
    private readonly Dictionary<string, Stack<MountEntry>> _mounts = new(StringComparer.Ordinal);
    private int _nextMinor = 100;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public HashSet<string> Dead { get; } = new(StringComparer.Ordinal);

    public List<string> Log { get; } = [];

    public MountEntry? FindMount(string path)
    {
        lock (_mounts)
        {
            return _mounts.TryGetValue(path, out var stack) && stack.Count > 0 ? stack.Peek() : null;
        }
    }

    public IReadOnlyList<MountEntry> ReadMounts()
    {
        lock (_mounts)
        {
            return _mounts.Values.SelectMany(stack => stack.Reverse()).ToArray();
        }
    }

    public Task NextMountTableChange()
    {
        lock (_mounts)
        {
            return _changed.Task;
        }
    }

    public int Stat(string path)
    {
        lock (_mounts)
        {
            var mount = FindMount(path);
            return mount is not null && Dead.Contains(mount.Device) ? Errno.ENOTCONN : 0;
        }
    }

    public void MountFuse(string path)
    {
        lock (_mounts)
        {
            var entry = new MountEntry(1, 1, 0, _nextMinor++, "/", path, ["rw"], [], "fuse.s3fs", "s3fs", "rw");
            Push(path, entry);
            Log.Add($"fuse {path} {entry.Device}");
        }
    }

    public void Bind(string source, string target, bool readOnly, string? expectedSourceDevice = null)
    {
        lock (_mounts)
        {
            var src = FindMount(source) ?? throw new InteropException("mount", Errno.EINVAL, source);
            if (expectedSourceDevice is not null && src.Device != expectedSourceDevice)
            {
                throw new MountSourceException(source, $"is not the mount {expectedSourceDevice} any more");
            }
            Push(target, src with { MountPoint = target, Options = [readOnly ? "ro" : "rw"] });
            Log.Add($"bind {source} {target} {(readOnly ? "ro" : "rw")}");
        }
    }

    public bool RemoveDirectory(string path) => FindMount(path) is null;

    public bool UnmountLazy(string path)
    {
        lock (_mounts)
        {
            if (_mounts.TryGetValue(path, out var stack) && stack.Count > 0)
            {
                stack.Pop();
                Log.Add($"umount {path}");
                Changed();
                return true;
            }
            return false;
        }
    }

    public void CreateDirectory(string path)
    {
    }

    /// <summary>What the kernel does when the FUSE daemon dies: the connection is dead, the mounts stay.</summary>
    public void KillConnection(string path)
    {
        lock (_mounts)
        {
            Dead.Add(FindMount(path)!.Device);
        }
    }

    private void Push(string path, MountEntry entry)
    {
        if (!_mounts.TryGetValue(path, out var stack))
        {
            _mounts[path] = stack = new Stack<MountEntry>();
        }
        stack.Push(entry);
        Changed();
    }

    /// <summary>What the kernel's POLLPRI on mountinfo tells: the table changed (called under the lock).</summary>
    private void Changed()
    {
        var changed = _changed;
        _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }
}

internal sealed class FakeLauncher : IS3fsLauncher
{
    private readonly FakeMounter _mounter;
    private int _nextPid = 1000;

    public FakeLauncher(FakeMounter mounter)
    {
        _mounter = mounter;
    }

    public List<FakeProcess> Started { get; } = [];

    /// <summary>How many upcoming starts fail (exit 1 at once with an error).</summary>
    public int FailNext { get; set; }

    /// <summary>What each Adopt call answers, by pid (absent: not adoptable, "exited").</summary>
    public Dictionary<int, FakeProcess> Adoptable { get; } = [];

    public IS3fsProcess? Adopt(ChildRecord record, out string reason)
    {
        reason = Adoptable.ContainsKey(record.Pid) ? string.Empty : "the process has exited";
        return Adoptable.GetValueOrDefault(record.Pid);
    }

    public List<string> Released { get; } = [];

    public void Release(string cgroupName, string logPath) => Released.Add(cgroupName);

    public long OomKills(string cgroup) => 0;

    public IS3fsProcess Start(S3fsLaunch launch)
    {
        var arguments = launch.Arguments;
        var process = new FakeProcess(_nextPid++, arguments);
        Started.Add(process);
        if (FailNext > 0)
        {
            FailNext--;
            process.Exit(1, "s3fs: could not connect");
        }
        else
        {
            _mounter.MountFuse(arguments[1]);
        }
        return process;
    }
}

internal sealed class FakeProcess : IS3fsProcess
{
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public FakeProcess(int pid, IReadOnlyList<string> arguments)
    {
        Pid = pid;
        Arguments = arguments;
    }

    public int Pid { get; }

    public IReadOnlyList<string> Arguments { get; }

    public ChildRecord Record => new(Pid, 1, "boot", ["s3fs", .. Arguments], string.Empty, string.Empty);

    public bool Adopted => false;

    public void BoundLog()
    {
    }

    public void MountAnswered()
    {
    }

    public Task<int> Exited => _exited.Task;

    public string StderrTail { get; private set; } = string.Empty;

    public bool Terminated { get; private set; }

    public void Exit(int code, string stderr = "")
    {
        StderrTail = stderr;
        _exited.TrySetResult(code);
    }

    public Task StopAsync(TimeSpan grace)
    {
        Terminated = true;
        Exit(0);
        return Task.CompletedTask;
    }

    public void Kill() => Exit(137);

    public void Dispose()
    {
    }

    public override string ToString() => Pid.ToString(CultureInfo.InvariantCulture);
}

/// <summary>S3 lets every volume in: the unit tests are about the volume manager, not about S3.</summary>
internal sealed class AllowingAccessCheck : IS3AccessCheck
{
    public Task CheckAsync(S3Supervisor.Api.V1.VolumeSource source, S3Supervisor.Api.V1.Credentials? credentials, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// A <see cref="Microsoft.Extensions.Time.Testing.FakeTimeProvider"/> that also records the due time
/// of every timer armed through it, so that a test can wait until the code under test really waits
/// (on its backoff, say) before it advances the clock, and then assert what may not have happened
/// yet without sleeping: a timer that is not due cannot fire, whatever the machine's load.
/// </summary>
internal sealed class TimerRecordingTimeProvider : TimeProvider
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<TimeSpan> _armed = new();

    public Microsoft.Extensions.Time.Testing.FakeTimeProvider Fake { get; } = new();

    /// <summary>Every due time a timer was created or changed with, oldest first.</summary>
    public IReadOnlyCollection<TimeSpan> Armed => _armed;

    public override DateTimeOffset GetUtcNow() => Fake.GetUtcNow();

    public override long GetTimestamp() => Fake.GetTimestamp();

    public override long TimestampFrequency => Fake.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => Fake.LocalTimeZone;

    public void Advance(TimeSpan delta) => Fake.Advance(delta);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new RecordingTimer(Fake.CreateTimer(callback, state, dueTime, period), _armed);
        // Recorded after the timer exists: whoever sees the record may advance the clock past it.
        timer.Record(dueTime);
        return timer;
    }

    private sealed class RecordingTimer(ITimer inner, System.Collections.Concurrent.ConcurrentQueue<TimeSpan> armed) : ITimer
    {
        public void Record(TimeSpan dueTime)
        {
            if (dueTime != Timeout.InfiniteTimeSpan)
            {
                armed.Enqueue(dueTime);
            }
        }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            var changed = inner.Change(dueTime, period);
            Record(dueTime);
            return changed;
        }

        public void Dispose() => inner.Dispose();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}

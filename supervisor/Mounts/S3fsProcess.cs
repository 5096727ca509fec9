using System.Globalization;
using Microsoft.Extensions.Logging;
using S3Supervisor.Supervisor.Interop;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>One running s3fs: a child this supervisor started, or one a predecessor started and this one adopted.</summary>
public interface IS3fsProcess : IDisposable
{
    int Pid { get; }

    /// <summary>What identifies this very process after a restart (pid, start time, argv, cgroup, log); the journal keeps it.</summary>
    ChildRecord Record { get; }

    /// <summary>Started by a predecessor: its exit status goes to its new parent, so <see cref="Exited"/> completes with -1.</summary>
    bool Adopted { get; }

    /// <summary>Completes with the exit code (128 + signal when killed, -1 when unknown) when the process exits.</summary>
    Task<int> Exited { get; }

    /// <summary>The last lines this process wrote to its log (bounded), for error messages.</summary>
    string StderrTail { get; }

    /// <summary>SIGTERM (s3fs flushes and unmounts), then SIGKILL after the grace period.</summary>
    Task StopAsync(TimeSpan grace);

    void Kill();

    /// <summary>Keeps the log file under its size limit.</summary>
    void BoundLog();

    /// <summary>
    /// The mount answers: s3fs has parsed its options, and rewritten its own argv while doing so (the
    /// "bucket:/prefix" argument is cut at the colon). <see cref="Record"/> takes the command line
    /// /proc shows now, the one a restarted supervisor will see.
    /// </summary>
    void MountAnswered();
}

/// <summary>What the journal keeps of a running s3fs, so that the next supervisor can tell it is still the same process.</summary>
/// <param name="StartTime">Field 22 of /proc/&lt;pid&gt;/stat (clock ticks after boot): with the boot id, a reused pid never matches.</param>
public sealed record ChildRecord(int Pid, ulong StartTime, string BootId, IReadOnlyList<string> Argv, string Cgroup, string LogPath);

/// <summary>How to start one s3fs: its arguments, its log file and the cgroup it is placed in right after start.</summary>
public sealed record S3fsLaunch(IReadOnlyList<string> Arguments, string LogPath, string CgroupName, long? MemoryLimitBytes = null);

public interface IS3fsLauncher
{
    IS3fsProcess Start(S3fsLaunch launch);

    /// <summary>
    /// The process a predecessor started, if it is still the recorded one (pid, start time, boot): else
    /// null, with the reason. When it is, but its command line or cgroup is not the recorded one, it is
    /// returned with that <paramref name="reason"/>: the caller stops it rather than adopts it.
    /// </summary>
    IS3fsProcess? Adopt(ChildRecord record, out string reason);

    /// <summary>A volume is gone for good (unstaged, drained): its cgroup and log file go too.</summary>
    void Release(string cgroupName, string logPath);

    /// <summary>How many times the kernel OOM-killed a process of this cgroup ("" : not placed, 0).</summary>
    long OomKills(string cgroup);
}

/// <summary>
/// Where a child goes right after start, so that a container runtime killing every process of the
/// supervisor's container leaves it alone; no placement keeps it where the supervisor runs.
/// </summary>
public interface IChildPlacement
{
    /// <summary>Moves <paramref name="pid"/> into the volume's cgroup (limits applied) and returns that cgroup's name, "" when not placed.</summary>
    string Place(string name, int pid, long? memoryLimitBytes);

    bool Contains(string cgroup, int pid);

    /// <summary>How many times the kernel OOM-killed a process of this cgroup.</summary>
    long OomKills(string cgroup);

    void Remove(string cgroup);
}

/// <summary>Leaves children where the supervisor runs (no cgroup tree available or configured).</summary>
public sealed class NoChildPlacement : IChildPlacement
{
    public string Place(string name, int pid, long? memoryLimitBytes) => string.Empty;

    public bool Contains(string cgroup, int pid) => cgroup.Length == 0;

    public long OomKills(string cgroup) => 0;

    public void Remove(string cgroup)
    {
    }
}

/// <summary>
/// Starts s3fs so that it can outlive this supervisor: posix_spawn in a session of its own, output
/// appended to a per-volume log file (never a pipe), placed in its own cgroup, watched through a
/// pidfd. The child's environment is rebuilt from nothing (PATH only), so no variable of the
/// supervisor's, secret or not, reaches it. Descriptors do not leak: Program marks every inherited
/// one close-on-exec at start.
/// </summary>
public sealed partial class S3fsLauncher : IS3fsLauncher, IDisposable
{
    private static readonly string[] Environment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];
    private readonly string _s3fsPath;
    private readonly int _oomScoreAdj;
    private readonly IChildPlacement _placement;
    private readonly long _logMaxBytes;
    private readonly ILogger<S3fsLauncher> _logger;
    private readonly Libc.ReadinessWatcher _watcher = new();

    public S3fsLauncher(string s3fsPath, int oomScoreAdj, ILogger<S3fsLauncher> logger, IChildPlacement? placement = null, long logMaxBytes = 1 << 20)
    {
        _s3fsPath = s3fsPath;
        _oomScoreAdj = oomScoreAdj;
        _placement = placement ?? new NoChildPlacement();
        _logMaxBytes = logMaxBytes;
        _logger = logger;
    }

    public IS3fsProcess Start(S3fsLaunch launch)
    {
        var log = ChildLog.Open(launch.LogPath, _logMaxBytes);
        var pid = Libc.Spawn(_s3fsPath, launch.Arguments, Environment, launch.LogPath);
        FileDescriptorHandle? pidfd = null;
        try
        {
            // Our own child cannot be reaped before we wait for it, so this pidfd is surely this process.
            pidfd = Libc.PidfdOpen(pid) ?? throw new InvalidOperationException($"s3fs pid {pid} vanished before it could be watched");
            var cgroup = string.Empty;
            try
            {
                cgroup = _placement.Place(launch.CgroupName, pid, launch.MemoryLimitBytes);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                // The mount works without it; it only would not survive a runtime killing our container.
                LogPlacementFailed(pid, launch.CgroupName, e.Message);
            }
            SetOomScore(pid);
            var record = new ChildRecord(pid, ProcStat.StartTime(pid) ?? 0, ProcStat.BootId(), [_s3fsPath, .. launch.Arguments], cgroup, launch.LogPath);
            return new S3fsProcess(record, pidfd, log, adopted: false, _watcher);
        }
        catch
        {
            // Nothing half-made: a child nobody watches would run, unreaped, for ever.
            Libc.Kill(pid, 9);
            if (pidfd is not null)
            {
                WaitExited(pidfd);
                pidfd.Dispose();
            }
            throw;
        }
    }

    public IS3fsProcess? Adopt(ChildRecord record, out string reason)
    {
        if (record.Pid <= 0 || record.BootId != ProcStat.BootId())
        {
            reason = "the node rebooted since";
            return null;
        }
        // The pidfd first: once it pins the process, a start time that still matches means the pid was
        // never reused, so everything checked after it is about this very process.
        var pidfd = Libc.PidfdOpen(record.Pid);
        var start = pidfd is null ? null : ProcStat.StartTime(record.Pid);
        if (start is null || start != record.StartTime)
        {
            pidfd?.Dispose();
            reason = start is null ? "the process has exited" : $"pid {record.Pid} is another process now";
            return null;
        }
        var argv = ProcStat.Argv(record.Pid);
        reason = !argv.SequenceEqual(record.Argv) ? $"pid {record.Pid} runs another command line ({string.Join(' ', argv.Take(3))} ...)"
            : !_placement.Contains(record.Cgroup, record.Pid) ? $"pid {record.Pid} is no longer in its cgroup {record.Cgroup}"
            : string.Empty;
        return new S3fsProcess(record, pidfd!, ChildLog.Open(record.LogPath, _logMaxBytes, fromEnd: true), adopted: true, _watcher);
    }

    /// <summary>Waits (bounded) until a just-killed child has exited, and reaps it.</summary>
    private static void WaitExited(FileDescriptorHandle pidfd)
    {
        for (var i = 0; i < 200 && Libc.ReapPidfd(pidfd) is null; i++)
        {
            Thread.Sleep(5);
        }
    }

    public void Release(string cgroupName, string logPath)
    {
        try
        {
            _placement.Remove(cgroupName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InteropException)
        {
            LogReleaseFailed(cgroupName, e.Message);
        }
        try
        {
            File.Delete(logPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogReleaseFailed(logPath, e.Message);
        }
    }

    public long OomKills(string cgroup)
    {
        try
        {
            return cgroup.Length == 0 ? 0 : _placement.OomKills(cgroup);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InteropException)
        {
            return 0;
        }
    }

    public void Dispose() => _watcher.Dispose();

    private void SetOomScore(int pid)
    {
        try
        {
            File.WriteAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/oom_score_adj", _oomScoreAdj.ToString(CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogOomScoreFailed(pid, e.Message);
        }
    }

    [LoggerMessage(EventId = 1100, Level = LogLevel.Warning, Message = "Could not set oom_score_adj of s3fs pid {Pid}: {Reason}")]
    private partial void LogOomScoreFailed(int pid, string reason);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Warning, Message = "Could not remove {What}: {Reason}")]
    private partial void LogReleaseFailed(string what, string reason);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Warning, Message = "Could not place s3fs pid {Pid} in its cgroup {Cgroup}: {Reason}; it stays in the supervisor's cgroup and would die with the supervisor's container")]
    private partial void LogPlacementFailed(int pid, string cgroup, string reason);

    private sealed class S3fsProcess : IS3fsProcess
    {
        private readonly FileDescriptorHandle _pidfd;
        private readonly ChildLog _log;
        private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public S3fsProcess(ChildRecord record, FileDescriptorHandle pidfd, ChildLog log, bool adopted, Libc.ReadinessWatcher watcher)
        {
            Record = record;
            _pidfd = pidfd;
            _log = log;
            Adopted = adopted;
            watcher.Watch(pidfd, () => _exited.TrySetResult(Reap()));
        }

        public int Pid => Record.Pid;

        public ChildRecord Record { get; private set; }

        public bool Adopted { get; }

        public Task<int> Exited => _exited.Task;

        public string StderrTail => _log.Tail();

        public async Task StopAsync(TimeSpan grace)
        {
            if (Exited.IsCompleted)
            {
                return;
            }
            Signal(15);
            if (await Task.WhenAny(Exited, Task.Delay(grace)).ConfigureAwait(false) != Exited)
            {
                Kill();
                await Exited.ConfigureAwait(false);
            }
        }

        public void Kill()
        {
            if (!Exited.IsCompleted)
            {
                Signal(9);
            }
        }

        public void BoundLog() => _log.Bound();

        public void MountAnswered()
        {
            if (!Exited.IsCompleted && ProcStat.Argv(Record.Pid) is { Count: > 0 } argv)
            {
                Record = Record with { Argv = argv };
            }
        }

        public void Dispose() => _pidfd.Dispose();

        private void Signal(int signal)
        {
            try
            {
                Libc.PidfdSignal(_pidfd, signal);
            }
            catch (ObjectDisposedException)
            {
            }
        }

        private int Reap()
        {
            try
            {
                return Libc.ReapPidfd(_pidfd) ?? -1;
            }
            catch (Exception e) when (e is InteropException or ObjectDisposedException)
            {
                return -1;
            }
        }
    }
}

/// <summary>What /proc says about a process, for recognising a child after a restart.</summary>
internal static class ProcStat
{
    private static readonly Lazy<string> Boot = new(() => File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim());

    public static string BootId() => Boot.Value;

    /// <summary>starttime, the 22nd field of /proc/&lt;pid&gt;/stat; null when the process is gone (or a zombie without it).</summary>
    public static ulong? StartTime(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        // The command name (field 2) is in parentheses and may itself hold spaces and parentheses.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // fields[0] is field 3 (state): a zombie has exited already.
        return fields.Length > 19 && fields[0] != "Z" && ulong.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var start) ? start : null;
    }

    public static IReadOnlyList<string> Argv(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/cmdline").TrimEnd('\0');
            return text.Length == 0 ? [] : text.Split('\0');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}

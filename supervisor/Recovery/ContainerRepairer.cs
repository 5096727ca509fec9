using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using S3Supervisor.Supervisor.Interop;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Recovery;

/// <summary>
/// Replaces, in place, the private copies that running containers hold of a FUSE mount whose
/// s3fs died (DESIGN.md, Recovery 4). Call it after the new s3fs is mounted at the staging path.
/// </summary>
/// <remarks>
/// <para>Per namespace: each stale mount is confirmed dead (ENOTCONN through
/// /proc/&lt;pid&gt;/root), a detached clone of the live staging mount at the same root (subPath) is
/// made in the supervisor's namespace and given the old mount's ro/nosuid/nodev/noexec flags, then
/// a throwaway thread enters the container's namespace, lazily unmounts the stale mount and moves
/// the clone onto the mount point. Everything that can fail is done before the stale mount is
/// taken away, so a failure leaves the container as it was (stale) rather than with a bare
/// directory where the volume was.</para>
/// <para>Kernel behaviour that shaped this (measured on 6.x):
/// <list type="bullet">
/// <item>A plain stat of a freshly dead FUSE mount can still succeed: FUSE answers getattr from
/// its attribute cache (1 s in libfuse) without looking at the connection. Every "is it dead"
/// check here is a statx with AT_STATX_FORCE_SYNC, which always asks the daemon.</item>
/// <item>A mount stacked inside a dead FUSE mount (a configMap under the volume, say) cannot be
/// kept: every path walk through the dead directory fails with ENOTCONN, and the failed
/// revalidation of the dentry it sits on makes the kernel itself detach it (d_invalidate) as soon
/// as anyone tries. Such mounts are only logged.</item>
/// <item>That is also why a stale mount inside another stale mount of the same volume (a subPath
/// bind under a whole-volume bind) is not stat'ed on its own: the walk would detach it. It counts
/// as confirmed with its enclosing mount, and once that one is replaced it is put back by moving a
/// clone onto the now reachable directory.</item>
/// <item>umount2 answers EINVAL for a mount locked by a user namespace (pods with
/// hostUsers: false). Then the clone is moved on top instead: the container sees the live mount
/// and the dead one stays hidden beneath it.</item>
/// </list></para>
/// </remarks>
public sealed partial class ContainerRepairer
{
    private const string DeletedSuffix = "//deleted";

    private readonly ILogger<ContainerRepairer> _logger;
    private readonly ContainerRepairOptions _options;

    /// <summary>False: stale mounts are found and reported, not replaced (Supervisor:RepairContainers).</summary>
    public bool Enabled => _options.Enabled;
    private readonly Func<string, int> _statErrno;

    public ContainerRepairer(ILogger<ContainerRepairer> logger, ContainerRepairOptions options)
        : this(logger, options, statErrno: null)
    {
    }

    /// <param name="statErrno">A cache-bypassing stat of a path, returning 0 or the errno; replaceable so that a fake /proc tree can be told which mounts are dead.</param>
    internal ContainerRepairer(ILogger<ContainerRepairer> logger, ContainerRepairOptions options, Func<string, int>? statErrno)
    {
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(options);
        _logger = logger;
        _options = options;
        _statErrno = statErrno ?? Libc.StatForceSyncErrno;
    }

    /// <param name="deadDevice">"major:minor" of the dead FUSE connection, as mountinfo showed it.</param>
    /// <param name="liveStagingPath">Where the new s3fs is mounted in the supervisor's own namespace.</param>
    /// <returns>One result per confirmed stale mount, repaired or not.</returns>
    public async Task<IReadOnlyList<ContainerRepairResult>> RepairAsync(string deadDevice, string liveStagingPath, CancellationToken ct)
    {
        if (!IsDeviceName(deadDevice))
        {
            throw new ArgumentException($"'{deadDevice}' is not a major:minor device number", nameof(deadDevice));
        }
        if (!Path.IsPathFullyQualified(liveStagingPath))
        {
            throw new ArgumentException($"'{liveStagingPath}' is not an absolute path", nameof(liveStagingPath));
        }

        var scanTimer = Stopwatch.StartNew();
        var namespaces = StaleMountScanner.Scan(_options.ProcRoot, deadDevice);
        var results = new List<ContainerRepairResult>();
        LiveStagingSource? live = null;
        string? liveError = null;
        try
        {
            foreach (var ns in namespaces)
            {
                ct.ThrowIfCancellationRequested();
                var (pid, confirmed) = await ConfirmAsync(ns, ct).ConfigureAwait(false);
                if (confirmed.Count == 0)
                {
                    LogNotConfirmed(ns.MountNamespaceInode, deadDevice);
                    continue;
                }
                if (!_options.Enabled)
                {
                    foreach (var stale in confirmed)
                    {
                        results.Add(Result(pid, ns, stale.Entry, "repair disabled"));
                        LogRepairDisabled(pid, ns.MountNamespaceInode, stale.Entry.MountPoint);
                    }
                    continue;
                }
                if (live is null && liveError is null)
                {
                    try
                    {
                        live = LiveStagingSource.Open(liveStagingPath, deadDevice);
                    }
                    catch (InteropException ex)
                    {
                        liveError = ex.Message;
                    }
                }
                if (live is null)
                {
                    foreach (var stale in confirmed)
                    {
                        results.Add(Result(pid, ns, stale.Entry, liveError));
                        LogRepairFailed(pid, ns.MountNamespaceInode, stale.Entry.MountPoint, liveError!);
                    }
                    continue;
                }
                foreach (var buried in ns.Buried)
                {
                    LogBuriedMountLost(pid, ns.MountNamespaceInode, buried.MountPoint, buried.FsType);
                }
                results.AddRange(await RepairNamespaceAsync(ns, pid, confirmed, live, ct).ConfigureAwait(false));
            }
        }
        finally
        {
            live?.Dispose();
        }
        LogScanFinished(deadDevice, namespaces.Count, results.Count(r => r.Success), results.Count, scanTimer.Elapsed.TotalMilliseconds);
        return results;
    }

    /// <summary>
    /// Which of the namespace's matches are really the dead connection, and through which pid.
    /// A stat through /proc/&lt;pid&gt;/root reaches the mount point as the container sees it.
    /// </summary>
    private async Task<(int Pid, List<StaleMount> Confirmed)> ConfirmAsync(StaleNamespace ns, CancellationToken ct)
    {
        foreach (var pid in ns.Pids)
        {
            var confirmedIds = new HashSet<int>();
            var confirmed = new List<StaleMount>();
            var pidGone = false;
            foreach (var stale in ns.Mounts)
            {
                if (stale.EnclosingMountId is { } enclosing)
                {
                    // Not stat'ed on its own: the walk through the dead enclosing mount would make
                    // the kernel detach it. It stands or falls with the enclosing one.
                    if (confirmedIds.Contains(enclosing))
                    {
                        confirmedIds.Add(stale.Entry.MountId);
                        confirmed.Add(stale);
                    }
                    continue;
                }
                var path = ProcPath(pid, "root") + (stale.Entry.MountPoint == "/" ? "/" : stale.Entry.MountPoint);
                var error = await MounterExtensions.StatWithinAsync(() => _statErrno(path), _options.ConfirmTimeout, TimeProvider.System, ct).ConfigureAwait(false);
                if (error == Errno.ENOTCONN)
                {
                    confirmedIds.Add(stale.Entry.MountId);
                    confirmed.Add(stale);
                }
                else if (error is null)
                {
                    LogConfirmTimedOut(pid, stale.Entry.MountPoint, _options.ConfirmTimeout.TotalSeconds);
                }
                else if (!StillIn(pid, ns.MountNamespaceInode))
                {
                    pidGone = true;
                    break;
                }
            }
            if (!pidGone)
            {
                return (pid, confirmed);
            }
        }
        return (ns.Pids[0], []);
    }

    private async Task<List<ContainerRepairResult>> RepairNamespaceAsync(StaleNamespace ns, int pid, List<StaleMount> confirmed, LiveStagingSource live, CancellationToken ct)
    {
        var timer = Stopwatch.StartNew();
        var prepared = new List<Prepared>(confirmed.Count);
        FileDescriptorHandle? nsHandle = null;
        try
        {
            // Everything that can fail without touching the container is done first, here in
            // the supervisor's own namespace.
            foreach (var stale in confirmed)
            {
                prepared.Add(Prepare(stale, live));
            }
            (nsHandle, pid) = OpenNamespace(ns, pid);
            if (nsHandle is null)
            {
                return [.. confirmed.Select(s => Result(pid, ns, s.Entry, "the mount namespace is gone (its processes exited)"))];
            }

            ct.ThrowIfCancellationRequested();
            var outcomes = await MountNamespaceThread.RunAsync(nsHandle, $"{pid}", () => ReplaceAll(prepared)).ConfigureAwait(false);

            var results = new List<ContainerRepairResult>(prepared.Count);
            for (var i = 0; i < prepared.Count; i++)
            {
                var entry = prepared[i].Stale.Entry;
                var result = Result(pid, ns, entry, outcomes[i].Error);
                results.Add(result);
                if (result.Success)
                {
                    LogRepaired(pid, ns.MountNamespaceInode, entry.MountPoint, entry.Root, entry.ReadOnly, outcomes[i].Note ?? "replaced");
                }
                else
                {
                    LogRepairFailed(pid, ns.MountNamespaceInode, entry.MountPoint, result.Error!);
                }
            }
            LogNamespaceRepaired(pid, ns.MountNamespaceInode, results.Count(r => r.Success), results.Count, timer.Elapsed.TotalMilliseconds);
            return results;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The thread could not enter the namespace (unshare/setns refused): nothing was touched.
            LogRepairFailed(pid, ns.MountNamespaceInode, "*", ex.Message);
            return [.. confirmed.Select(s => Result(pid, ns, s.Entry, ex.Message))];
        }
        finally
        {
            // Closing a tree that was moved leaves the mount where it is; closing one that was
            // never attached dissolves it.
            foreach (var p in prepared)
            {
                p.Tree?.Dispose();
            }
            nsHandle?.Dispose();
        }
    }

    /// <summary>A detached clone of the live mount at the stale entry's root, with its flags.</summary>
    private static Prepared Prepare(StaleMount stale, LiveStagingSource live)
    {
        var entry = stale.Entry;
        var wanted = entry.Root;
        if (wanted.EndsWith(DeletedSuffix, StringComparison.Ordinal))
        {
            // The kernel marks a root whose directory was removed this way; s3fs would show a
            // new, empty directory of that name at best.
            return new Prepared(stale, null, $"the directory {wanted[..^DeletedSuffix.Length]} inside the volume was deleted");
        }
        if (!wanted.StartsWith('/'))
        {
            return new Prepared(stale, null, $"unexpected mount root '{wanted}'");
        }
        var source = live.Path + (wanted == "/" ? string.Empty : wanted);
        FileDescriptorHandle? tree = null;
        try
        {
            using (var directory = Libc.OpenDirectoryBeneath(live.Handle, wanted.TrimStart('/'), source))
            {
                tree = Libc.CloneMount(directory, source);
            }
            Libc.SetMountAttributes(tree, ContainerMountAttributes.FlagsOf(entry), clear: 0, ContainerMountAttributes.PropagationOf(entry), source);
            return new Prepared(stale, tree, null);
        }
        catch (InteropException ex)
        {
            tree?.Dispose();
            return new Prepared(stale, null, ex.Message);
        }
    }

    /// <summary>
    /// Runs inside the container's mount namespace, on the throwaway thread. Paths resolve
    /// against the namespace's root, which setns made this thread's root: for a pivot_root'ed
    /// container that is the container's "/", the same root its mountinfo paths are relative to.
    /// So a container that races us (renames a parent directory, plants a symlink) can at worst
    /// get its own volume mounted elsewhere in its own view: nothing resolves outside its root,
    /// and the ENOTCONN re-check keeps umount2 away from anything that is not a dead mount.
    /// </summary>
    private static Outcome[] ReplaceAll(List<Prepared> prepared)
    {
        var outcomes = new Outcome[prepared.Count];
        var replaced = new HashSet<int>();
        for (var i = 0; i < prepared.Count; i++)
        {
            var (stale, tree, error) = prepared[i];
            var mountPoint = stale.Entry.MountPoint;
            if (tree is null)
            {
                outcomes[i] = new Outcome(error ?? "not prepared", null);
                continue;
            }
            try
            {
                string? note = null;
                if (stale.EnclosingMountId is { } enclosing)
                {
                    // Detached along with the enclosing mount (or by the kernel before that);
                    // its directory now lies in the live volume.
                    if (!replaced.Contains(enclosing))
                    {
                        outcomes[i] = new Outcome("the enclosing stale mount was not repaired", null);
                        continue;
                    }
                    note = "restored inside the repaired mount";
                }
                else
                {
                    // Re-check in this namespace right before touching it: a pid reused or a
                    // path swapped since the scan must not make us unmount something else.
                    var now = Libc.StatForceSyncErrno(mountPoint);
                    if (now != Errno.ENOTCONN)
                    {
                        outcomes[i] = new Outcome($"no longer stale when entered (stat: {(now == 0 ? "ok" : Errno.Name(now))}); left alone", null);
                        continue;
                    }
                    var detach = Libc.DetachMountErrno(mountPoint);
                    if (detach == Errno.EINVAL)
                    {
                        note = "stacked over a mount that cannot be unmounted (locked by a user namespace)";
                    }
                    else if (detach != 0)
                    {
                        outcomes[i] = new Outcome(new InteropException("umount2", detach, mountPoint).Message, null);
                        continue;
                    }
                }
                Libc.MoveMount(tree, mountPoint);
                replaced.Add(stale.Entry.MountId);
                outcomes[i] = new Outcome(null, note);
            }
            catch (InteropException ex)
            {
                outcomes[i] = new Outcome(ex.Message, null);
            }
        }
        return outcomes;
    }

    /// <summary>A handle on the namespace through the first pid still in it (the pid may have exited, or been reused).</summary>
    private (FileDescriptorHandle? Handle, int Pid) OpenNamespace(StaleNamespace ns, int preferred)
    {
        foreach (var pid in ns.Pids.OrderBy(p => p == preferred ? 0 : 1))
        {
            var path = ProcPath(pid, "ns/mnt");
            FileDescriptorHandle handle;
            try
            {
                handle = Libc.OpenReadOnly(path);
            }
            catch (InteropException)
            {
                continue;
            }
            if (Libc.StatIdentity(handle, path).Inode == ns.MountNamespaceInode)
            {
                return (handle, pid);
            }
            handle.Dispose();
        }
        return (null, preferred);
    }

    private bool StillIn(int pid, ulong inode) =>
        Libc.StatIdentity(ProcPath(pid, "ns/mnt"), out _, out var now) == 0 && now == inode;

    private string ProcPath(int pid, string relative) =>
        Path.Combine(_options.ProcRoot, pid.ToString(CultureInfo.InvariantCulture), relative);

    private static ContainerRepairResult Result(int pid, StaleNamespace ns, MountEntry entry, string? error) =>
        new(pid, ns.MountNamespaceInode, entry.MountPoint, entry.Root, entry.ReadOnly, error is null, error);

    private static bool IsDeviceName(string value)
    {
        var parts = value.Split(':');
        return parts.Length == 2
            && uint.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out _)
            && uint.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out _);
    }

    [LoggerMessage(EventId = 3000, Level = LogLevel.Information, Message = "Container repair: pid {Pid} (mnt ns {MountNamespace}) {MountPoint} (root {Root}, read-only {ReadOnly}) now shows the live mount: {How}")]
    private partial void LogRepaired(int pid, ulong mountNamespace, string mountPoint, string root, bool readOnly, string how);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "Container repair: pid {Pid} (mnt ns {MountNamespace}) {MountPoint} failed: {Reason}")]
    private partial void LogRepairFailed(int pid, ulong mountNamespace, string mountPoint, string reason);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Container repair disabled: pid {Pid} (mnt ns {MountNamespace}) keeps a dead mount at {MountPoint}")]
    private partial void LogRepairDisabled(int pid, ulong mountNamespace, string mountPoint);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "Container repair: pid {Pid} (mnt ns {MountNamespace}) {Repaired}/{Total} mounts replaced in {Milliseconds:F2} ms")]
    private partial void LogNamespaceRepaired(int pid, ulong mountNamespace, int repaired, int total, double milliseconds);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Debug, Message = "Container repair: mnt ns {MountNamespace} shows device {Device} but nothing there answers ENOTCONN (a reused device number); left alone")]
    private partial void LogNotConfirmed(ulong mountNamespace, string device);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Warning, Message = "Container repair: stat of {MountPoint} through pid {Pid} did not answer within {Seconds} s; left alone")]
    private partial void LogConfirmTimedOut(int pid, string mountPoint, double seconds);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Warning, Message = "Container repair: pid {Pid} (mnt ns {MountNamespace}) loses the {FsType} mount at {MountPoint}: it sat inside the dead volume, where the kernel cannot reach it any more")]
    private partial void LogBuriedMountLost(int pid, ulong mountNamespace, string mountPoint, string fsType);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Information, Message = "Container repair for device {Device}: {Namespaces} namespace(s) matched, {Repaired}/{Total} stale mounts repaired, {Milliseconds:F1} ms")]
    private partial void LogScanFinished(string device, int namespaces, int repaired, int total, double milliseconds);

    private sealed record Prepared(StaleMount Stale, FileDescriptorHandle? Tree, string? Error);

    private readonly record struct Outcome(string? Error, string? Note);
}

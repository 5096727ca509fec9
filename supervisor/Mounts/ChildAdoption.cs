using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using S3Supervisor.Api.V1;
using S3Supervisor.Supervisor.Interop;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// After a restart, before any rebuild: every s3fs a predecessor started that still runs, is exactly
/// the recorded process (pid, start time, boot, argv, cgroup), still mounts the recorded connection at
/// the staging path, and answers a forced statx there, is taken over as it is: Ready at once, its
/// targets untouched, watched through a pidfd. Nothing about its mounts changes, so no application
/// sees anything. Only the volumes that fail a check go through the rebuild; a process that still
/// runs but fails a check is stopped first, so that it cannot hold a connection nobody watches.
/// </summary>
internal sealed partial class ChildAdoption(
    VolumeTable table,
    IMounter mounter,
    IS3fsLauncher launcher,
    S3fsStarter starter,
    VolumeHealer healer,
    VolumeReporter reporter,
    CredentialStore credentials,
    TimeProvider time,
    VolumeManagerSettings settings,
    ILogger logger)
{
    private readonly ILogger _logger = logger;

    /// <summary>Adopts what can be adopted; returns the ids of the adopted volumes.</summary>
    public async Task<IReadOnlyCollection<string>> AdoptAsync(IReadOnlyList<JournalEntry> entries, CancellationToken cancellationToken)
    {
        var candidates = entries.Where(e => e.Child is not null).ToArray();
        if (candidates.Length == 0)
        {
            return [];
        }
        var started = time.GetTimestamp();
        var mounts = mounter.ReadMounts();
        var adopted = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(candidates, new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = cancellationToken }, async (entry, ct) =>
        {
            try
            {
                if (await TryAdoptAsync(entry, mounts, ct).ConfigureAwait(false))
                {
                    adopted.Add(entry.Volume.VolumeId);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                // One volume that cannot be taken over goes to the rebuild; it never stops the start.
                LogNotAdopted(entry.Volume.VolumeId, entry.Child!.Pid, e.Message);
            }
        }).ConfigureAwait(false);
        LogAdopted(adopted.Count, candidates.Length, time.GetElapsedTime(started).TotalMilliseconds);
        return adopted.ToArray();
    }

    private async Task<bool> TryAdoptAsync(JournalEntry entry, IReadOnlyList<MountEntry> mounts, CancellationToken cancellationToken)
    {
        var record = entry.Volume;
        var child = launcher.Adopt(entry.Child!, out var reason);
        if (child is null)
        {
            LogNotAdopted(record.VolumeId, entry.Child!.Pid, reason);
            return false;
        }
        ManagedVolume? taken = null;
        try
        {
            var problem = reason.Length > 0 ? reason : await CheckMountAsync(record.StagingPath, entry.Device, mounts, cancellationToken).ConfigureAwait(false);
            if (problem is not null)
            {
                LogNotAdopted(record.VolumeId, child.Pid, problem + "; stopping it, the rebuild starts a new one");
                await child.StopAsync(starter.HealGrace).ConfigureAwait(false);
                child.Dispose();
                return false;
            }
            var (volume, _, held) = await table.AcquireAsync(record.VolumeId, wait: true, cancellationToken).ConfigureAwait(false);
            await using var lease = held;
            taken = volume;
            volume.StagingPath = record.StagingPath;
            volume.Source = record.Source;
            volume.Device = entry.Device;
            volume.Child = child;
            volume.OomKillsSeen = launcher.OomKills(child.Record.Cgroup);
            volume.CredentialsMissing = !record.Source.Options.PublicBucket && !credentials.Has(record.VolumeId);
            lock (volume.Targets)
            {
                foreach (var target in record.Targets)
                {
                    volume.Targets[target.TargetPath] = target.Clone();
                }
            }
            RepairMissingTargetBinds(volume, mounts);
            volume.Staged = true;
            healer.Watch(volume, child);
            reporter.SetState(volume, VolumeState.Ready, "Adopted", $"s3fs pid {child.Pid} outlived the supervisor restart; serving {volume.StagingPath} and {volume.Targets.Count} target(s) as before");
            return true;
        }
        catch (OperationCanceledException)
        {
            // The start was cancelled: the process goes on as it was, for the next supervisor to adopt.
            Forget(taken, child);
            child.Dispose();
            throw;
        }
        catch
        {
            // Half taken over is not taken over: no record keeps a child nobody watches.
            Forget(taken, child);
            await child.StopAsync(starter.HealGrace).ConfigureAwait(false);
            child.Dispose();
            throw;
        }
    }

    private void Forget(ManagedVolume? volume, IS3fsProcess child)
    {
        if (volume is not null && volume.Child == child)
        {
            volume.Child = null;
            volume.Staged = false;
            table.Forget(volume);
        }
    }

    private async Task<string?> CheckMountAsync(string stagingPath, string device, IReadOnlyList<MountEntry> mounts, CancellationToken cancellationToken)
    {
        var mount = MountInfo.At(mounts, stagingPath);
        if (mount is not { IsFuse: true } || device.Length == 0 || mount.Device != device)
        {
            return $"{stagingPath} is not mounted by its connection {device} any more";
        }
        var errno = await mounter.StatWithinAsync(stagingPath, settings.HealthCheckTimeout, time, cancellationToken).ConfigureAwait(false);
        return errno switch
        {
            null => $"{stagingPath} did not answer within {settings.HealthCheckTimeout.TotalSeconds:0} s",
            0 => null,
            _ => $"{stagingPath} answers {Errno.Name(errno.Value)}",
        };
    }

    /// <summary>A target whose bind went missing meanwhile gets it back from the live staging mount; one that cannot is forgotten (kubelet will publish it again).</summary>
    private void RepairMissingTargetBinds(ManagedVolume volume, IReadOnlyList<MountEntry> mounts)
    {
        PublishTarget[] targets;
        lock (volume.Targets)
        {
            targets = volume.Targets.Values.ToArray();
        }
        foreach (var target in targets.Where(t => MountInfo.At(mounts, t.TargetPath)?.Device != volume.Device))
        {
            try
            {
                mounter.UnmountAllLayers(target.TargetPath);
                mounter.CreateDirectory(target.TargetPath);
                mounter.Bind(volume.StagingPath, target.TargetPath, target.ReadOnly, volume.Device);
            }
            catch (Exception e) when (e is InteropException or PathRefusedException or IOException)
            {
                LogTargetDropped(volume.VolumeId, target.TargetPath, e.Message);
                lock (volume.Targets)
                {
                    volume.Targets.Remove(target.TargetPath);
                }
            }
        }
    }

    [LoggerMessage(EventId = 1011, Level = LogLevel.Information, Message = "Adopted {Count} of {Candidates} s3fs processes that outlived the previous supervisor in {Milliseconds} ms")]
    private partial void LogAdopted(int count, int candidates, double milliseconds);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Information, Message = "Volume {VolumeId}: s3fs pid {Pid} not adopted: {Reason}")]
    private partial void LogNotAdopted(string volumeId, int pid, string reason);

    [LoggerMessage(EventId = 1013, Level = LogLevel.Warning, Message = "Volume {VolumeId}: target {TargetPath} could not be bound again after adoption and is forgotten: {Reason}")]
    private partial void LogTargetDropped(string volumeId, string targetPath, string reason);
}

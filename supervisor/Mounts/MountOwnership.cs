using Microsoft.Extensions.Logging;
using S3Supervisor.Supervisor.Interop;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// Who may touch a mounted path, and what is done with leftovers of an earlier life: only a
/// volume's own calls change its mounts; a dead FUSE leftover nobody owns is cleared; anything else
/// is refused. Also the node-disk side of a staging directory: files written there while nothing
/// covered it are moved aside, never deleted, and a target directory is removed only when empty.
/// </summary>
internal sealed partial class MountOwnership(VolumeTable table, IMounter mounter, VolumeReporter reporter, TimeProvider time, VolumeManagerSettings settings, ILogger logger)
{
    private readonly ILogger _logger = logger;

    /// <summary>
    /// A path about to be mounted on may hold a leftover of an earlier life (a dead s3fs, a bind of
    /// one). A dead FUSE leftover that no other volume owns is cleared; anything else is not ours to remove.
    /// </summary>
    public void ClearLeftoverMount(ManagedVolume self, string path, string field)
    {
        var mount = mounter.FindMount(path);
        if (mount is null)
        {
            return;
        }
        if (table.OwnerOf(path, mount, except: self) is { } owner)
        {
            throw new VolumeException(VolumeErrorKind.FailedPrecondition, field, $"{path} is a mount of volume {owner.VolumeId}; only that volume's calls may change it");
        }
        if (mount.IsFuse && mounter.Stat(path) == Errno.ENOTCONN)
        {
            MountOrExplain(field, () => mounter.UnmountAllLayers(path));
            LogLeftoverCleared(path, mount.Device);
            return;
        }
        throw new VolumeException(VolumeErrorKind.FailedPrecondition, field, $"{path} is already a mount point ({mount.FsType} from {mount.Source})");
    }

    /// <summary>
    /// Unpublish or unstage of a path the named volume does not own (an unknown id, a retry after the
    /// volume went away, a rebuild not yet done). Only the owner may remove a mount: a path that is
    /// another volume's staging path, target or connection is refused; a dead FUSE leftover nobody
    /// owns is cleared; a path with nothing mounted is an idempotent success.
    /// </summary>
    public async Task ReleaseUnownedPathAsync(string volumeId, string path, string field, bool isTarget, CancellationToken cancellationToken)
    {
        var mount = mounter.FindMount(path);
        if (mount is not null)
        {
            if (table.OwnerOf(path, mount) is { } owner && owner.VolumeId != volumeId)
            {
                throw new VolumeException(VolumeErrorKind.FailedPrecondition, field, $"{path} is a mount of volume {owner.VolumeId}, not of {volumeId}; only that volume's calls may remove it");
            }
            if (!mount.IsFuse)
            {
                throw new VolumeException(VolumeErrorKind.FailedPrecondition, field, $"{path} is a {mount.FsType} mount this supervisor did not make; not touched");
            }
            // A forced statx that gives up after the health-check timeout (a hung FUSE connection blocks it).
            var errno = await mounter.StatWithinAsync(path, settings.HealthCheckTimeout, time, cancellationToken).ConfigureAwait(false) ?? Errno.ETIMEDOUT;
            if (errno != Errno.ENOTCONN)
            {
                throw new VolumeException(VolumeErrorKind.FailedPrecondition, field, $"{path} is a live FUSE mount ({mount.Source}) that no volume of this supervisor owns; not touched");
            }
            MountOrExplain(field, () => mounter.UnmountAllLayers(path));
            LogLeftoverCleared(path, mount.Device);
        }
        if (isTarget)
        {
            RemoveTargetDirectory(path);
        }
    }

    /// <summary>CSI: the SP deletes the target directory it created. Only an empty directory goes; never anything in it.</summary>
    public void RemoveTargetDirectory(string targetPath)
    {
        try
        {
            if (!mounter.RemoveDirectory(targetPath))
            {
                LogTargetKept(targetPath);
            }
        }
        catch (IOException e)
        {
            LogTargetKept(targetPath + " (" + e.Message + ")");
        }
    }

    /// <summary>
    /// Before s3fs's mount is bound on the staging directory: files found there were written to the
    /// node's disk while no mount covered it. They are moved aside (never deleted) into the state
    /// directory, and the move is reported.
    /// </summary>
    public void MoveStrayFilesAside(ManagedVolume volume)
    {
        var staging = volume.StagingPath;
        if (mounter.FindMount(staging) is not null || !Directory.Exists(staging))
        {
            return;
        }
        var entries = Directory.EnumerateFileSystemEntries(staging).ToArray();
        if (entries.Length == 0)
        {
            return;
        }
        var destination = Path.Combine(settings.StateDirectory, "stray", CredentialStore.FileName(volume.VolumeId) + "-" + time.GetUtcNow().ToString("yyyyMMdd'T'HHmmssfff", System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(destination, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        foreach (var entry in entries)
        {
            StrayFiles.Move(entry, Path.Combine(destination, Path.GetFileName(entry)));
        }
        var message = $"{entries.Length} file(s) found in the unmounted staging directory {staging} (written to the node's disk, not to S3) were moved to {destination}";
        LogStrayFiles(volume.VolumeId, message);
        reporter.Emit(volume, "StrayFilesMovedAside", message);
        _ = reporter.StrayFilesAsync(volume.Snapshot(), message);
    }

    /// <summary>Runs a mount-layer step and turns its path errors into errors naming the field.</summary>
    public static void MountOrExplain(string field, Action step)
    {
        try
        {
            step();
        }
        catch (PathRefusedException e)
        {
            throw new VolumeException(VolumeErrorKind.PermissionDenied, field, $"{e.PathName} {e.Reason}");
        }
        catch (MountSourceException e)
        {
            throw new VolumeException(VolumeErrorKind.Unavailable, field, $"the staging mount {e.Message}; retry once the volume is healed");
        }
        catch (InteropException e) when (e.Errno is Errno.EACCES or Errno.EPERM or Errno.EROFS)
        {
            throw new VolumeException(VolumeErrorKind.PermissionDenied, field, e.Message);
        }
        catch (InteropException e) when (e.Errno is Errno.ENAMETOOLONG)
        {
            throw VolumeException.Invalid(field, "is too long for the file system");
        }
        catch (InteropException e) when (e.Errno is Errno.ENOENT or Errno.EEXIST)
        {
            // Something else renamed or removed a directory on the way in between: nothing was mounted.
            throw new VolumeException(VolumeErrorKind.FailedPrecondition, field, $"{e.Path} changed while it was being mounted ({Errno.Name(e.Errno)}); nothing was mounted, retry");
        }
    }

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "Cleared a leftover FUSE mount {Device} at {Path}")]
    private partial void LogLeftoverCleared(string path, string device);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Warning, Message = "Volume {VolumeId}: {Detail}")]
    private partial void LogStrayFiles(string volumeId, string detail);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Warning, Message = "Target directory {Path} kept after unpublish: it is not empty or still a mount point")]
    private partial void LogTargetKept(string path);
}

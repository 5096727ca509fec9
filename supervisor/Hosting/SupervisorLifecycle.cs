using Microsoft.Extensions.Options;
using S3Supervisor.Supervisor.Interop;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Hosting;

/// <summary>
/// Start: prepares the private secrets directory (a tmpfs of its own when the configured directory
/// is not on one) and the state directory, then adopts every s3fs a predecessor left running, before
/// the rebuild and before the socket listens (<see cref="StartingAsync"/> runs before any service
/// starts, Kestrel included, so the first ListVolumes already shows every adopted volume Ready). Stop (SIGTERM: a restart or an upgrade): the children
/// keep running and keep every mount; the journal records them for the next supervisor. Only a
/// drain (the Drain call, or StopChildrenOnShutdown) stops them, and then the tmpfs goes too.
/// </summary>
internal sealed partial class SupervisorLifecycle : IHostedLifecycleService
{
    private readonly VolumeManager _volumes;
    private readonly CredentialStore _credentials;
    private readonly SupervisorOptions _options;
    private readonly IMounter _mounter;
    private readonly ILogger<SupervisorLifecycle> _logger;
    private bool _mountedTmpfs;

    public SupervisorLifecycle(VolumeManager volumes, CredentialStore credentials, IMounter mounter, IOptions<SupervisorOptions> options, ILogger<SupervisorLifecycle> logger)
    {
        _volumes = volumes;
        _credentials = credentials;
        _mounter = mounter;
        _options = options.Value;
        _logger = logger;
    }

    /// <summary>Marks a tmpfs this supervisor (or a predecessor) mounted on the secrets directory, as opposed to one it was given (an emptyDir of medium Memory).</summary>
    private string TmpfsMarker => Path.Combine(_options.StateDirectory, ".secrets-tmpfs-mounted");

    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_options.StateDirectory);
        _credentials.EnsureDirectory();
        if (_options.RequireTmpfsSecrets && !OnTmpfs(_options.SecretsDirectory))
        {
            // Secrets must never touch a disk: give the directory a private tmpfs of its own.
            Libc.Mount("tmpfs", _options.SecretsDirectory, "tmpfs", Libc.MS_NOSUID | Libc.MS_NODEV | Libc.MS_NOEXEC, "mode=0700,size=16m");
            File.WriteAllText(TmpfsMarker, _options.SecretsDirectory);
            _mountedTmpfs = true;
            LogTmpfsMounted(_options.SecretsDirectory);
        }
        else
        {
            // A predecessor's own tmpfs (it left its children running) is ours to unmount after a drain;
            // a tmpfs we were given (an emptyDir of medium Memory, a host tmpfs) never is.
            _mountedTmpfs = File.Exists(TmpfsMarker) && _mounter.FindMount(_options.SecretsDirectory) is { FsType: "tmpfs" };
        }
        var starting = await _volumes.AdoptAsync(cancellationToken).ConfigureAwait(false);
        var adopted = starting.Adopted.ToHashSet(StringComparer.Ordinal);
        // A predecessor's passwd files: those of journal records stay for the rebuild, which remounts
        // from them at once and removes what it does not bring back; the rest go now. Private mounts
        // not adopted are dead (their children are gone).
        _credentials.RemoveAllExcept(adopted.Union(starting.Journaled).ToHashSet(StringComparer.Ordinal));
        ClearPrivateMounts(adopted.Select(CredentialStore.FileName).ToHashSet(StringComparer.Ordinal));
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_options.StopChildrenOnShutdown && !_volumes.Draining)
        {
            await _volumes.DrainAsync().ConfigureAwait(false);
        }
        if (!_volumes.Draining)
        {
            LogLeavingChildren(_volumes.List().Count);
            await _volumes.ShutdownAsync().ConfigureAwait(false);
            return;
        }
        await _volumes.ShutdownAsync().ConfigureAwait(false);
        // After the children: they no longer need their passwd files (the drain removed them).
        // Only our own tmpfs (one layer: whatever it was mounted over stays), and only while it is still the top mount there.
        if (_mountedTmpfs && _mounter.FindMount(_options.SecretsDirectory) is { FsType: "tmpfs" })
        {
            // Straight to libc, as it was mounted: the secrets directory is the supervisor's own, not
            // under a root the mount layer resolves paths beneath.
            try
            {
                Libc.Unmount(_options.SecretsDirectory, detach: true);
            }
            catch (InteropException e)
            {
                LogTmpfsUnmountFailed(_options.SecretsDirectory, e.Message);
                return;
            }
            _mountedTmpfs = false;
            File.Delete(TmpfsMarker);
            LogTmpfsUnmounted(_options.SecretsDirectory);
        }
    }

    /// <summary>
    /// s3fs mounts first in the private mount directory; a predecessor that died left those mounts
    /// dead there (its children died with it). Nothing but our s3fs ever mounts there: clear them.
    /// </summary>
    private void ClearPrivateMounts(HashSet<string> adopted)
    {
        var root = Libc.RealPath(_options.MountDirectory).TrimEnd('/') + "/";
        bool Adopted(string path) => adopted.Contains(path[root.Length..].Split('/')[0]);
        foreach (var mount in _mounter.ReadMounts().Where(m => m.MountPoint.StartsWith(root, StringComparison.Ordinal) && !Adopted(m.MountPoint)).Reverse())
        {
            _mounter.UnmountAllLayers(mount.MountPoint);
        }
        foreach (var directory in Directory.EnumerateDirectories(root).Where(d => !Adopted(d + "/")))
        {
            try
            {
                Directory.Delete(directory);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>Whether the mount that holds <paramref name="path"/> (the longest mount point above it, topmost layer) is a tmpfs.</summary>
    private bool OnTmpfs(string path)
    {
        MountEntry? holder = null;
        foreach (var mount in _mounter.ReadMounts())
        {
            var contains = path == mount.MountPoint || path.StartsWith(mount.MountPoint.TrimEnd('/') + "/", StringComparison.Ordinal);
            if (contains && (holder is null || mount.MountPoint.Length >= holder.MountPoint.Length))
            {
                holder = mount;
            }
        }
        return holder?.FsType == "tmpfs";
    }

    [LoggerMessage(EventId = 1203, Level = LogLevel.Warning, Message = "Could not unmount the private tmpfs on {Path}: {Reason}")]
    private partial void LogTmpfsUnmountFailed(string path, string reason);

    [LoggerMessage(EventId = 1200, Level = LogLevel.Information, Message = "Mounted a private tmpfs on the secrets directory {Path}")]
    private partial void LogTmpfsMounted(string path);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Information, Message = "Unmounted the private tmpfs on the secrets directory {Path}")]
    private partial void LogTmpfsUnmounted(string path);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Stopping: {Count} s3fs children keep running and keep their mounts; the journal records them for the next supervisor to adopt")]
    private partial void LogLeavingChildren(int count);
}

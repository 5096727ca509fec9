using Microsoft.Extensions.Options;
using S3Supervisor.Supervisor.Interop;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Hosting;

/// <summary>
/// Start: prepares the private secrets directory (a tmpfs of its own when the configured directory
/// is not on one) and the state directory. Stop: every s3fs gets SIGTERM to flush buffered writes,
/// within the grace period; the journal is kept, so the next start knows what this node served; then
/// the tmpfs mounted at start (if any) is unmounted, so that nothing of this process outlives it.
/// </summary>
internal sealed partial class SupervisorLifecycle : IHostedService
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

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_options.StateDirectory);
        _credentials.EnsureDirectory();
        if (_options.RequireTmpfsSecrets && !OnTmpfs(_options.SecretsDirectory))
        {
            // Secrets must never touch a disk: give the directory a private tmpfs of its own.
            Libc.Mount("tmpfs", _options.SecretsDirectory, "tmpfs", Libc.MS_NOSUID | Libc.MS_NODEV | Libc.MS_NOEXEC, "mode=0700,size=16m");
            _mountedTmpfs = true;
            LogTmpfsMounted(_options.SecretsDirectory);
        }
        // A crashed predecessor's passwd files: nothing uses them (its children died with it).
        _credentials.RemoveAll();
        ClearPrivateMounts();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        LogStopping(_volumes.List().Count, _options.ShutdownGrace.TotalSeconds);
        await _volumes.ShutdownAsync().ConfigureAwait(false);
        // After the children: they no longer need their passwd files (and ShutdownAsync removed them).
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
            LogTmpfsUnmounted(_options.SecretsDirectory);
        }
    }

    /// <summary>
    /// s3fs mounts first in the private mount directory; a predecessor that died left those mounts
    /// dead there (its children died with it). Nothing but our s3fs ever mounts there: clear them.
    /// </summary>
    private void ClearPrivateMounts()
    {
        var root = Libc.RealPath(_options.MountDirectory).TrimEnd('/') + "/";
        foreach (var mount in _mounter.ReadMounts().Where(m => m.MountPoint.StartsWith(root, StringComparison.Ordinal)).Reverse())
        {
            _mounter.UnmountAllLayers(mount.MountPoint);
        }
        foreach (var directory in Directory.EnumerateDirectories(root))
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

    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Stopping: SIGTERM to {Count} s3fs children, grace {Seconds} s; the journal is kept")]
    private partial void LogStopping(int count, double seconds);
}

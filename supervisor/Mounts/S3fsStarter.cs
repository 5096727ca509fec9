using Microsoft.Extensions.Logging;
using S3Supervisor.Supervisor.Interop;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// Starts a volume's s3fs and waits until its mount really answers, then binds it on the staging
/// path; stops it again. Failures name what s3fs said (its stderr tail, with the key material
/// redacted) and leave nothing mounted or running.
/// </summary>
internal sealed partial class S3fsStarter(IS3fsLauncher launcher, IMounter mounter, CredentialStore credentials, MountOwnership ownership, TimeProvider time, VolumeManagerSettings settings, ILogger logger)
{
    /// <summary>A name no one uses: its stat makes s3fs ask S3 once with the volume's credentials.</summary>
    private const string ReadinessProbeName = ".s3supervisor-readiness-probe";

    /// <summary>How soon a mounted s3fs that did not answer yet is asked again.</summary>
    private static readonly TimeSpan AnswerRecheck = TimeSpan.FromMilliseconds(10);

    /// <summary>How long a start waits for a mount table change before it looks anyway.</summary>
    private static readonly TimeSpan MountRecheck = TimeSpan.FromMilliseconds(250);

    private readonly ILogger _logger = logger;

    /// <summary>How long a child whose connection is already dead or hung gets to stop.</summary>
    public TimeSpan HealGrace => settings.ShutdownGrace < TimeSpan.FromSeconds(3) ? settings.ShutdownGrace : TimeSpan.FromSeconds(3);

    /// <summary>Starts s3fs and waits until the FUSE mount is in mountinfo and answers stat. On failure nothing is left mounted or running.</summary>
    public async Task StartAsync(ManagedVolume volume, CancellationToken cancellationToken)
    {
        MountOwnership.MountOrExplain("staging_path", () => mounter.CreateDirectory(volume.StagingPath));
        // s3fs mounts by name inside its own mount(2) call (libfuse2 realpath()s the mountpoint
        // first), so it is never given a path under kubelet's root, where a directory could be
        // swapped for a symlink in between: it mounts in our private directory, and the staging
        // path gets a bind of that mount made through file descriptors (Mounter.Bind).
        var mountPoint = PrivateMountPath(volume);
        mounter.UnmountAllLayers(mountPoint);
        Directory.CreateDirectory(mountPoint, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var passwd = volume.Source.Options.PublicBucket ? null : credentials.PasswdFile(volume.VolumeId);
        string? cache = null;
        if (volume.Source.Options.UseCache)
        {
            cache = CachePath(volume);
            CreateOwnDirectory(cache, "CacheDirectory");
        }
        // s3fs's files being written wait in its tmpdir until uploaded. Not the container's /tmp: an s3fs
        // that outlives its supervisor's pod would be left with a directory kubelet deleted with the pod.
        var tmp = TmpPath(volume);
        CreateOwnDirectory(tmp, "StateDirectory");
        var arguments = S3fsArguments.Build(volume.Source, mountPoint, passwd, cache, tmp);
        var child = launcher.Start(new S3fsLaunch(arguments, LogPath(volume), CgroupName(volume), MemoryLimit(volume)));
        volume.Child = child;
        LogChildStarted(volume.VolumeId, child.Pid, volume.StagingPath);
        var deadline = time.GetTimestamp();
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (child.Exited.IsCompleted)
                {
                    var code = await child.Exited.ConfigureAwait(false);
                    throw ChildFailed(volume, child, $"s3fs exited with code {code} before the mount was ready");
                }
                // Taken before the look, awaited after it: a mount made in between still wakes us.
                var mountTableChanged = mounter.NextMountTableChange();
                var mount = mounter.FindMount(mountPoint);
                if (mount is { IsFuse: true } && await StatBeforeDeadlineAsync(volume, child, mountPoint, deadline, cancellationToken).ConfigureAwait(false) == 0)
                {
                    // s3fs 1.90 mounts first and checks the bucket and credentials inside its FUSE
                    // init, then exits (with code 0!) when they are wrong. A stat of a name that
                    // does not exist makes it ask S3 (HEAD) with the credentials: ENOENT means S3
                    // answered and let us in.
                    var probe = await StatBeforeDeadlineAsync(volume, child, Path.Combine(mountPoint, ReadinessProbeName), deadline, cancellationToken).ConfigureAwait(false);
                    if (probe is Errno.EACCES or Errno.EPERM)
                    {
                        throw ChildFailed(volume, child, "S3 denied access (check the credentials and the bucket policy)", VolumeErrorKind.PermissionDenied);
                    }
                    if (probe is 0 or Errno.ENOENT && !child.Exited.IsCompleted)
                    {
                        ownership.MoveStrayFilesAside(volume);
                        MountOwnership.MountOrExplain("staging_path", () => mounter.Bind(mountPoint, volume.StagingPath, readOnly: false, mount.Device));
                        volume.Device = mount.Device;
                        child.MountAnswered();
                        volume.OomKillsSeen = launcher.OomKills(child.Record.Cgroup);
                        break;
                    }
                }
                if (time.GetElapsedTime(deadline) > settings.MountTimeout)
                {
                    throw ChildFailed(volume, child, $"the mount was not ready within {settings.MountTimeout.TotalSeconds:0} s", VolumeErrorKind.Unavailable);
                }
                // Not mounted yet: the mount table's change wakes us the moment s3fs mounts (MountRecheck only
                // bounds a missed wake-up). Mounted but not answering yet: s3fs is still in its FUSE init or
                // asking S3, which no mount table change announces; look again soon.
                var wait = mount is { IsFuse: true }
                    ? Task.Delay(AnswerRecheck, time, cancellationToken)
                    : Task.WhenAny(mountTableChanged, Task.Delay(MountRecheck, time, cancellationToken));
                await Task.WhenAny(child.Exited, wait).ConfigureAwait(false);
            }
        }
        catch
        {
            child.Kill();
            await child.Exited.ConfigureAwait(false);
            // The staging bind is the last step and cannot have been made: only s3fs's own mount goes.
            mounter.UnmountAllLayers(mountPoint);
            volume.Child = null;
            volume.Device = string.Empty;
            child.Dispose();
            throw;
        }
    }

    public TimeSpan Grace => settings.ShutdownGrace;

    /// <summary>SIGTERM (so buffered writes reach S3), then SIGKILL after the shutdown grace.</summary>
    public Task StopAsync(ManagedVolume volume) => StopAsync(volume, settings.ShutdownGrace);

    public static async Task StopAsync(ManagedVolume volume, TimeSpan grace)
    {
        var child = volume.Child;
        if (child is null)
        {
            return;
        }
        volume.Child = null;
        await child.StopAsync(grace).ConfigureAwait(false);
        child.Dispose();
    }

    /// <summary>
    /// Only the staging mount goes before a restart (s3fs needs its mountpoint). The publish targets
    /// keep the dead mount until the new s3fs answers: a target must never be an empty directory on
    /// the node's disk, where a container started meanwhile would write without an error.
    /// </summary>
    public void UnmountStaging(ManagedVolume volume)
    {
        mounter.UnmountAllLayers(volume.StagingPath);
        mounter.UnmountAllLayers(PrivateMountPath(volume));
        volume.Device = string.Empty;
    }

    /// <summary>
    /// After the volume's s3fs has stopped for good (unstage, drain, a failed first stage): its private
    /// mount point, and its use_cache and tmp directories with what s3fs left there (the cache can
    /// hold gigabytes of object copies on the node's disk; nothing else ever removes it).
    /// </summary>
    public void RemoveVolumeDirectories(ManagedVolume volume)
    {
        try
        {
            Directory.Delete(PrivateMountPath(volume));
        }
        catch (IOException)
        {
            // Gone already, or (after a failed unmount) still a mount point: the next start clears it.
        }
        foreach (var directory in (string[])[CachePath(volume), TmpPath(volume)])
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                LogDirectoryNotRemoved(volume.VolumeId, directory, e.Message);
            }
        }
    }

    private string CachePath(ManagedVolume volume) => Path.Combine(settings.CacheDirectory, CredentialStore.FileName(volume.VolumeId));

    private string TmpPath(ManagedVolume volume) => Path.Combine(settings.StateDirectory, "tmp", CredentialStore.FileName(volume.VolumeId));

    /// <summary>s3fs does not print secrets, but make sure: the stored key material never reaches a message.</summary>
    public string Redact(string text, ManagedVolume volume)
    {
        try
        {
            var passwd = credentials.PasswdFile(volume.VolumeId);
            if (File.Exists(passwd))
            {
                foreach (var part in File.ReadAllText(passwd).Trim().Split(':'))
                {
                    if (part.Length >= 4)
                    {
                        text = text.Replace(part, "[REDACTED]", StringComparison.Ordinal);
                    }
                }
            }
        }
        catch (IOException)
        {
        }
        return text;
    }

    /// <summary>Whether the kernel OOM-killed a process of this volume's cgroup since it started (its memory limit).</summary>
    public bool OomKilled(ManagedVolume volume)
    {
        var cgroup = volume.Child?.Record.Cgroup ?? string.Empty;
        var kills = launcher.OomKills(cgroup);
        var seen = volume.OomKillsSeen;
        volume.OomKillsSeen = kills;
        return kills > seen;
    }

    public string MemoryLimitText(ManagedVolume volume) =>
        MemoryLimit(volume) is { } bytes ? $"{bytes / (1024 * 1024)} MiB" : "no limit set";

    /// <summary>The volume's own limit (volume context memoryLimit) or the node-wide ChildMemoryMax.</summary>
    public long? MemoryLimit(ManagedVolume volume) =>
        volume.Source.Options.HasMemoryLimitBytes ? (long)volume.Source.Options.MemoryLimitBytes : settings.ChildMemoryMaxBytes;

    /// <summary>The volume is gone for good: its cgroup and log file go too.</summary>
    public void Release(ManagedVolume volume)
    {
        launcher.Release(CgroupName(volume), LogPath(volume));
        try
        {
            Directory.Delete(Path.Combine(settings.StateDirectory, "tmp", CredentialStore.FileName(volume.VolumeId)), recursive: true);
        }
        catch (IOException)
        {
            // Gone already.
        }
    }

    /// <summary>The per-volume log file s3fs appends to: under the state directory (a hostPath), so it outlives a supervisor restart.</summary>
    public string LogPath(ManagedVolume volume) => Path.Combine(settings.StateDirectory, "logs", CredentialStore.FileName(volume.VolumeId) + ".log");

    private static string CgroupName(ManagedVolume volume) => CredentialStore.FileName(volume.VolumeId);

    /// <summary>
    /// A directory of the supervisor's own (s3fs's cache or tmpdir), 0700. Failing to make one is the
    /// node's configuration, not the request's: under the node pod's read-only root a directory with no
    /// volume is read-only (EROFS), and the message says which setting needs a writable volume.
    /// </summary>
    private static void CreateOwnDirectory(string path, string setting)
    {
        try
        {
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VolumeException(VolumeErrorKind.FailedPrecondition, string.Empty,
                $"the supervisor cannot create {path}: {e.Message}; Supervisor__{setting} must be on a writable volume of the node pod");
        }
    }

    /// <summary>Where this volume's s3fs mounts: the supervisor's private directory, never a path a caller chose.</summary>
    private string PrivateMountPath(ManagedVolume volume) => Path.Combine(settings.MountDirectory, CredentialStore.FileName(volume.VolumeId));

    /// <summary>
    /// A stat through a mount whose s3fs is still in its FUSE init (which checks the bucket over the
    /// network) blocks until that check ends, possibly minutes against an unreachable endpoint. The stat
    /// runs on a worker and the mount timeout and cancellation still apply; the caller kills the child
    /// on failure, which makes the blocked stat return.
    /// </summary>
    private async Task<int> StatBeforeDeadlineAsync(ManagedVolume volume, IS3fsProcess child, string path, long started, CancellationToken cancellationToken)
    {
        var remaining = settings.MountTimeout - time.GetElapsedTime(started);
        var errno = await mounter.StatWithinAsync(path, remaining, time, cancellationToken).ConfigureAwait(false);
        if (errno is null)
        {
            throw ChildFailed(volume, child, $"the mount did not answer within {settings.MountTimeout.TotalSeconds:0} s (is the endpoint reachable?)", VolumeErrorKind.Unavailable);
        }
        return errno.Value;
    }

    private VolumeException ChildFailed(ManagedVolume volume, IS3fsProcess child, string what, VolumeErrorKind? known = null)
    {
        var tail = Redact(child.StderrTail, volume);
        var kind = known ?? (tail.Contains("invalid credentials", StringComparison.OrdinalIgnoreCase)
            || tail.Contains("403", StringComparison.Ordinal)
            || tail.Contains("SignatureDoesNotMatch", StringComparison.Ordinal)
            || tail.Contains("InvalidAccessKeyId", StringComparison.Ordinal)
            ? VolumeErrorKind.PermissionDenied
            : tail.Contains("NoSuchBucket", StringComparison.Ordinal) || tail.Contains("bucket not found", StringComparison.OrdinalIgnoreCase)
                ? VolumeErrorKind.NotFound
                : VolumeErrorKind.Internal);
        var message = $"mounting {S3Location.Of(volume.Source)} at {volume.StagingPath} failed: {what}" + (tail.Length > 0 ? $"; s3fs said: {tail}" : string.Empty);
        return new VolumeException(kind, string.Empty, message);
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Volume {VolumeId}: s3fs pid {Pid} started for {StagingPath}")]
    private partial void LogChildStarted(string volumeId, int pid, string stagingPath);

    [LoggerMessage(EventId = 1017, Level = LogLevel.Warning, Message = "Volume {VolumeId}: {Directory} was not removed: {Reason}")]
    private partial void LogDirectoryNotRemoved(string volumeId, string directory, string reason);
}

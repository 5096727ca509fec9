using System.Diagnostics;
using S3Supervisor.Supervisor.Interop;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.IntegrationTests.Recovery;

/// <summary>A bare s3fs in the foreground at a mount point, for tests that kill it on purpose.</summary>
internal sealed class S3fsInstance : IAsyncDisposable
{
    private readonly Process _process;

    private S3fsInstance(Process process, string mountPoint, MountEntry entry)
    {
        _process = process;
        MountPoint = mountPoint;
        Entry = entry;
    }

    public string MountPoint { get; }

    /// <summary>Its mountinfo line in the test's namespace (its Device is the FUSE connection).</summary>
    public MountEntry Entry { get; }

    public int Pid => _process.Id;

    public static async Task<S3fsInstance> StartAsync(string bucket, string mountPoint, string passwdFile, string endpoint)
    {
        var start = new ProcessStartInfo("s3fs")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { bucket, mountPoint, "-f", "-o", $"passwd_file={passwdFile},url={endpoint},use_path_request_style,stat_cache_expire=1" })
        {
            start.ArgumentList.Add(argument);
        }
        var before = MountInfo.At(MountInfo.Read(), mountPoint)?.MountId;
        var process = Process.Start(start) ?? throw new InvalidOperationException("s3fs did not start");
        var stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(20))
        {
            var entry = MountInfo.At(MountInfo.Read(), mountPoint);
            if (entry is { FsType: "fuse.s3fs" } && entry.MountId != before && Libc.StatErrno(mountPoint, out _) == 0)
            {
                return new S3fsInstance(process, mountPoint, entry);
            }
            if (process.HasExited)
            {
                throw new InvalidOperationException($"s3fs exited with {process.ExitCode}: {await stderr}");
            }
            await Task.Delay(20);
        }
        process.Kill();
        throw new TimeoutException($"s3fs did not mount {mountPoint} within 20 s");
    }

    /// <summary>kill -9: the FUSE connection dies and every copy of the mount answers ENOTCONN.</summary>
    public async Task KillAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
    }

    public async ValueTask DisposeAsync()
    {
        // Lazy unmount first (a dead connection cannot be unmounted any other way), then the process.
        if (MountInfo.At(MountInfo.Read(), MountPoint)?.MountId == Entry.MountId)
        {
            Libc.Unmount(MountPoint, detach: true);
        }
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        _process.Dispose();
    }
}

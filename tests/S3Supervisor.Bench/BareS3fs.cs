using System.Diagnostics;
using S3Supervisor.TestKit;

namespace S3Supervisor.Bench;

/// <summary>Where one bare s3fs should mount: <c>bucket[:/prefix]</c> at <paramref name="MountPoint"/>.</summary>
internal sealed record BareTarget(string Bucket, string? Prefix, string MountPoint);

/// <summary>The S3 endpoint and a 0600 passwd file for the bare baseline mounts.</summary>
internal sealed record BareSettings(string Endpoint, string Region, string PasswdFile);

/// <summary>
/// The baseline: a bare <c>s3fs -f</c>, with the same core options the supervisor gives its children
/// (url, endpoint=region, passwd_file, use_path_request_style, allow_other), timed from spawn until
/// mountinfo shows the FUSE mount and a stat of the mount point succeeds (polled every 2 ms).
/// </summary>
internal sealed class BareS3fs : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _tail = new();
    private int _disposed;

    private BareS3fs(Process process, string mountPoint)
    {
        _process = process;
        MountPoint = mountPoint;
    }

    public string MountPoint { get; }

    public int Pid => _process.Id;

    /// <summary>From just before spawning (of the whole batch, for <see cref="MountManyAsync"/>) to this mount's readiness.</summary>
    public TimeSpan MountTime { get; private set; }

    private string Tail
    {
        get
        {
            lock (_tail)
            {
                return string.Join('\n', _tail);
            }
        }
    }

    public static async Task<BareS3fs> MountAsync(BareTarget target, BareSettings settings, TimeSpan timeout, CancellationToken cancellationToken) =>
        (await MountManyAsync([target], settings, timeout, cancellationToken))[0];

    /// <summary>
    /// Spawns one s3fs per target all at once and waits until every one is mounted. On failure
    /// everything started here is unmounted and stopped before the exception leaves.
    /// </summary>
    public static async Task<IReadOnlyList<BareS3fs>> MountManyAsync(IReadOnlyList<BareTarget> targets, BareSettings settings, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var s3fs = Prerequisites.Which("s3fs") ?? throw new InvalidOperationException(Prerequisites.S3fsMissing());
        foreach (var target in targets)
        {
            Directory.CreateDirectory(target.MountPoint);
        }
        var mounts = new List<BareS3fs>(targets.Count);
        try
        {
            var clock = Stopwatch.StartNew();
            foreach (var target in targets)
            {
                mounts.Add(Start(s3fs, target, settings));
            }
            var pending = new HashSet<BareS3fs>(mounts);
            while (pending.Count > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (clock.Elapsed > timeout)
                {
                    var first = pending.First();
                    throw new TimeoutException($"{pending.Count} of {targets.Count} bare s3fs mounts not ready within {timeout.TotalSeconds:0} s; e.g. {first.MountPoint}: {first.Tail}");
                }
                var table = MountTable.Read();
                foreach (var mount in pending.ToArray())
                {
                    if (mount._process.HasExited)
                    {
                        await mount._process.WaitForExitAsync(cancellationToken);
                        throw new InvalidOperationException($"bare s3fs for {mount.MountPoint} exited with code {mount._process.ExitCode} before mounting: {mount.Tail}");
                    }
                    var entry = table.LastOrDefault(e => e.MountPoint == mount.MountPoint);
                    if (entry is not null && entry.FileSystemType.StartsWith("fuse", StringComparison.Ordinal) && CanStat(mount.MountPoint))
                    {
                        mount.MountTime = clock.Elapsed;
                        pending.Remove(mount);
                    }
                }
                if (pending.Count > 0)
                {
                    await Task.Delay(2, cancellationToken);
                }
            }
            return mounts;
        }
        catch
        {
            await DisposeAllAsync(mounts);
            throw;
        }
    }

    public static async Task DisposeAllAsync(IEnumerable<BareS3fs> mounts)
    {
        await Task.WhenAll(mounts.Select(m => m.DisposeAsync().AsTask()));
    }

    /// <summary>Unmounts (s3fs then exits by itself), or lazily unmounts and kills it when that does not work.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        try
        {
            if (MountTable.Find(MountPoint) is { FileSystemType: var type } && type.StartsWith("fuse", StringComparison.Ordinal))
            {
                var umount = await ProcessRunner.RunAsync("umount", [MountPoint], new ProcessRunOptions { Timeout = TimeSpan.FromSeconds(15) });
                if (!umount.Succeeded)
                {
                    await ProcessRunner.RunAsync("umount", ["-l", MountPoint], new ProcessRunOptions { Timeout = TimeSpan.FromSeconds(10) });
                }
            }
            if (!_process.HasExited)
            {
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                try
                {
                    await _process.WaitForExitAsync(wait.Token);
                }
                catch (OperationCanceledException)
                {
                    await ProcessInfo.TerminateAsync(Pid, TimeSpan.FromSeconds(2));
                }
            }
        }
        finally
        {
            _process.Dispose();
        }
    }

    private static BareS3fs Start(string s3fs, BareTarget target, BareSettings settings)
    {
        var start = new ProcessStartInfo(s3fs)
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add(target.Prefix is null ? target.Bucket : $"{target.Bucket}:/{target.Prefix.Trim('/')}");
        start.ArgumentList.Add(target.MountPoint);
        start.ArgumentList.Add("-f");
        start.ArgumentList.Add("-o");
        start.ArgumentList.Add($"url={settings.Endpoint.TrimEnd('/')},passwd_file={settings.PasswdFile},endpoint={settings.Region},use_path_request_style,allow_other");
        var process = new Process { StartInfo = start };
        var mount = new BareS3fs(process, target.MountPoint);
        process.ErrorDataReceived += (_, e) => mount.Remember(e.Data);
        process.OutputDataReceived += (_, e) => mount.Remember(e.Data);
        process.Start();
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        return mount;
    }

    private static bool CanStat(string path)
    {
        try
        {
            _ = File.GetAttributes(path);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private void Remember(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_tail)
        {
            _tail.Enqueue(line);
            while (_tail.Count > 20)
            {
                _tail.Dequeue();
            }
        }
    }
}

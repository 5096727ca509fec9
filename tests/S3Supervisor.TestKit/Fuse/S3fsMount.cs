using System.Diagnostics;
using System.Globalization;

namespace S3Supervisor.TestKit;

/// <summary>Settings of a bare s3fs mount.</summary>
public sealed class S3fsMountOptions
{
    /// <summary>Where to mount; default: <c>mnt</c> inside the mount's own scratch directory.</summary>
    public string? MountPoint { get; init; }

    /// <summary>Mount only this prefix of the bucket (<c>bucket:/prefix</c>).</summary>
    public string? Prefix { get; init; }

    /// <summary>The signing region (s3fs's <c>endpoint=</c>), as the supervisor gives it; default: s3fs's own.</summary>
    public string? Region { get; init; }

    /// <summary>More <c>-o</c> options, e.g. "ro" or "allow_other".</summary>
    public IReadOnlyList<string> ExtraOptions { get; init; } = [];

    /// <summary>What counts as mounted once mountinfo shows the FUSE mount.</summary>
    public S3fsReadiness Readiness { get; init; } = S3fsReadiness.Listing;

    /// <summary>How often readiness is polled.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(5);

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>When a bare s3fs mount counts as ready, after mountinfo shows it.</summary>
public enum S3fsReadiness
{
    /// <summary>A listing of the mount point works (s3fs answered a LIST).</summary>
    Listing,

    /// <summary>A stat of the mount point works (what the benchmark's baseline times).</summary>
    Stat,
}

/// <summary>One mount of <see cref="S3fsMount.MountManyAsync"/>: a bucket and its settings.</summary>
public sealed record S3fsMountRequest(string Bucket, S3fsMountOptions Options);

/// <summary>
/// A bare s3fs mount for tests and benchmarks (the product's own mounts go through the supervisor):
/// <c>s3fs BUCKET MNT -f -o passwd_file=...,url=...,use_path_request_style</c> with the keys in a
/// 0600 passwd file in a scratch directory. <see cref="MountAsync(RgwServer, string, S3fsMountOptions?, CancellationToken)"/>
/// returns once mountinfo shows the mount and a listing through it works (or a stat, as asked);
/// <see cref="MountManyAsync"/> starts several at once. Dispose unmounts (lazily if s3fs is dead),
/// stops s3fs and deletes the scratch directory.
/// </summary>
public sealed class S3fsMount : IAsyncDisposable
{
    private const int TailLines = 40;
    private readonly ScratchDirectory directory;
    private readonly Process process;
    private readonly S3fsReadiness readiness;
    private readonly Queue<string> stderrTail = new();
    private int disposed;
    private bool started;

    private S3fsMount(ScratchDirectory directory, Process process, string mountPoint, S3fsReadiness readiness)
    {
        this.directory = directory;
        this.process = process;
        this.readiness = readiness;
        MountPoint = mountPoint;
        process.ErrorDataReceived += (_, e) => Remember(e.Data);
        process.OutputDataReceived += (_, e) => Remember(e.Data);
    }

    public string MountPoint { get; }

    public int Pid => process.Id;

    /// <summary>From starting s3fs (the first of a batch) to the mount's readiness.</summary>
    public TimeSpan MountTime { get; private set; }

    /// <summary>True while the s3fs process runs.</summary>
    public bool IsAlive => ProcessInfo.IsRunning(Pid);

    /// <summary>The last lines s3fs printed.</summary>
    public string OutputTail
    {
        get
        {
            lock (stderrTail)
            {
                return string.Join('\n', stderrTail);
            }
        }
    }

    public static Task<S3fsMount> MountAsync(RgwServer server, string bucket, S3fsMountOptions? options = null, CancellationToken cancellationToken = default) =>
        MountAsync(server.Endpoint, server.AccessKey, server.SecretKey, bucket, options, cancellationToken);

    public static async Task<S3fsMount> MountAsync(
        string endpoint,
        string accessKey,
        string secretKey,
        string bucket,
        S3fsMountOptions? options = null,
        CancellationToken cancellationToken = default) =>
        (await MountManyAsync(endpoint, accessKey, secretKey, [new S3fsMountRequest(bucket, options ?? new S3fsMountOptions())], cancellationToken).ConfigureAwait(false))[0];

    /// <summary>
    /// Prepares every mount (scratch directory, passwd file, mount point), then starts all the s3fs at
    /// once and waits until each is ready; each <see cref="MountTime"/> runs from just before the first
    /// start. The timeout and poll interval are the first request's. On failure everything started
    /// here is unmounted and stopped before the exception leaves.
    /// </summary>
    public static async Task<IReadOnlyList<S3fsMount>> MountManyAsync(
        string endpoint,
        string accessKey,
        string secretKey,
        IReadOnlyList<S3fsMountRequest> requests,
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfZero(requests.Count);
        var s3fs = Prerequisites.Which("s3fs") ?? throw new InvalidOperationException(Prerequisites.S3fsMissing());
        var mounts = new List<S3fsMount>(requests.Count);
        try
        {
            foreach (var request in requests)
            {
                mounts.Add(await PrepareAsync(s3fs, endpoint, accessKey, secretKey, request, cancellationToken).ConfigureAwait(false));
            }
            var clock = Stopwatch.StartNew();
            foreach (var mount in mounts)
            {
                mount.Start();
            }
            await WaitForMountsAsync(mounts, clock, requests[0].Options, cancellationToken).ConfigureAwait(false);
            return mounts;
        }
        catch
        {
            await Task.WhenAll(mounts.Select(m => m.DisposeAsync().AsTask())).ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<S3fsMount> PrepareAsync(string s3fs, string endpoint, string accessKey, string secretKey, S3fsMountRequest request, CancellationToken cancellationToken)
    {
        var options = request.Options;
        var directory = await ScratchDirectory.CreateAsync("s3fs", cancellationToken).ConfigureAwait(false);
        try
        {
            var passwd = directory.Combine("passwd");
            await File.WriteAllTextAsync(passwd, "", cancellationToken).ConfigureAwait(false);
            File.SetUnixFileMode(passwd, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            await File.WriteAllTextAsync(passwd, $"{accessKey}:{secretKey}\n", cancellationToken).ConfigureAwait(false);
            var mountPoint = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.MountPoint ?? directory.Combine("mnt")));
            Directory.CreateDirectory(mountPoint);

            var start = new ProcessStartInfo(s3fs)
            {
                UseShellExecute = false,
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                RedirectStandardInput = true,
            };
            start.ArgumentList.Add(options.Prefix is null ? request.Bucket : $"{request.Bucket}:/{options.Prefix.Trim('/')}");
            start.ArgumentList.Add(mountPoint);
            start.ArgumentList.Add("-f");
            start.ArgumentList.Add("-o");
            var s3fsOptions = new List<string> { $"passwd_file={passwd}", $"url={endpoint}" };
            if (options.Region is not null)
            {
                s3fsOptions.Add($"endpoint={options.Region}");
            }
            s3fsOptions.Add("use_path_request_style");
            s3fsOptions.AddRange(options.ExtraOptions);
            start.ArgumentList.Add(string.Join(',', s3fsOptions));
            return new S3fsMount(directory, new Process { StartInfo = start }, mountPoint, options.Readiness);
        }
        catch
        {
            await directory.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>kill -9 s3fs: the mount stays in the table and answers ENOTCONN ("Transport endpoint is not connected").</summary>
    public async Task KillAsync()
    {
        ProcessInfo.Kill(Pid);
        await process.WaitForExitAsync().ConfigureAwait(false);
    }

    /// <summary>Unmounts, stops s3fs and removes the passwd file and scratch directory.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        try
        {
            if (started && MountTable.Find(MountPoint) is not null)
            {
                // A live s3fs flushes and exits when its mount goes away; a dead one leaves a stale entry.
                var umount = await ProcessRunner.RunAsync("umount", [MountPoint], new ProcessRunOptions { Timeout = TimeSpan.FromSeconds(10) }).ConfigureAwait(false);
                if (!umount.Succeeded)
                {
                    await ProcessRunner.RunAsync("umount", ["-l", MountPoint], new ProcessRunOptions { Timeout = TimeSpan.FromSeconds(10) }).ConfigureAwait(false);
                }
            }

            if (started && !process.HasExited)
            {
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(3));
                try
                {
                    await process.WaitForExitAsync(wait.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    await ProcessInfo.TerminateAsync(Pid, TimeSpan.FromSeconds(2)).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            process.Dispose();
            await directory.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// One loop for the whole batch: the mount table is read once a tick however many are pending, so
    /// waiting for fifty mounts costs what waiting for one does.
    /// </summary>
    private static async Task WaitForMountsAsync(List<S3fsMount> mounts, Stopwatch clock, S3fsMountOptions options, CancellationToken cancellationToken)
    {
        var pending = new List<S3fsMount>(mounts);
        string? lastError = null;
        while (pending.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (clock.Elapsed > options.Timeout)
            {
                var first = pending[0];
                throw new TimeoutException(string.Create(
                    CultureInfo.InvariantCulture,
                    $"{pending.Count} of {mounts.Count} s3fs mounts not ready within {options.Timeout.TotalSeconds:0} s; e.g. {first.MountPoint} ({lastError ?? "no mount"}): {first.OutputTail}"));
            }
            var table = MountTable.Read();
            foreach (var mount in pending.ToArray())
            {
                if (mount.process.HasExited)
                {
                    await mount.process.WaitForExitAsync(cancellationToken).ConfigureAwait(false); // flush the output readers
                    throw new InvalidOperationException(string.Create(
                        CultureInfo.InvariantCulture,
                        $"s3fs exited with code {mount.process.ExitCode} before mounting {mount.MountPoint}: {mount.OutputTail}"));
                }
                if (MountTable.Find(table, mount.MountPoint) is { FileSystemType: var type } && type.StartsWith("fuse", StringComparison.Ordinal))
                {
                    try
                    {
                        mount.Probe();
                        mount.MountTime = clock.Elapsed;
                        pending.Remove(mount);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        lastError = e.Message;
                    }
                }
            }
            if (pending.Count > 0)
            {
                await Task.Delay(options.PollInterval, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private void Start()
    {
        process.Start();
        started = true;
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
    }

    /// <summary>Throws unless the mount answers the way <see cref="readiness"/> asks.</summary>
    private void Probe()
    {
        if (readiness == S3fsReadiness.Listing)
        {
            _ = Directory.GetFileSystemEntries(MountPoint);
        }
        else
        {
            _ = File.GetAttributes(MountPoint);
        }
    }

    private void Remember(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (stderrTail)
        {
            stderrTail.Enqueue(line);
            while (stderrTail.Count > TailLines)
            {
                stderrTail.Dequeue();
            }
        }
    }
}

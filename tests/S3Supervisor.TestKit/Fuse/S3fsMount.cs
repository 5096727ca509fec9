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

    /// <summary>More <c>-o</c> options, e.g. "ro" or "allow_other".</summary>
    public IReadOnlyList<string> ExtraOptions { get; init; } = [];

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// A bare s3fs mount for tests and benchmarks (the product's own mounts go through the supervisor):
/// <c>s3fs BUCKET MNT -f -o passwd_file=...,url=...,use_path_request_style</c> with the keys in a
/// 0600 passwd file in a scratch directory. <see cref="MountAsync(RgwServer, string, S3fsMountOptions?, CancellationToken)"/>
/// returns once mountinfo shows the mount and a listing through it works.
/// Dispose unmounts (lazily if s3fs is dead), stops s3fs and deletes the scratch directory.
/// </summary>
public sealed class S3fsMount : IAsyncDisposable
{
    private const int TailLines = 40;
    private readonly ScratchDirectory directory;
    private readonly Process process;
    private readonly Queue<string> stderrTail = new();
    private int disposed;

    private S3fsMount(ScratchDirectory directory, Process process, string mountPoint)
    {
        this.directory = directory;
        this.process = process;
        MountPoint = mountPoint;
        process.ErrorDataReceived += (_, e) => Remember(e.Data);
        process.OutputDataReceived += (_, e) => Remember(e.Data);
    }

    public string MountPoint { get; }

    public int Pid => process.Id;

    /// <summary>From starting s3fs to the first successful listing of the mount point.</summary>
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
        CancellationToken cancellationToken = default)
    {
        options ??= new S3fsMountOptions();
        var s3fs = Prerequisites.Which("s3fs") ?? throw new InvalidOperationException(Prerequisites.S3fsMissing());
        var directory = await ScratchDirectory.CreateAsync("s3fs", cancellationToken).ConfigureAwait(false);
        S3fsMount? mount = null;
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
            start.ArgumentList.Add(options.Prefix is null ? bucket : $"{bucket}:/{options.Prefix.Trim('/')}");
            start.ArgumentList.Add(mountPoint);
            start.ArgumentList.Add("-f");
            start.ArgumentList.Add("-o");
            start.ArgumentList.Add(string.Join(',', new[] { $"passwd_file={passwd}", $"url={endpoint}", "use_path_request_style" }.Concat(options.ExtraOptions)));

            var clock = Stopwatch.StartNew();
            var process = new Process { StartInfo = start };
            mount = new S3fsMount(directory, process, mountPoint);
            process.Start();
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            await mount.WaitForMountAsync(options.Timeout, cancellationToken).ConfigureAwait(false);
            mount.MountTime = clock.Elapsed;
            return mount;
        }
        catch
        {
            if (mount is not null)
            {
                await mount.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                await directory.DisposeAsync().ConfigureAwait(false);
            }

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
            if (MountTable.Find(MountPoint) is not null)
            {
                // A live s3fs flushes and exits when its mount goes away; a dead one leaves a stale entry.
                var umount = await ProcessRunner.RunAsync("umount", [MountPoint], new ProcessRunOptions { Timeout = TimeSpan.FromSeconds(10) }).ConfigureAwait(false);
                if (!umount.Succeeded)
                {
                    await ProcessRunner.RunAsync("umount", ["-l", MountPoint], new ProcessRunOptions { Timeout = TimeSpan.FromSeconds(10) }).ConfigureAwait(false);
                }
            }

            if (!process.HasExited)
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

    private async Task WaitForMountAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        string? lastError = null;
        while (DateTime.UtcNow < deadline)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (process.HasExited)
            {
                process.WaitForExit(); // flush the output readers
                throw new InvalidOperationException(string.Create(
                    CultureInfo.InvariantCulture,
                    $"s3fs exited with code {process.ExitCode} before mounting {MountPoint}: {OutputTail}"));
            }

            if (MountTable.Find(MountPoint) is { FileSystemType: var type } && type.StartsWith("fuse", StringComparison.Ordinal))
            {
                try
                {
                    _ = Directory.GetFileSystemEntries(MountPoint);
                    return;
                }
                catch (IOException e)
                {
                    lastError = e.Message;
                }
            }

            await Task.Delay(5, cancellationToken).ConfigureAwait(false);
        }

        throw new TimeoutException($"s3fs did not mount {MountPoint} within {timeout.TotalSeconds:0} s ({lastError ?? "no mount"}): {OutputTail}");
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

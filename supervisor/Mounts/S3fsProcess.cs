using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using S3Supervisor.Supervisor.Interop;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>One running s3fs child.</summary>
public interface IS3fsProcess : IDisposable
{
    int Pid { get; }

    /// <summary>Completes with the exit code when the child exits (for any reason).</summary>
    Task<int> Exited { get; }

    /// <summary>The last lines s3fs wrote to stderr (bounded), for error messages.</summary>
    string StderrTail { get; }

    /// <summary>SIGTERM (s3fs flushes and unmounts), then SIGKILL after the grace period.</summary>
    Task StopAsync(TimeSpan grace);

    void Kill();
}

public interface IS3fsLauncher
{
    IS3fsProcess Start(IReadOnlyList<string> arguments);
}

/// <summary>
/// Starts s3fs as a direct child. The child's environment is rebuilt from nothing (PATH only),
/// so no variable of the supervisor's, secret or not, reaches it. Descriptors do not
/// leak: Program marks every inherited one close-on-exec at start.
/// </summary>
public sealed partial class S3fsLauncher : IS3fsLauncher
{
    private readonly string _s3fsPath;
    private readonly int _oomScoreAdj;
    private readonly ILogger<S3fsLauncher> _logger;

    public S3fsLauncher(string s3fsPath, int oomScoreAdj, ILogger<S3fsLauncher> logger)
    {
        _s3fsPath = s3fsPath;
        _oomScoreAdj = oomScoreAdj;
        _logger = logger;
    }

    public IS3fsProcess Start(IReadOnlyList<string> arguments)
    {
        var info = new ProcessStartInfo(_s3fsPath)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        info.Environment.Clear();
        info.Environment["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        var process = Process.Start(info) ?? throw new InvalidOperationException("s3fs did not start");
        process.StandardInput.Close();
        var child = new S3fsProcess(process);
        try
        {
            File.WriteAllText($"/proc/{child.Pid.ToString(CultureInfo.InvariantCulture)}/oom_score_adj", _oomScoreAdj.ToString(CultureInfo.InvariantCulture));
        }
        catch (IOException e)
        {
            LogOomScoreFailed(child.Pid, e.Message);
        }
        catch (UnauthorizedAccessException e)
        {
            LogOomScoreFailed(child.Pid, e.Message);
        }
        return child;
    }

    [LoggerMessage(EventId = 1100, Level = LogLevel.Warning, Message = "Could not set oom_score_adj of s3fs pid {Pid}: {Reason}")]
    private partial void LogOomScoreFailed(int pid, string reason);

    private sealed class S3fsProcess : IS3fsProcess
    {
        private const int MaxTailLines = 40;
        private readonly Process _process;
        private readonly Queue<string> _tail = new();
        private readonly Lock _tailLock = new();
        private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public S3fsProcess(Process process)
        {
            _process = process;
            Pid = process.Id;
            // s3fs 1.90 in the foreground (-f) writes its log, errors included, to stdout; libfuse
            // and the loader write to stderr. Both feed one tail.
            process.ErrorDataReceived += (_, e) => Append(e.Data, _stderrClosed);
            process.OutputDataReceived += (_, e) => Append(e.Data, _stdoutClosed);
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            Exited = WaitAsync(process, Task.WhenAll(_stderrClosed.Task, _stdoutClosed.Task));
        }

        public int Pid { get; }

        public Task<int> Exited { get; }

        public string StderrTail
        {
            get
            {
                lock (_tailLock)
                {
                    return string.Join('\n', _tail);
                }
            }
        }

        public async Task StopAsync(TimeSpan grace)
        {
            if (Exited.IsCompleted)
            {
                return;
            }
            Libc.Kill(Pid, 15);
            if (await Task.WhenAny(Exited, Task.Delay(grace)).ConfigureAwait(false) != Exited)
            {
                Kill();
                await Exited.ConfigureAwait(false);
            }
        }

        public void Kill()
        {
            if (!Exited.IsCompleted)
            {
                Libc.Kill(Pid, 9);
            }
        }

        public void Dispose() => _process.Dispose();

        private void Append(string? line, TaskCompletionSource closed)
        {
            if (line is null)
            {
                closed.TrySetResult();
                return;
            }
            lock (_tailLock)
            {
                _tail.Enqueue(line.Length > 500 ? line[..500] : line);
                while (_tail.Count > MaxTailLines)
                {
                    _tail.Dequeue();
                }
            }
        }

        /// <summary>
        /// The exit, and the end of stderr: s3fs writes its reason just before exiting, and the
        /// exit can be seen before the reader has drained the pipe. A grandchild holding the pipe
        /// open must not delay the exit for long, hence the bound.
        /// </summary>
        private static async Task<int> WaitAsync(Process process, Task stderrClosed)
        {
            await process.WaitForExitAsync().ConfigureAwait(false);
            await Task.WhenAny(stderrClosed, Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false);
            return process.ExitCode;
        }
    }
}

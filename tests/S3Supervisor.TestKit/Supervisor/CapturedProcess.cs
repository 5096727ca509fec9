using System.Diagnostics;

namespace S3Supervisor.TestKit.Supervisor;

/// <summary>
/// A product executable (<see cref="ProductBinary"/>: the NativeAOT binary, or `dotnet &lt;assembly&gt;`) started with a given environment, every line it writes kept for assertions
/// (such as "no secret in the log"), stopped with SIGTERM then SIGKILL. The supervisor and plugin
/// fixtures are built on it.
/// </summary>
public sealed class CapturedProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];
    private readonly Lock _outputLock = new();

    private CapturedProcess(Process process)
    {
        _process = process;
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get
        {
            lock (_outputLock)
            {
                return string.Join('\n', _output);
            }
        }
    }

    /// <summary>
    /// Starts <paramref name="binary"/> (the AOT binary, or `dotnet x.dll`). With <paramref name="joinCgroups"/>
    /// (cgroup.procs files) a shell writes its own pid to each and then execs the binary, so the process is
    /// in those cgroups before its first instruction, as a container runtime places a container's first process.
    /// </summary>
    public static CapturedProcess Start(ProductBinary binary, IEnumerable<KeyValuePair<string, string>> environment, IReadOnlyList<string>? joinCgroups = null)
    {
        var info = binary.StartInfo();
        if (joinCgroups is not null)
        {
            var command = new[] { info.FileName }.Concat(info.ArgumentList).ToArray();
            info.FileName = "/bin/sh";
            info.ArgumentList.Clear();
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add("n=$1; shift; i=0; for f in \"$@\"; do i=$((i+1)); [ $i -gt $n ] && break; echo $$ > \"$f\" || exit 125; done; shift $n; exec \"$@\"");
            info.ArgumentList.Add("sh");
            info.ArgumentList.Add(joinCgroups.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            foreach (var file in joinCgroups)
            {
                info.ArgumentList.Add(file);
            }
            foreach (var part in command)
            {
                info.ArgumentList.Add(part);
            }
        }
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {binary.Describe()}");
        var captured = new CapturedProcess(process);
        process.OutputDataReceived += (_, e) => captured.Append(e.Data);
        process.ErrorDataReceived += (_, e) => captured.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return captured;
    }

    public Task WaitForExitAsync(CancellationToken cancellationToken = default) => _process.WaitForExitAsync(cancellationToken);

    /// <summary>SIGKILL and wait.</summary>
    public async Task KillAsync()
    {
        ProcessInfo.Signal(Pid, 9);
        await _process.WaitForExitAsync().ConfigureAwait(false);
    }

    /// <summary>SIGTERM, and SIGKILL when it has not exited within <paramref name="grace"/>. Returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan grace)
    {
        if (!_process.HasExited)
        {
            ProcessInfo.Signal(Pid, 15);
            using var cts = new CancellationTokenSource(grace);
            try
            {
                await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                await KillAsync().ConfigureAwait(false);
            }
        }
        return _process.ExitCode;
    }

    public void Dispose() => _process.Dispose();

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_outputLock)
        {
            _output.Add(line);
        }
    }
}

using System.Diagnostics;
using System.Text;

namespace S3Supervisor.TestKit;

/// <summary>Exit code and complete output of a finished command.</summary>
public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Throws <see cref="ProcessFailedException"/> (with the output) unless the command exited 0.</summary>
    public ProcessResult EnsureSuccess(string what) =>
        Succeeded ? this : throw new ProcessFailedException(what, this);

    /// <summary>The shape <c>StandInContainer.ExecAsync</c> returns.</summary>
    public (int ExitCode, string Stdout, string Stderr) ToTuple() => (ExitCode, Stdout, Stderr);
}

/// <summary>A command exited non-zero where success was expected.</summary>
public sealed class ProcessFailedException : Exception
{
    public ProcessFailedException(string what, ProcessResult result)
        : base($"{what} failed with exit code {result.ExitCode}: {Tail(result.Stderr)}{(result.Stderr.Length == 0 ? Tail(result.Stdout) : "")}")
    {
        Result = result;
    }

    public ProcessResult Result { get; }

    private static string Tail(string text) => text.Length <= 2000 ? text.Trim() : "..." + text[^2000..].Trim();
}

/// <summary>How to run one command.</summary>
public sealed class ProcessRunOptions
{
    /// <summary>The command is killed (with its process tree) and <see cref="TimeoutException"/> thrown after this long.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Written to the command's stdin, which is then closed. Null: stdin is empty.</summary>
    public string? StandardInput { get; init; }

    public string? WorkingDirectory { get; init; }

    /// <summary>Added to (or, with a null value, removed from) the inherited environment.</summary>
    public IReadOnlyDictionary<string, string?>? Environment { get; init; }
}

/// <summary>Runs a command to completion with a timeout and captures its output; no shell involved.</summary>
public static class ProcessRunner
{
    public static Task<ProcessResult> RunAsync(string fileName, params string[] arguments) =>
        RunAsync(fileName, arguments, options: null, CancellationToken.None);

    public static async Task<ProcessResult> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        ProcessRunOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        options ??= new ProcessRunOptions();
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        if (options.WorkingDirectory is not null)
        {
            startInfo.WorkingDirectory = options.WorkingDirectory;
        }

        if (options.Environment is not null)
        {
            foreach (var (name, value) in options.Environment)
            {
                if (value is null)
                {
                    startInfo.Environment.Remove(name);
                }
                else
                {
                    startInfo.Environment[name] = value;
                }
            }
        }

        using var process = new Process { StartInfo = startInfo };
        process.Start();
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            if (options.StandardInput is not null)
            {
                await process.StandardInput.WriteAsync(options.StandardInput).ConfigureAwait(false);
            }

            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The command exited without reading its input; its exit code tells the rest.
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Timeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            KillTree(process);
            var partialOut = await DrainAsync(stdout).ConfigureAwait(false);
            var partialErr = await DrainAsync(stderr).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            throw new TimeoutException(
                $"{Describe(fileName, startInfo.ArgumentList)} did not finish within {options.Timeout.TotalSeconds:0.#} s; stderr: {partialErr.Trim()} stdout: {partialOut.Trim()}");
        }

        // A grandchild that kept our pipes open must not hang the caller: give the readers a moment.
        return new ProcessResult(process.ExitCode, await DrainAsync(stdout).ConfigureAwait(false), await DrainAsync(stderr).ConfigureAwait(false));
    }

    /// <summary>Like <see cref="RunAsync(string, IEnumerable{string}, ProcessRunOptions?, CancellationToken)"/> but throws <see cref="ProcessFailedException"/> on a non-zero exit.</summary>
    public static async Task<ProcessResult> RunCheckedAsync(
        string fileName,
        IEnumerable<string> arguments,
        ProcessRunOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var list = arguments as IReadOnlyList<string> ?? arguments.ToList();
        var result = await RunAsync(fileName, list, options, cancellationToken).ConfigureAwait(false);
        return result.EnsureSuccess(Describe(fileName, list));
    }

    internal static string Describe(string fileName, IEnumerable<string> arguments)
    {
        var text = string.Join(' ', arguments.Prepend(fileName).Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"'{a}'" : a));
        return text.Length <= 200 ? text : text[..200] + "...";
    }

    private static async Task<string> DrainAsync(Task<string> reader)
    {
        var finished = await Task.WhenAny(reader, Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false);
        return finished == reader ? await reader.ConfigureAwait(false) : "";
    }

    private static void KillTree(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already exited
        }
    }
}

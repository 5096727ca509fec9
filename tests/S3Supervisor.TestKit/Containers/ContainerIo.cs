namespace S3Supervisor.TestKit.Containers;

/// <summary>An application container a scenario runs commands in: a <see cref="StandInContainer"/> or a <see cref="PodmanAppContainer"/>.</summary>
public interface IAppContainer
{
    string Name { get; }

    /// <summary>Runs <paramref name="argv"/> inside the container; never throws for a non-zero exit.</summary>
    Task<(int ExitCode, string Stdout, string Stderr)> ExecAsync(params string[] argv);
}

/// <summary>The application I/O a scenario keeps going across a disruption, counted.</summary>
public static class ContainerIo
{
    /// <summary>
    /// Writes and reads back /data/io.txt in a loop inside <paramref name="container"/> while
    /// <paramref name="disruption"/> runs (it gets a "wait for N more operations" function), then until
    /// a few more operations have completed after it: I/O is seen before, during and after, whatever
    /// the machine's speed. Returns the operations done and how many of them failed.
    /// </summary>
    public static async Task<(int Ops, int Failures)> WhileAsync(IAppContainer container, Func<Func<int, string, Task>, Task> disruption)
    {
        using var stop = new CancellationTokenSource();
        var ops = 0;
        var failures = 0;
        var lastError = "";
        Task WaitForOps(int count, string describe)
        {
            var from = Volatile.Read(ref ops);
            return Eventually.WaitAsync(() => Volatile.Read(ref ops) >= from + count, TimeSpan.FromSeconds(120), $"{count} operations: {describe}",
                () => $"{Volatile.Read(ref ops) - from} done, {Volatile.Read(ref failures)} failed, last error: {Volatile.Read(ref lastError)}");
        }
        var loop = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var content = $"tick {Volatile.Read(ref ops)}";
                var result = await container.ExecAsync("sh", "-c", $"echo '{content}' > /data/io.txt && cat /data/io.txt").ConfigureAwait(false);
                if (result.ExitCode != 0 || result.Stdout.Trim() != content)
                {
                    Interlocked.Increment(ref failures);
                    Volatile.Write(ref lastError, result.Stderr.Trim());
                }
                Interlocked.Increment(ref ops);
            }
        });
        try
        {
            await WaitForOps(3, "container I/O before the disruption").ConfigureAwait(false);
            await disruption(WaitForOps).ConfigureAwait(false);
            await WaitForOps(3, "container I/O after the disruption").ConfigureAwait(false);
        }
        finally
        {
            // Also when the disruption failed: the loop must not go on exec'ing into a container being disposed.
            await stop.CancelAsync().ConfigureAwait(false);
            await loop.ConfigureAwait(false);
        }
        return (Volatile.Read(ref ops), Volatile.Read(ref failures));
    }
}

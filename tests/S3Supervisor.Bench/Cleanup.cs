namespace S3Supervisor.Bench;

/// <summary>Clean-up steps that must all run: one failing step is reported, and the next ones still run.</summary>
internal static class Cleanup
{
    public static async Task StepAsync(string what, Func<Task> step)
    {
        try
        {
            await step();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"bench: clean-up of {what} failed: {e.Message}");
        }
    }

    public static Task StepAsync(string what, Action step) => StepAsync(what, () =>
    {
        step();
        return Task.CompletedTask;
    });

    /// <summary>Waits for every task; on the first failure cancels the rest through <paramref name="cancel"/>, lets them end, and rethrows that failure.</summary>
    public static async Task WhenAllOrFirstFailureAsync(IEnumerable<Task> tasks, CancellationTokenSource cancel)
    {
        var pending = tasks.ToList();
        while (pending.Count > 0)
        {
            var done = await Task.WhenAny(pending);
            pending.Remove(done);
            if (!done.IsCompletedSuccessfully)
            {
                await cancel.CancelAsync();
                await Task.WhenAll(pending).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                await done;
            }
        }
    }
}

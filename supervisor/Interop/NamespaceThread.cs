namespace S3Supervisor.Supervisor.Interop;

/// <summary>
/// Runs work on a thread of its own that first enters another namespace, and is thrown away afterwards.
/// </summary>
/// <remarks>
/// setns(2) changes the calling thread only, so the work runs on a fresh thread that is never
/// handed back to a pool: once the work returns the thread ends, and its namespaces end with it.
/// For the same reason the task completes with RunContinuationsAsynchronously, so the awaiting
/// code never continues on the foreign thread.
/// </remarks>
internal static class NamespaceThread
{
    public static Task<T> RunAsync<T>(string threadName, Action enter, Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(enter);
        ArgumentNullException.ThrowIfNull(work);
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                enter();
                completion.SetResult(work());
            }
            catch (Exception ex)
            {
                completion.SetException(ex);
            }
        })
        {
            IsBackground = true,
            Name = threadName,
        };
        thread.UnsafeStart();
        return completion.Task;
    }
}

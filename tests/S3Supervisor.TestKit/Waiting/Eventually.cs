using System.Diagnostics;

namespace S3Supervisor.TestKit;

/// <summary>
/// The one way a test waits for something: poll a condition under a generous deadline and fail with
/// what it waited for. Never "sleep, then assert": on a busy machine (2 cores, other builds) a fixed
/// sleep is sometimes too short, and a test that asserts something stays absent after a blind sleep
/// proves nothing when the system had no time to act. Wait for a positive sign that it had its chance
/// (a log line saying it tried, a request that arrived) and assert the absence after that.
/// </summary>
public static class Eventually
{
    /// <summary>The deadline when a test names none: long, because it only costs time when something is wrong.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);

    /// <summary>Waits until <paramref name="condition"/> holds; throws <see cref="TimeoutException"/> naming <paramref name="describe"/> (and <paramref name="state"/>, when given, as it was last).</summary>
    public static Task WaitAsync(Func<bool> condition, TimeSpan timeout, string describe, Func<string>? state = null) =>
        WaitAsync(() => Task.FromResult(condition()), timeout, describe, state);

    /// <inheritdoc cref="WaitAsync(Func{bool}, TimeSpan, string, Func{string}?)"/>
    public static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan timeout, string describe, Func<string>? state = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var stopwatch = Stopwatch.StartNew();
        while (!await condition().ConfigureAwait(false))
        {
            if (stopwatch.Elapsed >= timeout)
            {
                throw new TimeoutException($"waited {timeout.TotalSeconds:0.#} s for: {describe}" + (state is null ? string.Empty : $"\nlast state: {state()}"));
            }
            await Task.Delay(Poll).ConfigureAwait(false);
        }
    }

    /// <summary>Waits until <paramref name="read"/> returns a value that satisfies <paramref name="accept"/>, and returns it.</summary>
    public static async Task<T> ValueAsync<T>(Func<Task<T>> read, Func<T, bool> accept, TimeSpan timeout, string describe)
    {
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(accept);
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            var value = await read().ConfigureAwait(false);
            if (accept(value))
            {
                return value;
            }
            if (stopwatch.Elapsed >= timeout)
            {
                throw new TimeoutException($"waited {timeout.TotalSeconds:0.#} s for: {describe}\nlast value: {value}");
            }
            await Task.Delay(Poll).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Retries <paramref name="action"/> while it throws <typeparamref name="TException"/> (a file that is
    /// not there yet, a mount that still answers ENOTCONN); the last failure propagates after the deadline.
    /// </summary>
    public static async Task<T> SucceedsAsync<T, TException>(Func<Task<T>> action, TimeSpan timeout)
        where TException : Exception
    {
        ArgumentNullException.ThrowIfNull(action);
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await action().ConfigureAwait(false);
            }
            catch (TException) when (stopwatch.Elapsed < timeout)
            {
                await Task.Delay(Poll * 4).ConfigureAwait(false);
            }
        }
    }
}

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>The one retry formula: healing a volume and rebuilding after a restart both double the wait per failure, up to a cap.</summary>
public static class Backoff
{
    /// <summary>initial × 2^(attempt-1), at most <paramref name="max"/>; the exponent is capped so that a long run of failures cannot overflow.</summary>
    public static TimeSpan Delay(int attempt, TimeSpan initial, TimeSpan max)
    {
        var seconds = initial.TotalSeconds * Math.Pow(2, Math.Clamp(attempt - 1, 0, 20));
        return TimeSpan.FromSeconds(Math.Min(seconds, max.TotalSeconds));
    }
}

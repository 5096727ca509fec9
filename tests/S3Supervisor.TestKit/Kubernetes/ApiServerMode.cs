using System.Net;

namespace S3Supervisor.TestKit.Kubernetes;

/// <summary>
/// How the test API server behaves right now. Set with <see cref="TestApiServer.SetModeAsync"/>;
/// per-resource 403s are separate (<see cref="TestApiServer.ForbidResource"/>) and apply in every mode.
/// </summary>
public abstract record ApiServerMode
{
    private ApiServerMode()
    {
    }

    /// <summary>Answers every request at once.</summary>
    public static ApiServerMode Normal { get; } = new NormalMode();

    /// <summary>
    /// Not listening: the Kestrel server is stopped and open connections are dropped, so a client gets
    /// connection refused (<see cref="HttpRequestException"/>). Leaving this mode listens again on the same port.
    /// </summary>
    public static ApiServerMode Down { get; } = new DownMode();

    /// <summary>Every request gets 403 with a Forbidden <c>Status</c>, as with missing RBAC.</summary>
    public static ApiServerMode Forbidden { get; } = new ForbiddenMode();

    /// <summary>Every request is answered normally, but only after <paramref name="delay"/>.</summary>
    public static ApiServerMode Slow(TimeSpan delay) => new SlowMode(delay);

    /// <summary>Every request gets <paramref name="statusCode"/> (500, 503, 429, ...) with a matching <c>Status</c>.</summary>
    public static ApiServerMode Failing(HttpStatusCode statusCode) => new FailingMode(statusCode);

    public sealed record NormalMode : ApiServerMode;

    public sealed record DownMode : ApiServerMode;

    public sealed record ForbiddenMode : ApiServerMode;

    public sealed record SlowMode(TimeSpan Delay) : ApiServerMode;

    public sealed record FailingMode(HttpStatusCode StatusCode) : ApiServerMode;
}

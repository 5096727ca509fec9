namespace S3Supervisor.TestKit.Kubernetes;

/// <summary>Start-up settings of a <see cref="TestApiServer"/>.</summary>
public sealed class TestApiServerOptions
{
    /// <summary>TCP port on 127.0.0.1; 0 picks a free one. The port is kept across Down/up cycles.</summary>
    public int Port { get; init; }

    /// <summary>
    /// When set, every request must carry <c>Authorization: Bearer &lt;token&gt;</c> or gets 401, and
    /// <see cref="TestApiServer.WriteKubeconfig"/> and <see cref="TestApiServer.CreateClient"/> use it.
    /// </summary>
    public string? BearerToken { get; init; }

    /// <summary>The version reported at <c>/version</c> (major.minor.patch).</summary>
    public string KubernetesVersion { get; init; } = "1.33.1";
}

namespace S3Supervisor.TestKit.Kubernetes;

/// <summary>
/// The supervisor's view of a cluster in a test: a <see cref="TestApiServer"/> on loopback, a
/// kubeconfig for it, and the supervisor's Kubernetes settings pointing there. One set-up for the
/// rebuild tests, the seeded plugin scenario, the local-node walk-through and the rebuild bench.
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    private TestCluster(TestApiServer api, string kubeconfig)
    {
        Api = api;
        Kubeconfig = kubeconfig;
    }

    public TestApiServer Api { get; }

    /// <summary>The kubeconfig file the supervisor is given (Kubernetes__Kubeconfig).</summary>
    public string Kubeconfig { get; }

    /// <summary>Starts the API server and writes its kubeconfig to <paramref name="kubeconfigPath"/>.</summary>
    public static async Task<TestCluster> StartAsync(string kubeconfigPath, CancellationToken ct = default)
    {
        var api = await TestApiServer.StartAsync(0, ct).ConfigureAwait(false);
        return new TestCluster(api, api.WriteKubeconfig(kubeconfigPath));
    }

    /// <summary>
    /// The supervisor's "Kubernetes" settings (environment) for a node: this kubeconfig (or
    /// <paramref name="kubeconfig"/>, e.g. a broken one), the node name and kubelet root; with
    /// <paramref name="fastRetry"/> the rebuild retries an unreachable API server every 0.5 to 2 s,
    /// so a test does not wait the default backoff.
    /// </summary>
    public Dictionary<string, string> SupervisorSettings(string nodeName, string kubeletRoot, bool fastRetry = false, string? kubeconfig = null)
    {
        var settings = new Dictionary<string, string>
        {
            ["Kubernetes__Kubeconfig"] = kubeconfig ?? Kubeconfig,
            ["Kubernetes__NodeName"] = nodeName,
            ["Kubernetes__KubeletRoot"] = kubeletRoot,
        };
        if (fastRetry)
        {
            settings["Kubernetes__RetryInitial"] = "00:00:00.500";
            settings["Kubernetes__RetryMax"] = "00:00:02";
        }
        return settings;
    }

    public ValueTask DisposeAsync() => Api.DisposeAsync();
}

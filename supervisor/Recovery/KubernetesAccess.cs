using k8s;

namespace S3Supervisor.Supervisor.Recovery;

/// <summary>
/// The API server client, or null when none is configured (a bare node, or tests without one).
/// Built on first use: loading a kubeconfig and KubernetesClient's types costs about a second under
/// the JIT, which must not delay the socket (and so the plugin's Probe) at start. A failed build is
/// not remembered (unlike <see cref="Lazy{T}"/>, which caches the exception): the next use tries
/// again, so a kubeconfig fixed on disk or a transient read error never leaves the node without a client.
/// </summary>
public sealed class KubernetesAccess
{
    private readonly Func<IKubernetes?> _factory;
    private readonly Lock _gate = new();
    private bool _built;
    private IKubernetes? _client;

    public KubernetesAccess(IKubernetes? client)
    {
        _factory = () => client;
    }

    private KubernetesAccess(Func<IKubernetes?> factory)
    {
        _factory = factory;
    }

    /// <summary>The client; throws what building it threw (a bad kubeconfig, an unreadable token) and tries again on the next call.</summary>
    public IKubernetes? Client
    {
        get
        {
            lock (_gate)
            {
                if (!_built)
                {
                    _client = _factory();
                    _built = true;
                }
                return _client;
            }
        }
    }

    public static KubernetesAccess Create(KubernetesOptions options) => new(() =>
    {
        KubernetesClientConfiguration? config = null;
        if (options.Kubeconfig.Length > 0)
        {
            config = KubernetesClientConfiguration.BuildConfigFromConfigFile(options.Kubeconfig);
        }
        else if (KubernetesClientConfiguration.IsInCluster())
        {
            config = KubernetesClientConfiguration.InClusterConfig();
        }
        if (config is null)
        {
            return null;
        }
        config.HttpClientTimeout = options.RequestTimeout;
        return new Kubernetes(config);
    });
}

using Microsoft.Extensions.Options;

namespace S3Supervisor.Supervisor.Recovery;

/// <summary>Configuration section "Kubernetes": where the rebuild after a restart looks.</summary>
public sealed class KubernetesOptions
{
    public const string Section = "Kubernetes";

    /// <summary>This node's name (the DaemonSet passes spec.nodeName).</summary>
    public string NodeName { get; set; } = string.Empty;

    public string DriverName { get; set; } = "s3.csi.s3supervisor.io";

    public string KubeletRoot { get; set; } = "/var/lib/kubelet";

    /// <summary>A kubeconfig file; empty means in-cluster config when running in a pod, else no API server.</summary>
    public string Kubeconfig { get; set; } = string.Empty;

    public TimeSpan RetryInitial { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan RetryMax { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Per-request timeout against the API server.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

internal sealed class KubernetesOptionsValidator : IValidateOptions<KubernetesOptions>
{
    public ValidateOptionsResult Validate(string? name, KubernetesOptions options)
    {
        var failures = new List<string>();
        if (!Path.IsPathFullyQualified(options.KubeletRoot))
        {
            failures.Add("Kubernetes:KubeletRoot must be an absolute path.");
        }
        if (string.IsNullOrWhiteSpace(options.DriverName))
        {
            failures.Add("Kubernetes:DriverName is required.");
        }
        if (options.Kubeconfig.Length > 0 && !File.Exists(options.Kubeconfig))
        {
            failures.Add($"Kubernetes:Kubeconfig '{options.Kubeconfig}' does not exist.");
        }
        else if (options.Kubeconfig.Length > 0)
        {
            // Checked now, not at the first rebuild: that only comes after a restart, when every
            // volume of the node waits for it.
            failures.AddRange(KubeconfigFile.Check(options.Kubeconfig));
        }
        // An API server is configured (a kubeconfig, or in a pod: the service host KubernetesClient's
        // in-cluster config reads), but no node name: the rebuild would list nobody's pods, silently.
        if ((options.Kubeconfig.Length > 0 || Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST") is { Length: > 0 }) && string.IsNullOrWhiteSpace(options.NodeName))
        {
            failures.Add("Kubernetes:NodeName is required when a Kubernetes API server is configured (Kubernetes:Kubeconfig or in-cluster): the rebuild after a restart finds this node's pods by it.");
        }
        if (options.RetryInitial <= TimeSpan.Zero || options.RetryMax < options.RetryInitial)
        {
            failures.Add("Kubernetes:RetryInitial must be positive and not above RetryMax.");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

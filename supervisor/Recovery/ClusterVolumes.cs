using System.Net;
using System.Text;
using k8s;
using k8s.Autorest;
using k8s.Models;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Recovery;

/// <summary>One pod on this node that uses one of our volumes.</summary>
public sealed record PodUse(string PodUid, string PodName, string PodNamespace, bool ReadOnly);

/// <summary>What the API server says about one of our volumes on this node.</summary>
public sealed record ClusterVolume(
    string VolumeHandle,
    string PersistentVolumeName,
    string ClaimNamespace,
    string ClaimName,
    IReadOnlyDictionary<string, string> Attributes,
    V1SecretReference? StageSecret,
    V1SecretReference? PublishSecret,
    string? StorageClassName,
    bool ReadOnly,
    IReadOnlyList<string> MountOptions,
    bool ReaderOnlyAccess,
    IReadOnlyList<PodUse> Pods);

/// <summary>A volume the rebuild cannot restore yet, and why (shown in the log, the watch stream and Events).</summary>
public sealed class VolumeNotRestorableException(string reason, bool retry) : Exception(reason)
{
    public bool Retry { get; } = retry;
}

/// <summary>
/// Reads the API server: pods bound to this node (field selector on spec.nodeName), their PVCs,
/// the PVs whose spec.csi.driver is ours, StorageClass parameters and the referenced Secrets. It is
/// the only source of credentials after a restart.
/// </summary>
public sealed class ClusterVolumes
{
    public const string StageSecretName = "csi.storage.k8s.io/node-stage-secret-name";
    public const string StageSecretNamespace = "csi.storage.k8s.io/node-stage-secret-namespace";
    public const string PublishSecretName = "csi.storage.k8s.io/node-publish-secret-name";
    public const string PublishSecretNamespace = "csi.storage.k8s.io/node-publish-secret-namespace";

    private readonly IKubernetes _client;
    private readonly string _driver;

    // One read per Secret per round, however many volumes name it (a bucket-per-volume StorageClass
    // often points all its volumes at one Secret). A new round (LoadAsync) reads them again.
    private System.Collections.Concurrent.ConcurrentDictionary<(string Namespace, string Name), Lazy<Task<V1Secret?>>> _secrets = new();

    public ClusterVolumes(IKubernetes client, string driverName)
    {
        _client = client;
        _driver = driverName;
    }

    /// <summary>
    /// Our volumes used by pods on the node, by volume handle, and those of <paramref name="stagedHandles"/>
    /// that no pod uses (kubelet stages before it publishes and keeps a volume staged between pods):
    /// found by handle among the PVs, with no pods. Throws on any API failure (the caller retries).
    /// </summary>
    public async Task<IReadOnlyDictionary<string, ClusterVolume>> LoadAsync(string nodeName, IReadOnlySet<string> stagedHandles, CancellationToken cancellationToken)
    {
        _secrets = new();
        var pods = await _client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={nodeName}", cancellationToken: cancellationToken).ConfigureAwait(false);
        var claims = new Dictionary<(string Ns, string Name), List<PodUse>>();
        foreach (var pod in pods.Items)
        {
            if (pod.Status?.Phase is "Succeeded" or "Failed")
            {
                continue;
            }
            foreach (var volume in pod.Spec?.Volumes ?? [])
            {
                // A generic ephemeral volume's claim is named <pod>-<volume> by the ephemeral volume controller.
                var claimName = volume.PersistentVolumeClaim?.ClaimName
                    ?? (volume.Ephemeral is not null ? $"{pod.Metadata.Name}-{volume.Name}" : null);
                if (claimName is not null)
                {
                    var pvc = volume.PersistentVolumeClaim;
                    var key = (pod.Metadata.NamespaceProperty ?? "default", claimName);
                    if (!claims.TryGetValue(key, out var uses))
                    {
                        claims[key] = uses = [];
                    }
                    uses.Add(new PodUse(pod.Metadata.Uid ?? string.Empty, pod.Metadata.Name ?? string.Empty, key.Item1, pvc?.ReadOnlyProperty ?? false));
                }
            }
        }
        var result = new Dictionary<string, ClusterVolume>(StringComparer.Ordinal);
        foreach (var ((ns, name), uses) in claims)
        {
            var claim = await ReadOrNullAsync(() => _client.CoreV1.ReadNamespacedPersistentVolumeClaimAsync(name, ns, cancellationToken: cancellationToken)).ConfigureAwait(false);
            var pvName = claim?.Spec?.VolumeName;
            if (string.IsNullOrEmpty(pvName))
            {
                continue;
            }
            var pv = await ReadOrNullAsync(() => _client.CoreV1.ReadPersistentVolumeAsync(pvName, cancellationToken: cancellationToken)).ConfigureAwait(false);
            var csi = pv?.Spec?.Csi;
            if (csi is null || csi.Driver != _driver)
            {
                continue;
            }
            result[csi.VolumeHandle] = Describe(pv!, ns, name, claim!.Spec?.StorageClassName, uses);
        }
        if (stagedHandles.Any(h => !result.ContainsKey(h)))
        {
            // One list, only when needed; RBAC allows list on PVs (no field selector reaches spec.csi).
            var volumes = await _client.CoreV1.ListPersistentVolumeAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            foreach (var pv in volumes.Items)
            {
                var csi = pv.Spec?.Csi;
                if (csi is not null && csi.Driver == _driver && stagedHandles.Contains(csi.VolumeHandle) && !result.ContainsKey(csi.VolumeHandle))
                {
                    var claimRef = pv.Spec!.ClaimRef;
                    result[csi.VolumeHandle] = Describe(pv, claimRef?.NamespaceProperty ?? "default", claimRef?.Name ?? string.Empty, null, []);
                }
            }
        }
        return result;
    }

    private static ClusterVolume Describe(V1PersistentVolume pv, string claimNamespace, string claimName, string? claimStorageClass, IReadOnlyList<PodUse> uses)
    {
        var csi = pv.Spec.Csi;
        return new ClusterVolume(
            csi.VolumeHandle,
            pv.Metadata.Name,
            claimNamespace,
            claimName,
            new Dictionary<string, string>(csi.VolumeAttributes ?? new Dictionary<string, string>(), StringComparer.Ordinal),
            csi.NodeStageSecretRef,
            csi.NodePublishSecretRef,
            pv.Spec.StorageClassName ?? claimStorageClass,
            csi.ReadOnlyProperty ?? false,
            pv.Spec.MountOptions?.ToArray() ?? [],
            // kubelet's CSI mounter takes the PV's first access mode (ReadOnlyMany: MULTI_NODE_READER_ONLY).
            pv.Spec.AccessModes is { Count: > 0 } modes && modes[0] == "ReadOnlyMany",
            uses);
    }

    /// <summary>The volume's source and credentials. Throws <see cref="VolumeNotRestorableException"/> naming what is missing.</summary>
    public async Task<(VolumeSource Source, Credentials? Credentials)> ResolveAsync(ClusterVolume volume, CancellationToken cancellationToken)
    {
        VolumeSource source;
        try
        {
            source = VolumeException.Checked(() => VolumeContext.ParseForStage(volume.Attributes, volume.MountOptions, volume.ReaderOnlyAccess, $"persistentvolume {volume.PersistentVolumeName} volumeAttributes"));
        }
        catch (VolumeException e)
        {
            throw new VolumeNotRestorableException(e.Message, retry: false);
        }
        if (source.Options.PublicBucket)
        {
            return (source, null);
        }
        var reference = volume.StageSecret ?? volume.PublishSecret ?? await FromStorageClassAsync(volume, cancellationToken).ConfigureAwait(false)
            ?? throw new VolumeNotRestorableException($"persistentvolume {volume.PersistentVolumeName} names no node-stage or node-publish secret, and its StorageClass none either", retry: false);
        var secretNamespace = reference.NamespaceProperty ?? volume.ClaimNamespace;
        var secret = await SecretAsync(secretNamespace, reference.Name, cancellationToken).ConfigureAwait(false)
            ?? throw new VolumeNotRestorableException($"secret {secretNamespace}/{reference.Name} not found", retry: true);
        string Key(string key) => secret.Data is not null && secret.Data.TryGetValue(key, out var bytes) ? Encoding.UTF8.GetString(bytes) : string.Empty;
        var credentials = new Credentials
        {
            AccessKeyId = Key(SecretKeys.AccessKeyId),
            SecretAccessKey = Key(SecretKeys.SecretAccessKey),
            SessionToken = Key(SecretKeys.SessionToken),
        };
        if (credentials.AccessKeyId.Length == 0 || credentials.SecretAccessKey.Length == 0)
        {
            throw new VolumeNotRestorableException($"secret {secretNamespace}/{reference.Name} lacks the keys {SecretKeys.AccessKeyId} and {SecretKeys.SecretAccessKey}", retry: true);
        }
        return (source, credentials);
    }

    /// <summary>
    /// The Secret, read once per round for all the volumes that name it. A failed read is not kept:
    /// the next volume that names it (or the next round) asks again.
    /// </summary>
    private async Task<V1Secret?> SecretAsync(string ns, string name, CancellationToken cancellationToken)
    {
        var secrets = _secrets;
        var read = secrets.GetOrAdd((ns, name), key => new Lazy<Task<V1Secret?>>(() => ReadOrNullAsync(() => _client.CoreV1.ReadNamespacedSecretAsync(key.Name, key.Namespace, cancellationToken: cancellationToken))));
        try
        {
            return await read.Value.ConfigureAwait(false);
        }
        catch
        {
            secrets.TryRemove(new KeyValuePair<(string, string), Lazy<Task<V1Secret?>>>((ns, name), read));
            throw;
        }
    }

    /// <summary>A PV made before its provisioner set secret refs: the StorageClass's templated parameters name the secret.</summary>
    private async Task<V1SecretReference?> FromStorageClassAsync(ClusterVolume volume, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(volume.StorageClassName))
        {
            return null;
        }
        var storageClass = await ReadOrNullAsync(() => _client.StorageV1.ReadStorageClassAsync(volume.StorageClassName, cancellationToken: cancellationToken)).ConfigureAwait(false);
        var parameters = storageClass?.Parameters;
        if (parameters is null)
        {
            return null;
        }
        var (nameKey, namespaceKey) = parameters.ContainsKey(StageSecretName) ? (StageSecretName, StageSecretNamespace) : (PublishSecretName, PublishSecretNamespace);
        if (!parameters.TryGetValue(nameKey, out var nameTemplate))
        {
            return null;
        }
        return new V1SecretReference
        {
            Name = Expand(nameTemplate, volume),
            NamespaceProperty = parameters.TryGetValue(namespaceKey, out var nsTemplate) ? Expand(nsTemplate, volume) : volume.ClaimNamespace,
        };
    }

    /// <summary>The templates the external provisioner understands: ${pv.name}, ${pvc.name}, ${pvc.namespace}.</summary>
    public static string Expand(string template, ClusterVolume volume) => template
        .Replace("${pv.name}", volume.PersistentVolumeName, StringComparison.Ordinal)
        .Replace("${pvc.name}", volume.ClaimName, StringComparison.Ordinal)
        .Replace("${pvc.namespace}", volume.ClaimNamespace, StringComparison.Ordinal);

    private static async Task<T?> ReadOrNullAsync<T>(Func<Task<T>> read)
        where T : class
    {
        try
        {
            return await read().ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }
}

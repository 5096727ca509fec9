using System.Globalization;
using System.Text;
using k8s;
using k8s.Models;
using S3Supervisor.Common;

namespace S3Supervisor.TestKit.Kubernetes;

/// <summary>One volume of a pod in <see cref="TestObjects.Pod"/>: which claim, where, and how.</summary>
public sealed record PodVolumeMount(string ClaimName, string MountPath, bool ReadOnly = false, string? SubPath = null);

/// <summary>One provisioned volume of a <see cref="TestScenario"/>: the claim, its bound PV and the claim's credentials.</summary>
public sealed record ScenarioVolume(V1PersistentVolumeClaim Claim, V1PersistentVolume Volume, V1Secret Secret);

/// <summary>A consistent set of objects as a cluster would hold them after dynamic provisioning and scheduling.</summary>
public sealed record TestScenario(V1StorageClass StorageClass, IReadOnlyList<ScenarioVolume> Volumes, IReadOnlyList<V1Pod> Pods)
{
    /// <summary>Everything, for <see cref="TestApiServer.UpsertAll"/>.</summary>
    public IEnumerable<IKubernetesObject<V1ObjectMeta>> Objects =>
        new IKubernetesObject<V1ObjectMeta>[] { StorageClass }
            .Concat(Volumes.SelectMany(v => new IKubernetesObject<V1ObjectMeta>[] { v.Secret, v.Claim, v.Volume }))
            .Concat(Pods);
}

/// <summary>
/// Builders for the objects the supervisor reads during a rebuild, shaped as external-provisioner,
/// the PV controller and the scheduler leave them (annotations, finalizers, claimRef, bound phases),
/// so that tests exercise the same fields a real cluster has.
/// </summary>
public static class TestObjects
{
    public const string DriverName = "s3.csi.s3supervisor.io";
    public const string AccessKeyIdKey = "accessKeyID";
    public const string SecretAccessKeyKey = "secretAccessKey";

    public const string NodeStageSecretNameParameter = "csi.storage.k8s.io/node-stage-secret-name";
    public const string NodeStageSecretNamespaceParameter = "csi.storage.k8s.io/node-stage-secret-namespace";
    public const string NodePublishSecretNameParameter = "csi.storage.k8s.io/node-publish-secret-name";
    public const string NodePublishSecretNamespaceParameter = "csi.storage.k8s.io/node-publish-secret-namespace";
    public const string ProvisionerSecretNameParameter = "csi.storage.k8s.io/provisioner-secret-name";
    public const string ProvisionerSecretNamespaceParameter = "csi.storage.k8s.io/provisioner-secret-namespace";

    /// <summary>The per-claim secret templates the examples use.</summary>
    public const string ClaimSecretNameTemplate = "${pvc.name}-creds";
    public const string ClaimSecretNamespaceTemplate = "${pvc.namespace}";

    /// <summary>
    /// A StorageClass for our driver: <c>endpoint</c>, <c>region</c>, optional <c>bucket</c> (prefix per
    /// volume), and node-stage (optionally node-publish) secret templates.
    /// </summary>
    public static V1StorageClass StorageClass(
        string name,
        string endpoint,
        string? bucket = null,
        string? region = null,
        string secretName = ClaimSecretNameTemplate,
        string secretNamespace = ClaimSecretNamespaceTemplate,
        bool publishSecret = false,
        IReadOnlyDictionary<string, string>? extraParameters = null)
    {
        var parameters = new Dictionary<string, string>
        {
            [VolumeContext.Endpoint] = endpoint,
            [NodeStageSecretNameParameter] = secretName,
            [NodeStageSecretNamespaceParameter] = secretNamespace,
            [ProvisionerSecretNameParameter] = secretName,
            [ProvisionerSecretNamespaceParameter] = secretNamespace,
        };
        if (bucket is not null)
        {
            parameters[VolumeContext.Bucket] = bucket;
        }
        if (region is not null)
        {
            parameters[VolumeContext.Region] = region;
        }
        if (publishSecret)
        {
            parameters[NodePublishSecretNameParameter] = secretName;
            parameters[NodePublishSecretNamespaceParameter] = secretNamespace;
        }
        foreach (var (k, v) in extraParameters ?? new Dictionary<string, string>())
        {
            parameters[k] = v;
        }
        return new V1StorageClass
        {
            ApiVersion = "storage.k8s.io/v1",
            Kind = "StorageClass",
            Metadata = new V1ObjectMeta { Name = name },
            Provisioner = DriverName,
            Parameters = parameters,
            ReclaimPolicy = "Delete",
            VolumeBindingMode = "Immediate",
            AllowVolumeExpansion = false,
        };
    }

    /// <summary>An Opaque Secret with S3 credentials under <c>accessKeyID</c> and <c>secretAccessKey</c>.</summary>
    public static V1Secret Secret(string ns, string name, string accessKeyId, string secretAccessKey) => new()
    {
        ApiVersion = "v1",
        Kind = "Secret",
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Uid = NewUid() },
        Type = "Opaque",
        Data = new Dictionary<string, byte[]>
        {
            [AccessKeyIdKey] = Encoding.UTF8.GetBytes(accessKeyId),
            [SecretAccessKeyKey] = Encoding.UTF8.GetBytes(secretAccessKey),
        },
    };

    /// <summary>
    /// Resolves the <c>${pvc.name}</c>, <c>${pvc.namespace}</c> and <c>${pv.name}</c> placeholders of a
    /// StorageClass secret parameter, as external-provisioner does when it writes the PV.
    /// </summary>
    public static string ResolveTemplate(string template, string pvcNamespace, string pvcName, string pvName) =>
        template
            .Replace("${pvc.name}", pvcName, StringComparison.Ordinal)
            .Replace("${pvc.namespace}", pvcNamespace, StringComparison.Ordinal)
            .Replace("${pv.name}", pvName, StringComparison.Ordinal);

    /// <summary>A claim bound to <paramref name="volumeName"/> (spec.volumeName, status.phase Bound).</summary>
    public static V1PersistentVolumeClaim BoundClaim(string ns, string name, string storageClassName, string volumeName, string capacity = "1Gi", string uid = "") => new()
    {
        ApiVersion = "v1",
        Kind = "PersistentVolumeClaim",
        Metadata = new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = ns,
            Uid = uid.Length > 0 ? uid : NewUid(),
            Annotations = new Dictionary<string, string>
            {
                ["pv.kubernetes.io/bind-completed"] = "yes",
                ["pv.kubernetes.io/bound-by-controller"] = "yes",
                ["volume.beta.kubernetes.io/storage-provisioner"] = DriverName,
                ["volume.kubernetes.io/storage-provisioner"] = DriverName,
            },
            Finalizers = ["kubernetes.io/pvc-protection"],
        },
        Spec = new V1PersistentVolumeClaimSpec
        {
            AccessModes = ["ReadWriteMany"],
            Resources = new V1VolumeResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["storage"] = new(capacity) } },
            StorageClassName = storageClassName,
            VolumeMode = "Filesystem",
            VolumeName = volumeName,
        },
        Status = new V1PersistentVolumeClaimStatus
        {
            Phase = "Bound",
            AccessModes = ["ReadWriteMany"],
            Capacity = new Dictionary<string, ResourceQuantity> { ["storage"] = new(capacity) },
        },
    };

    /// <summary>
    /// A PV of our driver as external-provisioner writes it: spec.csi with driver, volumeHandle,
    /// volumeAttributes and the resolved secret references, claimRef to <paramref name="claim"/>, phase Bound.
    /// </summary>
    public static V1PersistentVolume PersistentVolume(
        string name,
        string storageClassName,
        string volumeHandle,
        IDictionary<string, string> volumeAttributes,
        V1SecretReference? nodeStageSecretRef,
        V1SecretReference? nodePublishSecretRef = null,
        V1PersistentVolumeClaim? claim = null,
        string capacity = "1Gi") => new()
        {
            ApiVersion = "v1",
            Kind = "PersistentVolume",
            Metadata = new V1ObjectMeta
            {
                Name = name,
                Uid = NewUid(),
                Annotations = new Dictionary<string, string> { ["pv.kubernetes.io/provisioned-by"] = DriverName },
                Finalizers = ["external-provisioner.volume.kubernetes.io/finalizer", "kubernetes.io/pv-protection"],
            },
            Spec = new V1PersistentVolumeSpec
            {
                AccessModes = ["ReadWriteMany"],
                Capacity = new Dictionary<string, ResourceQuantity> { ["storage"] = new(capacity) },
                ClaimRef = claim is null ? null : new V1ObjectReference
                {
                    ApiVersion = "v1",
                    Kind = "PersistentVolumeClaim",
                    Name = claim.Metadata.Name,
                    NamespaceProperty = claim.Metadata.NamespaceProperty,
                    Uid = claim.Metadata.Uid,
                },
                Csi = new V1CSIPersistentVolumeSource
                {
                    Driver = DriverName,
                    VolumeHandle = volumeHandle,
                    VolumeAttributes = new Dictionary<string, string>(volumeAttributes),
                    NodeStageSecretRef = nodeStageSecretRef,
                    NodePublishSecretRef = nodePublishSecretRef,
                },
                PersistentVolumeReclaimPolicy = "Delete",
                StorageClassName = storageClassName,
                VolumeMode = "Filesystem",
            },
            Status = new V1PersistentVolumeStatus { Phase = claim is null ? "Available" : "Bound" },
        };

    /// <summary>A Running pod scheduled on <paramref name="nodeName"/>, one container mounting each claim.</summary>
    public static V1Pod Pod(string ns, string name, string nodeName, IEnumerable<PodVolumeMount> mounts, string uid = "")
    {
        var list = mounts.ToList();
        var volumeName = (int i) => string.Create(CultureInfo.InvariantCulture, $"vol-{i}");
        return new V1Pod
        {
            ApiVersion = "v1",
            Kind = "Pod",
            Metadata = new V1ObjectMeta
            {
                Name = name,
                NamespaceProperty = ns,
                Uid = uid.Length > 0 ? uid : NewUid(),
                Labels = new Dictionary<string, string> { ["app"] = name },
            },
            Spec = new V1PodSpec
            {
                NodeName = nodeName,
                RestartPolicy = "Always",
                SchedulerName = "default-scheduler",
                ServiceAccountName = "default",
                Containers =
                [
                    new V1Container
                    {
                        Name = "app",
                        Image = "busybox:1.36",
                        Command = ["sleep", "infinity"],
                        VolumeMounts = list.Select((m, i) => new V1VolumeMount
                        {
                            Name = volumeName(i),
                            MountPath = m.MountPath,
                            ReadOnlyProperty = m.ReadOnly ? true : null,
                            SubPath = m.SubPath,
                        }).ToList(),
                    },
                ],
                Volumes = list.Select((m, i) => new V1Volume
                {
                    Name = volumeName(i),
                    PersistentVolumeClaim = new V1PersistentVolumeClaimVolumeSource { ClaimName = m.ClaimName, ReadOnlyProperty = m.ReadOnly ? true : null },
                }).ToList(),
            },
            Status = new V1PodStatus
            {
                Phase = "Running",
                HostIP = "10.0.0.10",
                PodIP = "10.244.0.10",
                StartTime = DateTime.UtcNow.AddMinutes(-10),
                Conditions =
                [
                    new V1PodCondition { Type = "Ready", Status = "True" },
                    new V1PodCondition { Type = "PodScheduled", Status = "True" },
                ],
            },
        };
    }

    /// <summary>
    /// A dynamically provisioned scenario on one node: a StorageClass with a shared <paramref name="bucket"/>,
    /// <paramref name="volumeCount"/> claims <c>data-00</c>, <c>data-01</c>, ... each with its own
    /// <c>data-NN-creds</c> Secret and a PV <c>pvc-&lt;claim uid&gt;</c> (volume handle
    /// <c>bucket/pv-name</c>, prefix = PV name), and <paramref name="podsPerVolume"/> Running pods
    /// <c>app-NN-M</c> on <paramref name="nodeName"/> mounting each claim at <c>/data</c>.
    /// </summary>
    public static TestScenario Scenario(
        string nodeName,
        int volumeCount,
        int podsPerVolume = 1,
        string endpoint = "http://127.0.0.1:9000",
        string bucket = "test-bucket",
        string region = "us-east-1",
        string ns = "default",
        string accessKeyId = "AKIAIOSFODNN7EXAMPLE",
        string secretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        string storageClassName = "s3")
    {
        ArgumentOutOfRangeException.ThrowIfNegative(volumeCount);
        ArgumentOutOfRangeException.ThrowIfNegative(podsPerVolume);
        var storageClass = StorageClass(storageClassName, endpoint, bucket, region);
        var volumes = new List<ScenarioVolume>();
        var pods = new List<V1Pod>();
        for (var i = 0; i < volumeCount; i++)
        {
            var claimName = string.Create(CultureInfo.InvariantCulture, $"data-{i:00}");
            var claimUid = NewUid();
            var pvName = $"pvc-{claimUid}";
            var secretRef = new V1SecretReference
            {
                Name = ResolveTemplate(ClaimSecretNameTemplate, ns, claimName, pvName),
                NamespaceProperty = ResolveTemplate(ClaimSecretNamespaceTemplate, ns, claimName, pvName),
            };
            var claim = BoundClaim(ns, claimName, storageClassName, pvName, uid: claimUid);
            var attributes = new Dictionary<string, string>
            {
                [VolumeContext.Bucket] = bucket,
                [VolumeContext.Prefix] = pvName,
                [VolumeContext.Endpoint] = endpoint,
                [VolumeContext.Region] = region,
                ["storage.kubernetes.io/csiProvisionerIdentity"] = "1700000000000-8081-" + DriverName,
            };
            var pv = PersistentVolume(pvName, storageClassName, $"{bucket}/{pvName}", attributes, secretRef, claim: claim);
            volumes.Add(new ScenarioVolume(claim, pv, Secret(secretRef.NamespaceProperty, secretRef.Name, accessKeyId, secretAccessKey)));
            for (var j = 0; j < podsPerVolume; j++)
            {
                var podName = string.Create(CultureInfo.InvariantCulture, $"app-{i:00}-{j}");
                pods.Add(Pod(ns, podName, nodeName, [new PodVolumeMount(claimName, "/data")]));
            }
        }
        return new TestScenario(storageClass, volumes, pods);
    }

    private static string NewUid() => Guid.NewGuid().ToString();
}

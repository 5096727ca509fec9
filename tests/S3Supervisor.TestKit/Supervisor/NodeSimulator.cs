using System.Text;
using System.Text.Json;
using k8s.Models;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;


namespace S3Supervisor.TestKit.Supervisor;

/// <summary>One pod's use of one volume, as kubelet set it up.</summary>
public sealed record PublishedVolume(V1Pod Pod, V1PersistentVolume Volume, string TargetPath, bool ReadOnly, string ContainerPath, bool ContainerReadOnly, string? SubPath);

/// <summary>
/// Plays kubelet on a test node: makes kubelet's directories with the vol_data.json it writes
/// (staging: plugins/kubernetes.io/csi/&lt;driver&gt;/&lt;sha256(handle)&gt;/, pod: pods/&lt;uid&gt;/volumes/kubernetes.io~csi/&lt;pv&gt;/),
/// stages and publishes through a supervisor client as the plugin would, and starts a stand-in
/// container per pod holding bind copies of its targets (with subPath and read-only as in the pod spec).
/// </summary>
public sealed class NodeSimulator
{
    public const string DriverName = "s3.csi.s3supervisor.io";

    public NodeSimulator(string kubeletRoot, string nodeName = "node-a")
    {
        KubeletRoot = kubeletRoot;
        NodeName = nodeName;
    }

    public string KubeletRoot { get; }

    public string NodeName { get; }

    public static string StagingPath(string kubeletRoot, string volumeHandle) =>
        Path.Combine(kubeletRoot, "plugins", "kubernetes.io", "csi", DriverName,
            Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(volumeHandle))), "globalmount");

    public string StagingPath(V1PersistentVolume pv) => StagingPath(KubeletRoot, pv.Spec.Csi.VolumeHandle);

    public string TargetPath(V1Pod pod, V1PersistentVolume pv) =>
        Path.Combine(KubeletRoot, "pods", pod.Metadata.Uid, "volumes", "kubernetes.io~csi", pv.Metadata.Name, "mount");

    /// <summary>What kubelet does before NodeStageVolume: the staging directory and its vol_data.json. Returns the staging path.</summary>
    public async Task<string> PrepareStagingAsync(V1PersistentVolume pv)
    {
        var staging = StagingPath(pv);
        Directory.CreateDirectory(staging);
        await WriteVolDataAsync(Path.Combine(Path.GetDirectoryName(staging)!, "vol_data.json"), new Dictionary<string, string>
        {
            ["driverName"] = DriverName,
            ["volumeHandle"] = pv.Spec.Csi.VolumeHandle,
        });
        return staging;
    }

    /// <summary>What kubelet does before NodePublishVolume: the pod's volume directory and its vol_data.json. Returns the target path.</summary>
    public async Task<string> PrepareTargetAsync(V1Pod pod, V1PersistentVolume pv)
    {
        var target = TargetPath(pod, pv);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        await WriteVolDataAsync(Path.Combine(Path.GetDirectoryName(target)!, "vol_data.json"), new Dictionary<string, string>
        {
            ["driverName"] = DriverName,
            ["volumeHandle"] = pv.Spec.Csi.VolumeHandle,
            ["specVolID"] = pv.Metadata.Name,
            ["nodeName"] = NodeName,
            ["volumeLifecycleMode"] = "Persistent",
        });
        return target;
    }

    /// <summary>
    /// NodePublishVolume as kubelet sends it to a CSI plugin for one pod: the pod's volume directory
    /// and vol_data.json, then the call with the pod-info context keys (podInfoOnMount). Returns the target.
    /// </summary>
    public async Task<string> CsiPublishAsync(Csi.V1.Node.NodeClient node, V1Pod pod, V1PersistentVolume pv, Csi.V1.Volume created, Csi.V1.VolumeCapability capability, bool readOnly)
    {
        var target = await PrepareTargetAsync(pod, pv);
        var request = new Csi.V1.NodePublishVolumeRequest
        {
            VolumeId = created.VolumeId,
            StagingTargetPath = StagingPath(pv),
            TargetPath = target,
            VolumeCapability = capability,
            Readonly = readOnly,
            VolumeContext = { created.VolumeContext },
        };
        request.VolumeContext["csi.storage.k8s.io/pod.name"] = pod.Metadata.Name;
        request.VolumeContext["csi.storage.k8s.io/pod.namespace"] = pod.Metadata.NamespaceProperty;
        request.VolumeContext["csi.storage.k8s.io/pod.uid"] = pod.Metadata.Uid;
        request.VolumeContext["csi.storage.k8s.io/serviceAccount.name"] = "default";
        await node.NodePublishVolumeAsync(request);
        return target;
    }

    /// <summary>NodeStageVolume as kubelet + plugin do it: staging dir, vol_data.json, then the supervisor call.</summary>
    public async Task<Volume> StageAsync(S3Supervisor.Api.V1.Supervisor.SupervisorClient client, V1PersistentVolume pv, V1Secret? secret)
    {
        var staging = await PrepareStagingAsync(pv);
        var response = await client.StageVolumeAsync(new StageVolumeRequest
        {
            VolumeId = pv.Spec.Csi.VolumeHandle,
            StagingPath = staging,
            Source = VolumeContext.Parse(pv.Spec.Csi.VolumeAttributes.ToDictionary()),
            Credentials = secret is null ? null : CredentialsOf(secret),
        });
        return response.Volume;
    }

    /// <summary>NodePublishVolume for every PVC volume of a pod whose PV is in <paramref name="volumes"/>.</summary>
    public async Task<IReadOnlyList<PublishedVolume>> PublishPodAsync(S3Supervisor.Api.V1.Supervisor.SupervisorClient client, V1Pod pod, IReadOnlyDictionary<string, V1PersistentVolume> volumesByClaim)
    {
        var result = new List<PublishedVolume>();
        var container = pod.Spec.Containers[0];
        foreach (var volume in pod.Spec.Volumes.Where(v => v.PersistentVolumeClaim is not null))
        {
            if (!volumesByClaim.TryGetValue(volume.PersistentVolumeClaim.ClaimName, out var pv))
            {
                continue;
            }
            var target = await PrepareTargetAsync(pod, pv);
            Directory.CreateDirectory(target);
            var readOnly = volume.PersistentVolumeClaim.ReadOnlyProperty ?? false;
            await client.PublishVolumeAsync(new PublishVolumeRequest
            {
                VolumeId = pv.Spec.Csi.VolumeHandle,
                TargetPath = target,
                ReadOnly = readOnly,
                Pod = new PodRef { Uid = pod.Metadata.Uid, Name = pod.Metadata.Name, Namespace = pod.Metadata.NamespaceProperty },
            });
            var mount = container.VolumeMounts.First(m => m.Name == volume.Name);
            result.Add(new PublishedVolume(pod, pv, target, readOnly, mount.MountPath, mount.ReadOnlyProperty ?? false, mount.SubPath));
        }
        return result;
    }

    /// <summary>A stand-in container for a pod: a process in its own mount namespace with bind copies of its targets.</summary>
    public static async Task<StandInContainer> StartContainerAsync(V1Pod pod, IEnumerable<PublishedVolume> volumes)
    {
        var mounts = volumes.Select(v => new VolumeMountSpec(v.TargetPath, v.ContainerPath, v.ContainerReadOnly || v.ReadOnly, v.SubPath)).ToArray();
        foreach (var v in volumes.Where(v => v.SubPath is not null && !v.ReadOnly))
        {
            // kubelet creates a subPath directory in the volume before the container starts.
            Directory.CreateDirectory(Path.Combine(v.TargetPath, v.SubPath!));
        }
        return await StandInContainer.StartAsync(pod.Metadata.Name, mounts).ConfigureAwait(false);
    }

    public static Credentials CredentialsOf(V1Secret secret) => new()
    {
        AccessKeyId = Encoding.UTF8.GetString(secret.Data[SecretKeys.AccessKeyId]),
        SecretAccessKey = Encoding.UTF8.GetString(secret.Data[SecretKeys.SecretAccessKey]),
    };

    private static Task WriteVolDataAsync(string path, Dictionary<string, string> data) =>
        File.WriteAllTextAsync(path, JsonSerializer.Serialize(data));
}

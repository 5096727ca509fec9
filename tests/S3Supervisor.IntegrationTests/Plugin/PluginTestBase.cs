using Csi.V1;
using S3Supervisor.Common;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;
using Sv = S3Supervisor.Api.V1;

namespace S3Supervisor.IntegrationTests.Plugin;

/// <summary>
/// A real supervisor and a real CSI plugin process per test, on a throwaway kubelet root, against the
/// collection's RGW. Every Node and Controller call goes through the plugin's unix socket, as kubelet
/// and the external-provisioner make them; the supervisor is only asked directly for what a test
/// checks (s3fs pid, restart count).
/// </summary>
public abstract class PluginTestBase : NodeTestBase
{
    public const string NodeName = "node-a";
    private readonly List<PluginProcess> _plugins = [];

    protected PluginTestBase(RgwFixture rgw)
        : base(rgw, "pl")
    {
    }

    /// <summary>kubelet's csi.sock for the plugin (each new instance listens on the same path).</summary>
    protected string PluginSocket => Path.Combine(Layout.Root, "csi", "csi.sock");

    /// <summary>The plugin instance started last.</summary>
    protected PluginProcess Plugin => _plugins[^1];

    protected int PluginStarts => _plugins.Count;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await StartSupervisorAsync();
        await StartPluginAsync();
    }

    public override async Task DisposeAsync()
    {
        foreach (var plugin in _plugins)
        {
            await plugin.DisposeAsync();
        }
        await base.DisposeAsync();
    }

    protected async Task<PluginProcess> StartPluginAsync()
    {
        var plugin = await PluginProcess.StartAsync(PluginSocket, Layout.SocketPath, NodeName);
        _plugins.Add(plugin);
        return plugin;
    }

    /// <summary>The capability kubelet sends for a ReadWriteMany (or the given mode) filesystem PV.</summary>
    protected static VolumeCapability MountCapability(VolumeCapability.Types.AccessMode.Types.Mode mode = VolumeCapability.Types.AccessMode.Types.Mode.MultiNodeMultiWriter) => new()
    {
        Mount = new VolumeCapability.Types.MountVolume(),
        AccessMode = new VolumeCapability.Types.AccessMode { Mode = mode },
    };

    /// <summary>A node-stage / provisioner secret as the sidecars pass it.</summary>
    protected Dictionary<string, string> Secrets(string? secretKey = null) => new()
    {
        [SecretKeys.AccessKeyId] = S3.AccessKey,
        [SecretKeys.SecretAccessKey] = secretKey ?? S3.SecretKey,
    };

    /// <summary>A static PV's volumeAttributes: this test's bucket, a prefix, RGW.</summary>
    protected Dictionary<string, string> StaticContext(string prefix) => new()
    {
        [VolumeContext.Bucket] = Bucket,
        [VolumeContext.Prefix] = prefix,
        [VolumeContext.Endpoint] = S3.Endpoint,
        [VolumeContext.Region] = S3.Region,
        [VolumeContext.Options] = "stat_cache_expire=1",
    };

    /// <summary>NodeStageVolume through the plugin, at the staging path kubelet would use. Returns the path.</summary>
    protected async Task<string> StageAsync(string volumeId, IDictionary<string, string> context, PluginProcess? plugin = null)
    {
        var staging = Layout.StagingPath(volumeId);
        await (plugin ?? Plugin).Node.NodeStageVolumeAsync(new NodeStageVolumeRequest
        {
            VolumeId = volumeId,
            StagingTargetPath = staging,
            VolumeCapability = MountCapability(),
            Secrets = { Secrets() },
            VolumeContext = { context },
        });
        return staging;
    }

    /// <summary>NodePublishVolume through the plugin for a pod, with podInfoOnMount keys. Returns the target path.</summary>
    protected async Task<string> PublishAsync(string volumeId, string podUid, IDictionary<string, string> context, bool readOnly = false, PluginProcess? plugin = null)
    {
        var target = Layout.TargetPath(podUid, "pv-" + volumeId.Replace(':', '-').Replace('@', '-').Replace(';', '-'));
        await (plugin ?? Plugin).Node.NodePublishVolumeAsync(PublishRequest(volumeId, podUid, target, context, readOnly));
        return target;
    }

    protected NodePublishVolumeRequest PublishRequest(string volumeId, string podUid, string target, IDictionary<string, string> context, bool readOnly = false) => new()
    {
        VolumeId = volumeId,
        StagingTargetPath = Layout.StagingPath(volumeId),
        TargetPath = target,
        VolumeCapability = MountCapability(),
        Readonly = readOnly,
        VolumeContext =
        {
            context,
            new Dictionary<string, string>
            {
                [VolumeContext.PodUid] = podUid,
                [VolumeContext.PodName] = "pod-" + podUid,
                [VolumeContext.PodNamespace] = "default",
                [VolumeContext.ServiceAccountName] = "default",
            },
        },
    };

    protected async Task UnpublishAsync(string volumeId, string target, PluginProcess? plugin = null) =>
        await (plugin ?? Plugin).Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = volumeId, TargetPath = target });

    protected async Task UnstageAsync(string volumeId, PluginProcess? plugin = null) =>
        await (plugin ?? Plugin).Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = volumeId, StagingTargetPath = Layout.StagingPath(volumeId) });

    /// <summary>NodeGetVolumeStats through the plugin: the volume's condition.</summary>
    protected async Task<VolumeCondition> ConditionAsync(string volumeId, string path, PluginProcess? plugin = null)
    {
        var stats = await (plugin ?? Plugin).Node.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = volumeId, VolumePath = path }, deadline: DateTime.UtcNow.AddSeconds(10));
        return stats.VolumeCondition;
    }

    protected async Task<Sv.Volume> SupervisorVolumeAsync(string volumeId) =>
        await Supervisor.Client.GetVolumeAsync(new Sv.GetVolumeRequest { VolumeId = volumeId });
}

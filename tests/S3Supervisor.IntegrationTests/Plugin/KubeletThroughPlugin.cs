using Csi.V1;
using Grpc.Core;
using S3Supervisor.Common;
using S3Supervisor.TestKit.Supervisor;
using Sv = S3Supervisor.Api.V1;

namespace S3Supervisor.IntegrationTests.Plugin;

/// <summary>
/// Lets <see cref="NodeSimulator"/> (which plays kubelet: its directories, its vol_data.json files,
/// the stand-in containers) make its calls through the CSI plugin's socket instead of straight to the
/// supervisor: a supervisor client whose StageVolume and PublishVolume become NodeStageVolume and
/// NodePublishVolume with what kubelet sends (the PV's volumeAttributes, the node-stage secret, the
/// pod's podInfoOnMount keys, the capability of a ReadWriteMany filesystem PV).
/// </summary>
public sealed class KubeletThroughPlugin : CallInvoker
{
    private readonly Func<PluginProcess> _plugin;
    private readonly Func<Sv.Supervisor.SupervisorClient> _supervisor;
    private readonly string _kubeletRoot;
    private readonly Func<string, IDictionary<string, string>?> _volumeAttributes;

    /// <param name="plugin">The plugin instance to call (the current one, after restarts).</param>
    /// <param name="supervisor">The supervisor, asked only for the staged volume NodeSimulator returns.</param>
    /// <param name="kubeletRoot">kubelet's root, for the staging path of a publish.</param>
    /// <param name="volumeAttributes">The PV's spec.csi.volumeAttributes by volume handle (null: built from the stage request's source).</param>
    public KubeletThroughPlugin(Func<PluginProcess> plugin, Func<Sv.Supervisor.SupervisorClient> supervisor, string kubeletRoot, Func<string, IDictionary<string, string>?> volumeAttributes)
    {
        _plugin = plugin;
        _supervisor = supervisor;
        _kubeletRoot = kubeletRoot;
        _volumeAttributes = volumeAttributes;
    }

    /// <summary>The client to hand to <see cref="NodeSimulator.StageAsync"/> and <see cref="NodeSimulator.PublishPodAsync"/>.</summary>
    public Sv.Supervisor.SupervisorClient Client => new(this);

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        Task<object> call = request switch
        {
            Sv.StageVolumeRequest stage => StageAsync(stage),
            Sv.PublishVolumeRequest publish => PublishAsync(publish),
            _ => throw new NotSupportedException($"kubelet makes no {method.FullName} call"),
        };
        return new AsyncUnaryCall<TResponse>(
            call.ContinueWith(t => (TResponse)t.GetAwaiter().GetResult(), TaskScheduler.Default),
            Task.FromResult(new Metadata()),
            () => Status.DefaultSuccess,
            () => new Metadata(),
            () => { });
    }

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        throw new NotSupportedException();

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        throw new NotSupportedException();

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        throw new NotSupportedException();

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        throw new NotSupportedException();

    private static VolumeCapability Capability => new()
    {
        Mount = new VolumeCapability.Types.MountVolume(),
        AccessMode = new VolumeCapability.Types.AccessMode { Mode = VolumeCapability.Types.AccessMode.Types.Mode.MultiNodeMultiWriter },
    };

    private IDictionary<string, string> Attributes(string volumeId, Sv.VolumeSource? source) =>
        _volumeAttributes(volumeId)
        ?? (source is null ? throw new InvalidOperationException($"no volume attributes for {volumeId}") : VolumeContext.Format(source));

    private async Task<object> StageAsync(Sv.StageVolumeRequest stage)
    {
        var request = new NodeStageVolumeRequest
        {
            VolumeId = stage.VolumeId,
            StagingTargetPath = stage.StagingPath,
            VolumeCapability = Capability,
            VolumeContext = { Attributes(stage.VolumeId, stage.Source) },
        };
        if (stage.Credentials is not null)
        {
            request.Secrets[SecretKeys.AccessKeyId] = stage.Credentials.AccessKeyId;
            request.Secrets[SecretKeys.SecretAccessKey] = stage.Credentials.SecretAccessKey;
        }
        await _plugin().Node.NodeStageVolumeAsync(request, deadline: DateTime.UtcNow.AddSeconds(60)).ConfigureAwait(false);
        var volume = await _supervisor().GetVolumeAsync(new Sv.GetVolumeRequest { VolumeId = stage.VolumeId }).ConfigureAwait(false);
        return new Sv.StageVolumeResponse { Volume = volume };
    }

    private async Task<object> PublishAsync(Sv.PublishVolumeRequest publish)
    {
        var request = new NodePublishVolumeRequest
        {
            VolumeId = publish.VolumeId,
            StagingTargetPath = NodeSimulator.StagingPath(_kubeletRoot, publish.VolumeId),
            TargetPath = publish.TargetPath,
            VolumeCapability = Capability,
            Readonly = publish.ReadOnly,
            VolumeContext = { Attributes(publish.VolumeId, null) },
        };
        if (publish.Pod is { } pod)
        {
            request.VolumeContext[VolumeContext.PodUid] = pod.Uid;
            request.VolumeContext[VolumeContext.PodName] = pod.Name;
            request.VolumeContext[VolumeContext.PodNamespace] = pod.Namespace;
            request.VolumeContext[VolumeContext.ServiceAccountName] = "default";
        }
        await _plugin().Node.NodePublishVolumeAsync(request, deadline: DateTime.UtcNow.AddSeconds(60)).ConfigureAwait(false);
        return new Sv.PublishVolumeResponse();
    }
}

using Csi.V1;
using Grpc.Core;
using Microsoft.Extensions.Options;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;
using NodeCapability = Csi.V1.NodeServiceCapability.Types.RPC.Types.Type;

namespace S3Supervisor.Plugin.Csi;

/// <summary>
/// CSI Node: each call is validated, translated onto one supervisor call and answered. The plugin
/// mounts nothing and keeps no state, so it can be killed at any time; idempotency and the per-volume
/// truth live in the supervisor.
/// </summary>
public sealed class NodeService(IOptions<CsiOptions> options, SupervisorCalls supervisor, VolumeLocks locks) : Node.NodeBase
{
    /// <summary>The supervisor names its field staging_path; kubelet knows it as staging_target_path.</summary>
    private static readonly (string Supervisor, string Csi)[] StagingPathField = [("staging_path", "staging_target_path")];

    public override Task<NodeGetInfoResponse> NodeGetInfo(NodeGetInfoRequest request, ServerCallContext context) =>
        Task.FromResult(new NodeGetInfoResponse { NodeId = options.Value.NodeId ?? string.Empty });

    public override Task<NodeGetCapabilitiesResponse> NodeGetCapabilities(NodeGetCapabilitiesRequest request, ServerCallContext context)
    {
        var response = new NodeGetCapabilitiesResponse();
        foreach (var type in new[] { NodeCapability.StageUnstageVolume, NodeCapability.GetVolumeStats, NodeCapability.VolumeCondition })
        {
            response.Capabilities.Add(new NodeServiceCapability { Rpc = new NodeServiceCapability.Types.RPC { Type = type } });
        }
        return Task.FromResult(response);
    }

    public override async Task<NodeStageVolumeResponse> NodeStageVolume(NodeStageVolumeRequest request, ServerCallContext context)
    {
        var stage = NodeRequests.Stage(request);
        using var lease = locks.AcquireVolume(stage.VolumeId);
        await supervisor.Call((c, o) => c.StageVolumeAsync(stage, o), context, StagingPathField).ConfigureAwait(false);
        return new NodeStageVolumeResponse();
    }

    public override async Task<NodeUnstageVolumeResponse> NodeUnstageVolume(NodeUnstageVolumeRequest request, ServerCallContext context)
    {
        var unstage = NodeRequests.Unstage(request);
        using var lease = locks.AcquireVolume(unstage.VolumeId);
        await supervisor.Call((c, o) => c.UnstageVolumeAsync(unstage, o), context, StagingPathField).ConfigureAwait(false);
        return new NodeUnstageVolumeResponse();
    }

    public override async Task<NodePublishVolumeResponse> NodePublishVolume(NodePublishVolumeRequest request, ServerCallContext context)
    {
        var publish = NodeRequests.Publish(request);
        using var lease = locks.AcquireTarget(publish.VolumeId, publish.TargetPath);
        await supervisor.Call((c, o) => c.PublishVolumeAsync(publish, o), context).ConfigureAwait(false);
        return new NodePublishVolumeResponse();
    }

    public override async Task<NodeUnpublishVolumeResponse> NodeUnpublishVolume(NodeUnpublishVolumeRequest request, ServerCallContext context)
    {
        var unpublish = NodeRequests.Unpublish(request);
        using var lease = locks.AcquireTarget(unpublish.VolumeId, unpublish.TargetPath);
        await supervisor.Call((c, o) => c.UnpublishVolumeAsync(unpublish, o), context).ConfigureAwait(false);
        return new NodeUnpublishVolumeResponse();
    }

    /// <summary>
    /// Capacity is unknown for S3 (one BYTES entry of zeros, because kubelet rejects an empty usage);
    /// the point is the condition: abnormal, with the reason, while the supervisor heals the volume.
    /// </summary>
    public override async Task<NodeGetVolumeStatsResponse> NodeGetVolumeStats(NodeGetVolumeStatsRequest request, ServerCallContext context)
    {
        var volumeId = CsiValidation.VolumeId(request.VolumeId);
        // Only a missing path is malformed; any other path that is not one of the volume's (relative,
        // odd characters, too long) is simply not found, after an unknown volume is (CSI spec).
        var path = Validate.Required(request.VolumePath);
        var volume = await supervisor.Call((c, o) => c.GetVolumeAsync(new GetVolumeRequest { VolumeId = volumeId }, o), context).ConfigureAwait(false);
        if (!NodeRequests.Serves(volume, path))
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"volume_path: {Validate.Shown(path)} is neither the staging path nor a publish target of volume {volumeId}"));
        }
        return new NodeGetVolumeStatsResponse
        {
            Usage = { new VolumeUsage { Unit = VolumeUsage.Types.Unit.Bytes } },
            VolumeCondition = VolumeConditions.From(volume),
        };
    }
}

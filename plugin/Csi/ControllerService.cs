using Csi.V1;
using Grpc.Core;
using S3Supervisor.Common;
using S3Supervisor.Plugin.Storage;
using ControllerCapability = Csi.V1.ControllerServiceCapability.Types.RPC.Types.Type;

namespace S3Supervisor.Plugin.Csi;

/// <summary>
/// CSI Controller: buckets and prefixes on S3 through <see cref="VolumeProvisioner"/>. Provisioner
/// secrets carry the S3 credentials; StorageClass parameters say where and how
/// (<see cref="StorageClassParameters"/>). Everything not listed in ControllerGetCapabilities answers Unimplemented.
/// </summary>
public sealed class ControllerService(VolumeProvisioner provisioner, VolumeLocks locks) : Controller.ControllerBase
{
    public override Task<ControllerGetCapabilitiesResponse> ControllerGetCapabilities(ControllerGetCapabilitiesRequest request, ServerCallContext context) =>
        Task.FromResult(new ControllerGetCapabilitiesResponse
        {
            Capabilities = { new ControllerServiceCapability { Rpc = new ControllerServiceCapability.Types.RPC { Type = ControllerCapability.CreateDeleteVolume } } },
        });

    public override async Task<CreateVolumeResponse> CreateVolume(CreateVolumeRequest request, ServerCallContext context)
    {
        var name = CsiValidation.Name(request.Name);
        CsiValidation.Capabilities(request.VolumeCapabilities);
        var capacity = CsiValidation.Capacity(request.CapacityRange);
        if (request.VolumeContentSource is not null)
        {
            throw Validate.Invalid("volume_content_source", "cloning and restoring snapshots are not supported");
        }
        var parameters = StorageClassParameters.Parse(request.Parameters);
        var credentials = CsiValidation.Credentials(request.Secrets)
            ?? throw Validate.Invalid("secrets", $"{SecretKeys.AccessKeyId} and {SecretKeys.SecretAccessKey} are required (provisioner secret)");
        using var lease = locks.Acquire($"name/{name}", $"volume name \"{name}\"");
        var volume = await provisioner.CreateAsync(new VolumeRequest(name, capacity, parameters, credentials), context.CancellationToken).ConfigureAwait(false);
        return new CreateVolumeResponse
        {
            Volume = new global::Csi.V1.Volume
            {
                VolumeId = volume.Handle.Format(),
                CapacityBytes = volume.CapacityBytes,
                VolumeContext = { VolumeContext.Format(volume.Source) },
            },
        };
    }

    public override async Task<DeleteVolumeResponse> DeleteVolume(DeleteVolumeRequest request, ServerCallContext context)
    {
        var volumeId = Validate.Required(request.VolumeId);
        if (VolumeHandle.TryParse(volumeId) is null)
        {
            // Not an id this plugin made: nothing of ours to delete, and success is what the spec asks for.
            return new DeleteVolumeResponse();
        }
        var credentials = CsiValidation.Credentials(request.Secrets)
            ?? throw Validate.Invalid("secrets", $"{SecretKeys.AccessKeyId} and {SecretKeys.SecretAccessKey} are required (provisioner secret)");
        using var lease = locks.Acquire($"id/{volumeId}", $"volume {volumeId}");
        await provisioner.DeleteAsync(volumeId, credentials, context.CancellationToken).ConfigureAwait(false);
        return new DeleteVolumeResponse();
    }

    /// <summary>
    /// Confirms mount access with any access mode; anything else is answered without confirmation and
    /// with the reason. Existence is checked against S3 when the request carries credentials.
    /// </summary>
    public override async Task<ValidateVolumeCapabilitiesResponse> ValidateVolumeCapabilities(ValidateVolumeCapabilitiesRequest request, ServerCallContext context)
    {
        var volumeId = Validate.Required(request.VolumeId);
        if (request.VolumeCapabilities.Count == 0)
        {
            throw Validate.Invalid("volume_capabilities", "is required");
        }
        if (VolumeHandle.TryParse(volumeId) is null)
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"volume_id: {Validate.Shown(volumeId)} does not exist (not an id of this driver)"));
        }
        var credentials = CsiValidation.Credentials(request.Secrets);
        if (credentials is not null && !await provisioner.ExistsAsync(volumeId, credentials, context.CancellationToken).ConfigureAwait(false))
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"volume_id: {volumeId} does not exist"));
        }
        foreach (var capability in request.VolumeCapabilities)
        {
            if (CsiValidation.Problem(capability) is { } problem)
            {
                return new ValidateVolumeCapabilitiesResponse { Message = $"{problem.Field}: {problem.Message}" };
            }
        }
        return new ValidateVolumeCapabilitiesResponse
        {
            Confirmed = new ValidateVolumeCapabilitiesResponse.Types.Confirmed
            {
                VolumeContext = { request.VolumeContext },
                VolumeCapabilities = { request.VolumeCapabilities },
                Parameters = { request.Parameters },
            },
        };
    }
}

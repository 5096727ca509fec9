using Csi.V1;
using Grpc.Core;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;
using S3Supervisor.Plugin.Storage;

namespace S3Supervisor.Plugin.Csi;

/// <summary>CSI Node requests, checked and translated into supervisor requests.</summary>
public static class NodeRequests
{
    /// <summary>
    /// NodeStageVolume → StageVolume. The source comes from the volume context (keys in
    /// <see cref="VolumeContext"/>); PV mountOptions (mount_flags) add to and override its options;
    /// a reader-only access mode mounts the whole volume read-only.
    /// </summary>
    public static StageVolumeRequest Stage(NodeStageVolumeRequest request)
    {
        var volumeId = CsiValidation.VolumeId(request.VolumeId);
        var stagingPath = CsiValidation.Path(request.StagingTargetPath, "staging_target_path");
        var (mount, mode) = CsiValidation.Capability(request.VolumeCapability);
        var source = VolumeContext.ParseForStage(request.VolumeContext, mount?.MountFlags ?? [], CsiValidation.IsReaderOnly(mode));
        var credentials = CsiValidation.Credentials(request.Secrets);
        if (credentials is null && !source.Options.PublicBucket)
        {
            throw Validate.Invalid("secrets",
                $"{SecretKeys.AccessKeyId} and {SecretKeys.SecretAccessKey} are required (node-stage secret), unless the volume's options set public_bucket");
        }
        return new StageVolumeRequest { VolumeId = volumeId, StagingPath = stagingPath, Source = source, Credentials = ToSupervisor(credentials) };
    }

    /// <summary>NodePublishVolume → PublishVolume: read-only by flag or by access mode, with the pod from podInfoOnMount.</summary>
    public static PublishVolumeRequest Publish(NodePublishVolumeRequest request)
    {
        var volumeId = CsiValidation.VolumeId(request.VolumeId);
        var targetPath = CsiValidation.Path(request.TargetPath, "target_path");
        // Every INVALID_ARGUMENT (a missing capability included) comes before the FAILED_PRECONDITION
        // below: conformance clients send neither and expect the malformed request to be named.
        var (_, mode) = CsiValidation.Capability(request.VolumeCapability);
        VolumeContext.RefuseEphemeral(request.VolumeContext);
        var pod = CsiValidation.Pod(request.VolumeContext);
        if (string.IsNullOrEmpty(request.StagingTargetPath))
        {
            // The spec's code for "STAGE_UNSTAGE_VOLUME is set but no staging_target_path".
            throw new RpcException(new Status(StatusCode.FailedPrecondition, "staging_target_path: is required, the plugin stages volumes (STAGE_UNSTAGE_VOLUME)"));
        }
        CsiValidation.Path(request.StagingTargetPath, "staging_target_path");
        return new PublishVolumeRequest
        {
            VolumeId = volumeId,
            TargetPath = targetPath,
            ReadOnly = request.Readonly || CsiValidation.IsReaderOnly(mode),
            Pod = pod,
            // Node-publish secrets, re-sent by kubelet on every republish: how rotated keys reach the supervisor.
            Credentials = ToSupervisor(CsiValidation.Credentials(request.Secrets)),
        };
    }

    /// <summary>NodeUnstageVolume → UnstageVolume.</summary>
    public static UnstageVolumeRequest Unstage(NodeUnstageVolumeRequest request) => new()
    {
        VolumeId = CsiValidation.VolumeId(request.VolumeId),
        StagingPath = CsiValidation.Path(request.StagingTargetPath, "staging_target_path"),
    };

    /// <summary>NodeUnpublishVolume → UnpublishVolume.</summary>
    public static UnpublishVolumeRequest Unpublish(NodeUnpublishVolumeRequest request) => new()
    {
        VolumeId = CsiValidation.VolumeId(request.VolumeId),
        TargetPath = CsiValidation.Path(request.TargetPath, "target_path"),
    };

    /// <summary>Whether a path is the volume's staging path or one of its publish targets.</summary>
    public static bool Serves(S3Supervisor.Api.V1.Volume volume, string path)
    {
        var wanted = Normalize(path);
        return Normalize(volume.StagingPath) == wanted || volume.Targets.Any(t => Normalize(t.TargetPath) == wanted);
    }

    private static Credentials? ToSupervisor(S3Credentials? credentials) => credentials is null ? null : new Credentials
    {
        AccessKeyId = credentials.AccessKeyId,
        SecretAccessKey = credentials.SecretAccessKey,
        SessionToken = credentials.SessionToken ?? string.Empty,
    };

    private static string Normalize(string path) => path.Length > 1 ? path.TrimEnd('/') : path;
}

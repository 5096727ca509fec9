using Grpc.Core;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Api;

/// <summary>The supervisor's gRPC API: validate, call the volume manager, map the result.</summary>
public sealed class SupervisorService : S3Supervisor.Api.V1.Supervisor.SupervisorBase
{
    private readonly VolumeManager _volumes;
    private readonly PathGuard _paths;

    private readonly IHostApplicationLifetime _lifetime;

    public SupervisorService(VolumeManager volumes, PathGuard paths, IHostApplicationLifetime lifetime)
    {
        _volumes = volumes;
        _paths = paths;
        _lifetime = lifetime;
    }

    public override async Task<StageVolumeResponse> StageVolume(StageVolumeRequest request, ServerCallContext context)
    {
        var id = Validate.VolumeId(request.VolumeId);
        var staging = _paths.Check(request.StagingPath, "staging_path");
        var source = VolumeSourceRules.Check(request.Source);
        // A session token is refused here, before anything is done, unless the keys go unused (a public bucket).
        var credentials = CredentialChecks.Request(request.Credentials, sessionTokenSupported: source.Options.PublicBucket);
        var volume = await _volumes.StageAsync(id, staging, source, credentials, context.CancellationToken);
        return new StageVolumeResponse { Volume = volume };
    }

    public override async Task<PublishVolumeResponse> PublishVolume(PublishVolumeRequest request, ServerCallContext context)
    {
        var id = Validate.VolumeId(request.VolumeId);
        var target = _paths.Check(request.TargetPath, "target_path");
        var pod = request.Pod is null ? null : CheckPod(request.Pod);
        // The volume's source decides whether the keys are stored; the store refuses a token then.
        var credentials = CredentialChecks.Request(request.Credentials, sessionTokenSupported: true);
        var volume = await _volumes.PublishAsync(id, target, request.ReadOnly, pod, context.CancellationToken, credentials);
        return new PublishVolumeResponse { Volume = volume };
    }

    public override async Task<UnpublishVolumeResponse> UnpublishVolume(UnpublishVolumeRequest request, ServerCallContext context)
    {
        var id = Validate.VolumeId(request.VolumeId);
        var target = _paths.Check(request.TargetPath, "target_path");
        await _volumes.UnpublishAsync(id, target, context.CancellationToken);
        return new UnpublishVolumeResponse();
    }

    public override async Task<UnstageVolumeResponse> UnstageVolume(UnstageVolumeRequest request, ServerCallContext context)
    {
        var id = Validate.VolumeId(request.VolumeId);
        var staging = _paths.Check(request.StagingPath, "staging_path");
        await _volumes.UnstageAsync(id, staging, context.CancellationToken);
        return new UnstageVolumeResponse();
    }

    public override Task<Volume> GetVolume(GetVolumeRequest request, ServerCallContext context) =>
        Task.FromResult(_volumes.Get(Validate.VolumeId(request.VolumeId)));

    public override Task<ListVolumesResponse> ListVolumes(ListVolumesRequest request, ServerCallContext context) =>
        Task.FromResult(new ListVolumesResponse { Volumes = { _volumes.List() } });

    public override Task<Volume> RemountVolume(RemountVolumeRequest request, ServerCallContext context) =>
        _volumes.RemountAsync(Validate.VolumeId(request.VolumeId), context.CancellationToken, request.WaitForContainerRepair);

    /// <summary>Stops every child gracefully, answers, then stops this process (the journal keeps every volume for the next start).</summary>
    public override async Task<DrainResponse> Drain(DrainRequest request, ServerCallContext context)
    {
        var stopped = await _volumes.DrainAsync();
        _lifetime.StopApplication();
        return new DrainResponse { Stopped = stopped };
    }

    public override async Task WatchVolumes(WatchVolumesRequest request, IServerStreamWriter<VolumeEvent> responseStream, ServerCallContext context)
    {
        var filter = request.VolumeId.Length == 0 ? null : Validate.VolumeId(request.VolumeId);
        var reader = _volumes.Events.Subscribe(out var subscription);
        using (subscription)
        {
            if (request.IncludeCurrent)
            {
                foreach (var volume in _volumes.List().Where(v => filter is null || v.VolumeId == filter))
                {
                    await responseStream.WriteAsync(new VolumeEvent { Time = volume.StateSince, VolumeId = volume.VolumeId, State = volume.State, Reason = "Current", Message = volume.LastError, Volume = volume });
                }
            }
            await foreach (var volumeEvent in reader.ReadAllAsync(context.CancellationToken))
            {
                if (filter is null || volumeEvent.VolumeId == filter)
                {
                    await responseStream.WriteAsync(volumeEvent);
                }
            }
        }
    }

    private static PodRef CheckPod(PodRef pod)
    {
        if (pod.Uid.Length > 64 || pod.Name.Length > 253 || pod.Namespace.Length > 63)
        {
            throw Validate.Invalid("pod", "uid, name or namespace is longer than Kubernetes allows");
        }
        if ((pod.Uid + pod.Name + pod.Namespace).Any(char.IsControl))
        {
            throw Validate.Invalid("pod", "must not contain control characters");
        }
        return pod;
    }
}

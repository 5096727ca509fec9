using System.Collections.Concurrent;
using Google.Protobuf;
using Grpc.Core;
using S3Supervisor.Api.V1;

namespace S3Supervisor.Plugin.Tests.Fakes;

/// <summary>
/// An in-process supervisor: records every request, keeps a small volume table, and lets a test
/// make any call fail or block first (<see cref="Before"/>).
/// </summary>
public sealed class FakeSupervisor : Supervisor.SupervisorBase
{
    public ConcurrentQueue<IMessage> Requests { get; } = new();

    public ConcurrentDictionary<string, Volume> Volumes { get; } = new(StringComparer.Ordinal);

    /// <summary>Runs before each call with its request; throw to fail the call, await to hold it.</summary>
    public Func<IMessage, Task>? Before { get; set; }

    public T OnlyRequest<T>() where T : IMessage => Assert.Single(Requests.OfType<T>());

    public override async Task<StageVolumeResponse> StageVolume(StageVolumeRequest request, ServerCallContext context)
    {
        await Enter(request);
        var volume = Volumes.GetOrAdd(request.VolumeId, _ => new Volume
        {
            VolumeId = request.VolumeId,
            StagingPath = request.StagingPath,
            Source = request.Source,
            State = VolumeState.Ready,
        });
        return new StageVolumeResponse { Volume = volume };
    }

    public override async Task<PublishVolumeResponse> PublishVolume(PublishVolumeRequest request, ServerCallContext context)
    {
        await Enter(request);
        if (!Volumes.TryGetValue(request.VolumeId, out var volume))
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"volume {request.VolumeId} is not staged"));
        }
        if (volume.Targets.All(t => t.TargetPath != request.TargetPath))
        {
            volume.Targets.Add(new PublishTarget { TargetPath = request.TargetPath, ReadOnly = request.ReadOnly, Pod = request.Pod });
        }
        return new PublishVolumeResponse { Volume = volume };
    }

    public override async Task<UnpublishVolumeResponse> UnpublishVolume(UnpublishVolumeRequest request, ServerCallContext context)
    {
        await Enter(request);
        if (Volumes.TryGetValue(request.VolumeId, out var volume))
        {
            var target = volume.Targets.FirstOrDefault(t => t.TargetPath == request.TargetPath);
            if (target is not null)
            {
                volume.Targets.Remove(target);
            }
        }
        return new UnpublishVolumeResponse();
    }

    public override async Task<UnstageVolumeResponse> UnstageVolume(UnstageVolumeRequest request, ServerCallContext context)
    {
        await Enter(request);
        Volumes.TryRemove(request.VolumeId, out _);
        return new UnstageVolumeResponse();
    }

    public override async Task<Volume> GetVolume(GetVolumeRequest request, ServerCallContext context)
    {
        await Enter(request);
        return Volumes.TryGetValue(request.VolumeId, out var volume)
            ? volume
            : throw new RpcException(new Status(StatusCode.NotFound, $"volume {request.VolumeId} is not known"));
    }

    public override async Task<ListVolumesResponse> ListVolumes(ListVolumesRequest request, ServerCallContext context)
    {
        await Enter(request);
        return new ListVolumesResponse { Volumes = { Volumes.Values } };
    }

    private async Task Enter(IMessage request)
    {
        Requests.Enqueue(request);
        if (Before is { } before)
        {
            await before(request);
        }
    }
}

using Grpc.Core;
using Grpc.Core.Interceptors;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Api;

/// <summary>
/// The host listens before its services start, so the first calls after a restart could arrive while
/// the predecessor's children are still being adopted (a few milliseconds). They wait for it: the
/// first ListVolumes then shows every adopted volume Ready, and no call races a volume being taken over.
/// </summary>
public sealed class AdoptionGateInterceptor(VolumeManager volumes) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        await volumes.AdoptionSettled.WaitAsync(context.CancellationToken).ConfigureAwait(false);
        return await continuation(request, context).ConfigureAwait(false);
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await volumes.AdoptionSettled.WaitAsync(context.CancellationToken).ConfigureAwait(false);
        await continuation(request, responseStream, context).ConfigureAwait(false);
    }
}

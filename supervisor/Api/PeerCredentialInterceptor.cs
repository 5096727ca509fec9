using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Options;

namespace S3Supervisor.Supervisor.Api;

/// <summary>
/// Admits a call only when the peer's uid (SO_PEERCRED, read once per connection by the Kestrel
/// connection middleware that Hosting puts on the socket) is on the allow-list.
/// </summary>
public sealed class PeerCredentialInterceptor : Interceptor
{
    public const string PeerKey = "s3supervisor.peer";
    private readonly HashSet<uint> _allowed;

    public PeerCredentialInterceptor(IOptions<ApiAccessOptions> options)
    {
        _allowed = [.. options.Value.AllowedUids];
    }

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    private void Check(ServerCallContext context)
    {
        var items = context.GetHttpContext().Features.Get<IConnectionItemsFeature>()?.Items;
        if (items is null || !items.TryGetValue(PeerKey, out var value) || value is not PeerCredentials peer)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, "caller: peer credentials unavailable"));
        }
        if (!_allowed.Contains(peer.Uid))
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"caller: uid {peer.Uid} is not allowed (Supervisor:AllowedUids)"));
        }
    }
}

public sealed record PeerCredentials(int Pid, uint Uid, uint Gid);

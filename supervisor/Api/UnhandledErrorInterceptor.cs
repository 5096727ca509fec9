using Grpc.Core;
using Grpc.Core.Interceptors;
using S3Supervisor.Common;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Api;

/// <summary>
/// Every RPC's errors pass here: a domain error (<see cref="VolumeException"/>) gets its status from
/// <see cref="VolumeErrorMapping"/>. The last line: any other exception that escapes a handler (a
/// bug, by definition) must not reach the client as UNKNOWN "Exception was thrown by handler". It
/// becomes INTERNAL with a short reference that the log line carries too, so an operator can find
/// the stack trace. Its text is never sent: it might carry anything. Every status detail that does
/// leave is stripped of URL userinfo.
/// </summary>
public sealed partial class UnhandledErrorInterceptor(ILogger<UnhandledErrorInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw Outgoing(e, context);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw Outgoing(e, context);
        }
    }

    /// <summary>What the client gets for an exception out of a handler.</summary>
    private RpcException Outgoing(Exception e, ServerCallContext context) => e switch
    {
        RpcException rpc => Redacted(rpc),
        VolumeException domain => Redacted(VolumeErrorMapping.ToRpc(domain)),
        _ => Translate(e, context),
    };

    private static RpcException Redacted(RpcException e)
    {
        var detail = Redaction.UrlUserInfo(e.Status.Detail);
        return detail == e.Status.Detail ? e : new RpcException(new Status(e.StatusCode, detail), e.Trailers);
    }

    private RpcException Translate(Exception e, ServerCallContext context)
    {
        if (e is OperationCanceledException && context.CancellationToken.IsCancellationRequested)
        {
            return new RpcException(new Status(StatusCode.Cancelled, "the caller cancelled the call"));
        }
        var reference = ErrorReference.New();
        LogUnhandled(context.Method, reference, Redaction.UrlUserInfo(e.ToString()));
        return new RpcException(new Status(StatusCode.Internal, ErrorReference.Detail(reference, "supervisor")));
    }

    [LoggerMessage(EventId = 1900, Level = LogLevel.Error, Message = "gRPC call {Method} failed unexpectedly (ref {Reference}): {Error}")]
    private partial void LogUnhandled(string method, string reference, string error);
}

using Grpc.Core;
using Grpc.Core.Interceptors;

namespace S3Supervisor.Supervisor.Api;

/// <summary>
/// The last line: an exception that escapes a handler (a bug, by definition) must not reach the
/// client as UNKNOWN "Exception was thrown by handler". It becomes INTERNAL with a short reference
/// that the log line carries too, so an operator can find the stack trace. Its text is never sent:
/// it might carry anything.
/// </summary>
public sealed partial class UnhandledErrorInterceptor(ILogger<UnhandledErrorInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw Translate(e, context);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw Translate(e, context);
        }
    }

    private RpcException Translate(Exception e, ServerCallContext context)
    {
        if (e is OperationCanceledException && context.CancellationToken.IsCancellationRequested)
        {
            return new RpcException(new Status(StatusCode.Cancelled, "the caller cancelled the call"));
        }
        var reference = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        LogUnhandled(e, context.Method, reference);
        return new RpcException(new Status(StatusCode.Internal, $"internal error in the supervisor (ref {reference}); see its log"));
    }

    [LoggerMessage(EventId = 1900, Level = LogLevel.Error, Message = "Unhandled error in {Method} (ref {Reference})")]
    private partial void LogUnhandled(Exception exception, string method, string reference);
}

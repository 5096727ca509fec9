using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;

namespace S3Supervisor.Plugin.Csi;

/// <summary>
/// One log line per CSI call in and one out, the request rendered with its secrets stripped.
/// Frequent polling calls (Probe, capabilities, stats) log at Debug. An exception that is not an
/// RpcException becomes Internal with a generic message: its text might carry anything.
/// </summary>
public sealed partial class CsiLoggingInterceptor(ILogger<CsiLoggingInterceptor> logger) : Interceptor
{
    private static readonly HashSet<string> Quiet = new(StringComparer.Ordinal)
    {
        "Probe", "GetPluginInfo", "GetPluginCapabilities", "NodeGetCapabilities", "NodeGetInfo", "ControllerGetCapabilities", "NodeGetVolumeStats", "Check", "Watch",
    };

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        var method = context.Method[(context.Method.LastIndexOf('/') + 1)..];
        var level = Quiet.Contains(method) ? LogLevel.Debug : LogLevel.Information;
        if (logger.IsEnabled(level))
        {
            Log.Request(logger, level, context.Method, request is IMessage m ? SecretStripper.Format(m) : "?");
        }
        var started = Stopwatch.GetTimestamp();
        try
        {
            var response = await continuation(request, context).ConfigureAwait(false);
            Log.Succeeded(logger, level, context.Method, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            return response;
        }
        catch (RpcException e)
        {
            Log.Failed(logger, context.Method, e.StatusCode, e.Status.Detail, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            throw;
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            Log.Failed(logger, context.Method, StatusCode.Cancelled, "the caller cancelled the call", Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            throw new RpcException(new Status(StatusCode.Cancelled, "the caller cancelled the call"));
        }
        catch (Exception e)
        {
            Log.Unexpected(logger, e, context.Method);
            throw new RpcException(new Status(StatusCode.Internal, $"unexpected {e.GetType().Name} in the plugin; see its log"));
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 100, Message = "CSI call {Method} {Request}")]
        public static partial void Request(ILogger logger, LogLevel level, string method, string request);

        [LoggerMessage(EventId = 101, Message = "CSI call {Method} succeeded in {ElapsedMs:F1} ms")]
        public static partial void Succeeded(ILogger logger, LogLevel level, string method, double elapsedMs);

        [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "CSI call {Method} failed with {Code}: {Detail} ({ElapsedMs:F1} ms)")]
        public static partial void Failed(ILogger logger, string method, StatusCode code, string detail, double elapsedMs);

        [LoggerMessage(EventId = 103, Level = LogLevel.Error, Message = "CSI call {Method} failed unexpectedly")]
        public static partial void Unexpected(ILogger logger, Exception exception, string method);
    }
}

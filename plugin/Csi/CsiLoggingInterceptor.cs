using System.Diagnostics;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using S3Supervisor.Common;

namespace S3Supervisor.Plugin.Csi;

/// <summary>
/// One log line per CSI call in and one out, the request rendered with its secrets stripped.
/// Frequent polling calls (Probe, capabilities, stats) log at Debug. An exception that is not an
/// RpcException becomes Internal with a short reference to its log line: its text might carry anything.
/// Every status detail and every line is passed through <see cref="Redaction.UrlUserInfo"/>.
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
            // Secrets stripped by field, and URL userinfo (a key in an endpoint) wherever it hides.
            Log.Request(logger, level, context.Method, request is IMessage m ? Redaction.UrlUserInfo(SecretStripper.Format(m)) : "?");
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
            // A detail may quote an endpoint or a child's output, from here or from the supervisor.
            var detail = Redaction.UrlUserInfo(e.Status.Detail);
            Log.Failed(logger, context.Method, e.StatusCode, detail, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            if (string.Equals(detail, e.Status.Detail, StringComparison.Ordinal))
            {
                throw;
            }
            throw new RpcException(new Status(e.StatusCode, detail), e.Trailers);
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            Log.Failed(logger, context.Method, StatusCode.Cancelled, "the caller cancelled the call", Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            throw new RpcException(new Status(StatusCode.Cancelled, "the caller cancelled the call"));
        }
        catch (Exception e)
        {
            // The caller gets a reference to the log line, never the exception's text.
            var reference = ErrorReference.New();
            Log.Unexpected(logger, context.Method, reference, Redaction.UrlUserInfo(e.ToString()));
            throw new RpcException(new Status(StatusCode.Internal, ErrorReference.Detail(reference, "plugin")));
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

        /// <summary>The exception goes in as redacted text, not as an Exception the logger would print verbatim.</summary>
        [LoggerMessage(EventId = 103, Level = LogLevel.Error, Message = "CSI call {Method} failed unexpectedly (ref {Reference}): {Exception}")]
        public static partial void Unexpected(ILogger logger, string method, string reference, string exception);
    }
}

using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using ServiceDescriptor = Google.Protobuf.Reflection.ServiceDescriptor;
using Microsoft.Extensions.Logging;

namespace S3Supervisor.Common;

/// <summary>
/// Answers a gRPC request whose message does not parse as the method's input type with
/// INVALID_ARGUMENT ("request: is not a valid csi.v1.NodeStageVolumeRequest message").
/// grpc-dotnet deserialises the request before any interceptor runs, and a parser exception there
/// becomes UNKNOWN ("Exception was thrown by handler"); so the single message of a unary or
/// server-streaming call is checked here, before the gRPC endpoint, against the same parser, and
/// handed on unchanged when it is valid. Client- and duplex-streaming methods are not touched.
/// </summary>
public static partial class RequestFrameValidation
{
    /// <summary>grpc-dotnet's default MaxReceiveMessageSize; larger messages are left to its own ResourceExhausted.</summary>
    public const int DefaultMaxMessageSize = 4 * 1024 * 1024;

    private const int HeaderLength = 5;

    /// <summary>Checks every unary and server-streaming request of <paramref name="services"/>. Call before the gRPC services are mapped.</summary>
    public static IApplicationBuilder UseRequestFrameValidation(this IApplicationBuilder app, params ServiceDescriptor[] services) =>
        app.UseRequestFrameValidation(DefaultMaxMessageSize, services);

    public static IApplicationBuilder UseRequestFrameValidation(this IApplicationBuilder app, int maxMessageSize, params ServiceDescriptor[] services)
    {
        var inputs = InputTypes(services);
        var logger = app.ApplicationServices.GetService<ILoggerFactory>()?.CreateLogger(typeof(RequestFrameValidation).FullName!);
        return app.Use(next => context => CheckAsync(context, next, inputs, maxMessageSize, logger));
    }

    /// <summary>"/package.Service/Method" → the input type, for the methods whose request is one message.</summary>
    public static IReadOnlyDictionary<string, MessageDescriptor> InputTypes(IEnumerable<ServiceDescriptor> services)
    {
        var inputs = new Dictionary<string, MessageDescriptor>(StringComparer.Ordinal);
        foreach (var service in services)
        {
            foreach (var method in service.Methods.Where(m => !m.IsClientStreaming))
            {
                inputs[$"/{service.FullName}/{method.Name}"] = method.InputType;
            }
        }
        return inputs;
    }

    /// <summary>Why a message frame is not a valid <paramref name="input"/>, or null when it is (or when gRPC itself should judge it).</summary>
    public static string? Problem(MessageDescriptor input, ReadOnlySpan<byte> payload)
    {
        try
        {
            input.Parser.ParseFrom(payload);
            return null;
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or ArgumentException or InvalidOperationException)
        {
            return $"request: is not a valid {input.FullName} message";
        }
    }

    private static async Task CheckAsync(HttpContext context, RequestDelegate next, IReadOnlyDictionary<string, MessageDescriptor> inputs, int maxMessageSize, ILogger? logger)
    {
        var request = context.Request;
        if (!HttpMethods.IsPost(request.Method)
            || request.ContentType is not { } contentType
            || !contentType.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase)
            || contentType.StartsWith("application/grpc-web", StringComparison.OrdinalIgnoreCase)
            || !inputs.TryGetValue(request.Path.Value ?? string.Empty, out var input))
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        var body = request.Body;
        var aborted = context.RequestAborted;
        byte[] frame;
        int read;
        try
        {
            var header = new byte[HeaderLength];
            read = await body.ReadAtLeastAsync(header, HeaderLength, throwOnEndOfStream: false, aborted).ConfigureAwait(false);
            var length = read == HeaderLength ? BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(1)) : 0;
            if (read < HeaderLength || header[0] > 1 || length > (uint)maxMessageSize)
            {
                // An incomplete frame, a bad flag or an oversize message: gRPC's own answers fit these.
                request.Body = new PrefixedStream(header.AsMemory(0, read), body);
                await next(context).ConfigureAwait(false);
                return;
            }
            frame = new byte[HeaderLength + length];
            header.CopyTo(frame, 0);
            read = HeaderLength + await body.ReadAtLeastAsync(frame.AsMemory(HeaderLength), (int)length, throwOnEndOfStream: false, aborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException || e is OperationCanceledException && aborted.IsCancellationRequested)
        {
            // The caller went away (or the stream broke) while sending: there is nobody to answer.
            return;
        }

        if (read == frame.Length)
        {
            var problem = Check(input, frame, request.Headers["grpc-encoding"].ToString(), maxMessageSize);
            if (problem is not null)
            {
                if (logger is not null)
                {
                    Log.Refused(logger, request.Path.Value ?? string.Empty, problem);
                }
                Refuse(context.Response, problem);
                return;
            }
        }
        request.Body = new PrefixedStream(frame.AsMemory(0, read), body);
        await next(context).ConfigureAwait(false);
    }

    private static string? Check(MessageDescriptor input, byte[] frame, string encoding, int maxMessageSize)
    {
        var payload = frame.AsSpan(HeaderLength);
        if (frame[0] == 0)
        {
            return Problem(input, payload);
        }
        Stream? decompressor = encoding switch
        {
            "gzip" => new GZipStream(new MemoryStream(frame, HeaderLength, frame.Length - HeaderLength), CompressionMode.Decompress),
            "deflate" => new ZLibStream(new MemoryStream(frame, HeaderLength, frame.Length - HeaderLength), CompressionMode.Decompress),
            _ => null,
        };
        if (decompressor is null)
        {
            // Unknown or missing grpc-encoding: gRPC answers that itself.
            return null;
        }
        using (decompressor)
        {
            var buffer = new byte[maxMessageSize + 1];
            int total;
            try
            {
                total = decompressor.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            }
            catch (InvalidDataException)
            {
                return $"request: is not a valid {encoding}-compressed {input.FullName} message";
            }
            return total > maxMessageSize ? null : Problem(input, buffer.AsSpan(0, total));
        }
    }

    /// <summary>A trailers-only gRPC response: HTTP 200 with grpc-status and grpc-message in the headers.</summary>
    private static void Refuse(HttpResponse response, string detail)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        response.Headers["grpc-status"] = "3";
        response.Headers["grpc-message"] = PercentEncode(detail);
    }

    /// <summary>grpc-message encoding: UTF-8, every byte outside printable ASCII and '%' percent-encoded.</summary>
    private static string PercentEncode(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            if (b is >= 0x20 and <= 0x7e && b != (byte)'%')
            {
                sb.Append((char)b);
            }
            else
            {
                sb.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        return sb.ToString();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 90, Level = LogLevel.Warning, Message = "gRPC call {Method} refused: {Problem}")]
        public static partial void Refused(ILogger logger, string method, string problem);
    }

    /// <summary>The bytes already read, then the rest of the original body: gRPC reads the request as sent.</summary>
    private sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream inner) : Stream
    {
        private ReadOnlyMemory<byte> _prefix = prefix;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_prefix.IsEmpty)
            {
                return inner.Read(buffer);
            }
            var n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_prefix.IsEmpty)
            {
                return inner.ReadAsync(buffer, cancellationToken);
            }
            var n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer.Span);
            _prefix = _prefix[n..];
            return ValueTask.FromResult(n);
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

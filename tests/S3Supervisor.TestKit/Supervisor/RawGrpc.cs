using Grpc.Core;
using Grpc.Net.Client;

namespace S3Supervisor.TestKit.Supervisor;

/// <summary>
/// Unary calls with a request of raw bytes, as a hostile or broken client sends them: the bytes go
/// into the gRPC frame as they are, whatever the method's request type.
/// </summary>
public static class RawGrpc
{
    private static readonly Marshaller<byte[]> Bytes = Marshallers.Create(b => b, b => b);

    /// <param name="fullMethod">"/package.Service/Method", e.g. "/csi.v1.Node/NodeStageVolume".</param>
    public static async Task<byte[]> CallAsync(GrpcChannel channel, string fullMethod, byte[] request, TimeSpan? timeout = null)
    {
        var parts = fullMethod.Trim('/').Split('/');
        var method = new Method<byte[], byte[]>(MethodType.Unary, parts[0], parts[1], Bytes, Bytes);
        return await channel.CreateCallInvoker()
            .AsyncUnaryCall(method, null, new CallOptions(deadline: DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10))), request)
            .ResponseAsync.ConfigureAwait(false);
    }

    /// <summary>Byte strings that are not valid protobuf for any message type (each with why).</summary>
    public static IReadOnlyList<(string Name, byte[] Bytes)> Malformed { get; } =
    [
        ("unterminated-varint", [0xFF]),
        ("truncated-length-delimited", [0x0A, 0x05, 0x61]),
        ("varint-without-value", [0x08]),
        ("tag-zero", [0x00, 0x01]),
        ("unclosed-group", [0x0B]),
        ("invalid-utf8-string", [0x0A, 0x02, 0xC3, 0x28]),
        ("wire-type-7", [0x0F, 0x00]),
    ];
}

using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace S3Supervisor.TestKit;

/// <summary>
/// Talks to a Ceph daemon's admin socket (what <c>ceph daemon NAME CMD</c> does, without the
/// ~250 ms start of the Python CLI): send the JSON command and a NUL, read a 4-byte big-endian
/// length, then that many bytes of JSON.
/// </summary>
internal static class CephAdminSocket
{
    public static async Task<JsonDocument?> TryCommandAsync(string socketPath, string prefix, CancellationToken cancellationToken)
    {
        if (!File.Exists(socketPath))
        {
            return null;
        }

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), timeout.Token).ConfigureAwait(false);
            var request = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Dictionary<string, string> { ["prefix"] = prefix }) + "\0");
            await socket.SendAsync(request, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            var header = new byte[4];
            await ReceiveExactlyAsync(socket, header, timeout.Token).ConfigureAwait(false);
            var length = BinaryPrimitives.ReadUInt32BigEndian(header);
            if (length > 16 * 1024 * 1024)
            {
                return null;
            }

            var body = new byte[length];
            await ReceiveExactlyAsync(socket, body, timeout.Token).ConfigureAwait(false);
            return JsonDocument.Parse(body);
        }
        catch (Exception e) when (e is SocketException or IOException or JsonException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>The "state" string of <c>mon_status</c> ("leader" once a one-mon cluster has quorum) or of an OSD's <c>status</c> ("active" once it is up in the map).</summary>
    public static async Task<string?> StateAsync(string socketPath, string prefix, CancellationToken cancellationToken)
    {
        using var doc = await TryCommandAsync(socketPath, prefix, cancellationToken).ConfigureAwait(false);
        return doc is not null && doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("state", out var state)
            ? state.GetString()
            : null;
    }

    private static async Task ReceiveExactlyAsync(Socket socket, byte[] buffer, CancellationToken cancellationToken)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                throw new IOException("admin socket closed early");
            }

            read += n;
        }
    }
}

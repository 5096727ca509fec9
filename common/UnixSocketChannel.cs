using System.Net.Sockets;
using Grpc.Net.Client;

namespace S3Supervisor.Common;

/// <summary>A gRPC channel to a server on a unix domain socket (HTTP/2 cleartext).</summary>
public static class UnixSocketChannel
{
    public static GrpcChannel Create(string socketPath, TimeSpan? connectTimeout = null)
    {
        var endpoint = new UnixDomainSocketEndPoint(socketPath);
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = connectTimeout ?? TimeSpan.FromSeconds(5),
            // Keep one connection alive; a restarted server is reconnected to on the next call.
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            // With a ConnectCallback grpc-dotnet connects on each call that needs a connection (its
            // passive transport): no reconnect back-off grows while the supervisor is down, so the first
            // call after a restart reaches the new one (ChildAdoptionTests). Setting
            // InitialReconnectBackoff/MaxReconnectBackoff on the channel options changed that (the
            // plugin's Probe against a fake supervisor then timed out): leave them unset.
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = 16 * 1024 * 1024,
        });
    }
}

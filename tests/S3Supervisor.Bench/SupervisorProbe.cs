using System.Diagnostics;
using System.Net.Sockets;
using Grpc.Core;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.Bench;

/// <summary>
/// Starts a supervisor through <see cref="SupervisorProcess.StartAsync"/> and, beside it, times the
/// moment its socket first answers ListVolumes more finely than StartAsync's own 25 ms poll: a raw
/// connect every 2 ms, then a ListVolumes on a fresh channel.
/// </summary>
internal static class SupervisorProbe
{
    public sealed record Started(SupervisorProcess Supervisor, TimeSpan Listening);

    /// <summary>Starts a supervisor (<paramref name="kind"/>: AOT or JIT, the test kit's choice when null); <paramref name="clock"/> (started by the caller just before) dates the first answer.</summary>
    public static async Task<Started> StartAsync(SupervisorLayout layout, IDictionary<string, string>? settings, Stopwatch clock, CancellationToken cancellationToken, BinaryKind? kind = null)
    {
        using var stopProbe = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var probe = Task.Run(() => FirstAnswerAsync(layout.SocketPath, clock, stopProbe.Token), CancellationToken.None);
        SupervisorProcess supervisor;
        try
        {
            supervisor = await SupervisorProcess.StartAsync(layout, settings, TimeSpan.FromSeconds(60), kind: kind);
        }
        catch
        {
            await stopProbe.CancelAsync();
            await Task.WhenAny(probe);
            throw;
        }
        try
        {
            // StartAsync saw an answer, so the probe gets one within a poll or two.
            var finished = await Task.WhenAny(probe, Task.Delay(TimeSpan.FromSeconds(10), cancellationToken));
            if (finished != probe)
            {
                throw new TimeoutException("the readiness probe got no answer although the supervisor answered StartAsync");
            }
            return new Started(supervisor, await probe);
        }
        catch
        {
            await stopProbe.CancelAsync();
            await supervisor.KillAsync();
            await supervisor.DisposeAsync();
            throw;
        }
    }

    private static async Task<TimeSpan> FirstAnswerAsync(string socketPath, Stopwatch clock, CancellationToken cancellationToken)
    {
        var endpoint = new UnixDomainSocketEndPoint(socketPath);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (CanConnect(endpoint))
            {
                using var channel = UnixSocketChannel.Create(socketPath);
                var client = new S3Supervisor.Api.V1.Supervisor.SupervisorClient(channel);
                try
                {
                    await client.ListVolumesAsync(new ListVolumesRequest(), deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: cancellationToken);
                    return clock.Elapsed;
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.PermissionDenied)
                {
                    return clock.Elapsed; // it answered
                }
                catch (RpcException)
                {
                }
            }
            await Task.Delay(2, cancellationToken);
        }
    }

    internal static bool CanConnect(UnixDomainSocketEndPoint endpoint)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(endpoint);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

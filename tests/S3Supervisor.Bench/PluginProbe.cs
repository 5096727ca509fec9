using System.Diagnostics;
using System.Net.Sockets;
using Csi.V1;
using Grpc.Core;
using S3Supervisor.Common;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.Bench;

/// <summary>
/// Starts a plugin in node mode through <see cref="PluginProcess.StartAsync"/> and, beside it, times the
/// moment its CSI socket first answers Probe with ready = true (the supervisor behind it answering too):
/// what kubelet's livenessprobe and the registrar wait for after a plugin restart. A raw connect every
/// 2 ms, then Probe on a fresh channel.
/// </summary>
internal static class PluginProbe
{
    public sealed record Started(PluginProcess Plugin, TimeSpan ProbeReady);

    public static async Task<Started> StartAsync(string csiSocket, string supervisorSocket, BinaryKind kind, Stopwatch clock, CancellationToken cancellationToken)
    {
        using var stopProbe = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var probe = Task.Run(() => FirstReadyAsync(csiSocket, clock, stopProbe.Token), CancellationToken.None);
        PluginProcess plugin;
        try
        {
            plugin = await PluginProcess.StartAsync(csiSocket, supervisorSocket, settings: new Dictionary<string, string> { ["Csi__Mode"] = "node" }, timeout: TimeSpan.FromSeconds(60), kind: kind);
        }
        catch
        {
            await stopProbe.CancelAsync();
            await Task.WhenAny(probe);
            throw;
        }
        try
        {
            var finished = await Task.WhenAny(probe, Task.Delay(TimeSpan.FromSeconds(30), cancellationToken));
            if (finished != probe)
            {
                throw new TimeoutException($"the plugin answered GetPluginInfo but Probe was not ready within 30 s:\n{plugin.Output}");
            }
            return new Started(plugin, await probe);
        }
        catch
        {
            await stopProbe.CancelAsync();
            await plugin.DisposeAsync();
            throw;
        }
    }

    private static async Task<TimeSpan> FirstReadyAsync(string socketPath, Stopwatch clock, CancellationToken cancellationToken)
    {
        var endpoint = new UnixDomainSocketEndPoint(socketPath);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (SupervisorProbe.CanConnect(endpoint))
            {
                using var channel = UnixSocketChannel.Create(socketPath);
                try
                {
                    var reply = await new Identity.IdentityClient(channel).ProbeAsync(new ProbeRequest(), deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: cancellationToken);
                    if (reply.Ready is null or true) // unset means ready (CSI)
                    {
                        return clock.Elapsed;
                    }
                }
                catch (RpcException)
                {
                }
            }
            await Task.Delay(2, cancellationToken);
        }
    }
}

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

    /// <summary>
    /// After a supervisor restart: the plugin keeps running, one long-lived client (like kubelet's) calls
    /// Probe every 2 ms from before the new supervisor starts; the time from the new supervisor's first
    /// answer (<see cref="SupervisorProbe"/>) to the plugin's first ready Probe, for each of
    /// <see cref="BenchOptions.Repeat"/> restarts after a warm-up. Each gap lasts <see cref="SupervisorProcess.RestartDelay"/>.
    /// </summary>
    public static async Task<List<TimeSpan>> ReconnectAfterSupervisorRestartAsync(BenchOptions options, string root, BinaryKind kind, CancellationToken cancellationToken)
    {
        var layout = new SupervisorLayout(Path.Combine(root, "sv-reconnect"));
        var supervisor = (await SupervisorProbe.StartAsync(layout, settings: null, Stopwatch.StartNew(), cancellationToken, kind)).Supervisor;
        PluginProcess? plugin = null;
        var result = new List<TimeSpan>();
        try
        {
            var csiSocket = Path.Combine(root, "csi-reconnect", "csi.sock");
            plugin = (await StartAsync(csiSocket, layout.SocketPath, kind, Stopwatch.StartNew(), cancellationToken)).Plugin;
            using var channel = UnixSocketChannel.Create(csiSocket);
            var identity = new Identity.IdentityClient(channel);
            for (var i = 0; i <= options.Repeat; i++)
            {
                Out.Progress($"plugin ({kind}): supervisor restart {(i == 0 ? "warm-up" : $"{i}/{options.Repeat}")}");
                await supervisor.KillAsync();
                await supervisor.DisposeAsync();
                var down = await identity.ProbeAsync(new ProbeRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: cancellationToken);
                if (down.Ready is not false)
                {
                    throw new InvalidOperationException("the plugin's Probe said ready while no supervisor ran");
                }
                await SupervisorProcess.RestartGapAsync();
                var clock = Stopwatch.StartNew();
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var ready = Task.Run(async () =>
                {
                    while (true)
                    {
                        stop.Token.ThrowIfCancellationRequested();
                        try
                        {
                            var reply = await identity.ProbeAsync(new ProbeRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: stop.Token);
                            if (reply.Ready is null or true)
                            {
                                return clock.Elapsed;
                            }
                        }
                        catch (RpcException) when (!stop.IsCancellationRequested)
                        {
                        }
                        await Task.Delay(2, stop.Token);
                    }
                }, CancellationToken.None);
                SupervisorProbe.Started started;
                try
                {
                    started = await SupervisorProbe.StartAsync(layout, settings: null, clock, cancellationToken, kind);
                }
                catch
                {
                    await stop.CancelAsync();
                    throw;
                }
                supervisor = started.Supervisor;
                if (await Task.WhenAny(ready, Task.Delay(TimeSpan.FromSeconds(60), cancellationToken)) != ready)
                {
                    await stop.CancelAsync();
                    throw new TimeoutException($"the plugin's Probe was not ready within 60 s of the new supervisor listening:\n{plugin.Output}");
                }
                if (i > 0)
                {
                    result.Add(await ready - started.Listening);
                }
            }
        }
        finally
        {
            if (plugin is not null)
            {
                await Cleanup.StepAsync("the plugin", async () => await plugin.DisposeAsync());
            }
            await Cleanup.StepAsync("the supervisor", async () => await supervisor.DisposeAsync());
            await Cleanup.StepAsync("mounts under its layout", () => SupervisorProcess.CleanUpAsync(layout));
        }
        return result;
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

using System.Diagnostics;
using Csi.V1;
using Grpc.Core;
using Grpc.Net.Client;
using S3Supervisor.Common;

namespace S3Supervisor.TestKit.Supervisor;

/// <summary>
/// The real CSI plugin process (<see cref="ProductBinary.ForPlugin"/>: the NativeAOT binary when published,
/// else `dotnet s3csi-plugin.dll`, copied next to the test assembly by the project reference) on a CSI socket of its own, talking to a supervisor's socket. It can be killed
/// with SIGKILL and started again on the same socket, as kubelet restarts a container.
/// </summary>
public sealed class PluginProcess : IAsyncDisposable
{
    private readonly CapturedProcess _process;
    private bool _disposed;

    private PluginProcess(CapturedProcess process, string socketPath)
    {
        _process = process;
        SocketPath = socketPath;
        Channel = UnixSocketChannel.Create(socketPath);
        Identity = new Identity.IdentityClient(Channel);
        Node = new Node.NodeClient(Channel);
        Controller = new Controller.ControllerClient(Channel);
    }

    public string SocketPath { get; }

    public int Pid => _process.Pid;

    public GrpcChannel Channel { get; }

    public Identity.IdentityClient Identity { get; }

    public Node.NodeClient Node { get; }

    public Controller.ControllerClient Controller { get; }

    public string Output => _process.Output;

    /// <summary>The executable the tests run (the AOT binary when published).</summary>
    public static ProductBinary Binary => ProductBinary.ForPlugin();

    /// <param name="socketPath">The plugin's CSI socket (kubelet's csi.sock).</param>
    /// <param name="supervisorSocket">The supervisor's socket.</param>
    /// <param name="kind">AOT or JIT (the benchmark compares them); <see cref="Binary"/> by default.</param>
    public static async Task<PluginProcess> StartAsync(string socketPath, string supervisorSocket, string nodeId = "node-a", IDictionary<string, string>? settings = null, TimeSpan? timeout = null, BinaryKind? kind = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(socketPath)!);
        var environment = new Dictionary<string, string>
        {
            ["Csi__Endpoint"] = "unix://" + socketPath,
            ["Csi__NodeId"] = nodeId,
            ["Csi__SupervisorSocket"] = supervisorSocket,
            ["Csi__Mode"] = "all",
            ["Logging__LogLevel__Microsoft.AspNetCore"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            environment[key] = value;
        }
        var process = CapturedProcess.Start(ProductBinary.ForPlugin(kind), environment);
        var plugin = new PluginProcess(process, socketPath);
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"the plugin exited with code {process.ExitCode}:\n{plugin.Output}");
            }
            try
            {
                await plugin.Identity.GetPluginInfoAsync(new GetPluginInfoRequest(), deadline: DateTime.UtcNow.AddSeconds(2)).ConfigureAwait(false);
                return plugin;
            }
            catch (RpcException) when (stopwatch.Elapsed < (timeout ?? TimeSpan.FromSeconds(30)))
            {
                await Task.Delay(25).ConfigureAwait(false);
            }
        }
    }

    /// <summary>SIGKILL, as an OOM kill or a container crash.</summary>
    public Task KillAsync() => _process.KillAsync();

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        await _process.StopAsync(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
        Channel.Dispose();
        _process.Dispose();
    }
}

using System.Diagnostics;
using Csi.V1;
using Grpc.Core;
using Grpc.Net.Client;
using S3Supervisor.Common;

namespace S3Supervisor.TestKit.Supervisor;

/// <summary>
/// The real CSI plugin process (`dotnet s3csi-plugin.dll`, copied next to the test assembly by the
/// project reference) on a CSI socket of its own, talking to a supervisor's socket. It can be killed
/// with SIGKILL and started again on the same socket, as kubelet restarts a container.
/// </summary>
public sealed class PluginProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];
    private readonly Lock _outputLock = new();
    private bool _disposed;

    private PluginProcess(Process process, string socketPath)
    {
        _process = process;
        SocketPath = socketPath;
        Channel = UnixSocketChannel.Create(socketPath);
        Identity = new Identity.IdentityClient(Channel);
        Node = new Node.NodeClient(Channel);
        Controller = new Controller.ControllerClient(Channel);
    }

    public string SocketPath { get; }

    public int Pid => _process.Id;

    public GrpcChannel Channel { get; }

    public Identity.IdentityClient Identity { get; }

    public Node.NodeClient Node { get; }

    public Controller.ControllerClient Controller { get; }

    public string Output
    {
        get
        {
            lock (_outputLock)
            {
                return string.Join('\n', _output);
            }
        }
    }

    public static string BinaryPath => Path.Combine(AppContext.BaseDirectory, "s3csi-plugin.dll");

    /// <param name="socketPath">The plugin's CSI socket (kubelet's csi.sock).</param>
    /// <param name="supervisorSocket">The supervisor's socket.</param>
    public static async Task<PluginProcess> StartAsync(string socketPath, string supervisorSocket, string nodeId = "node-a", IDictionary<string, string>? settings = null, TimeSpan? timeout = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(socketPath)!);
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(BinaryPath);
        info.Environment["Csi__Endpoint"] = "unix://" + socketPath;
        info.Environment["Csi__NodeId"] = nodeId;
        info.Environment["Csi__SupervisorSocket"] = supervisorSocket;
        info.Environment["Csi__Mode"] = "all";
        info.Environment["Logging__LogLevel__Microsoft.AspNetCore"] = "Warning";
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start the plugin");
        var plugin = new PluginProcess(process, socketPath);
        process.OutputDataReceived += (_, e) => plugin.Append(e.Data);
        process.ErrorDataReceived += (_, e) => plugin.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
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
    public async Task KillAsync()
    {
        ProcessTree.Signal(_process.Id, 9);
        await _process.WaitForExitAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        if (!_process.HasExited)
        {
            ProcessTree.Signal(_process.Id, 15);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try
            {
                await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                await KillAsync().ConfigureAwait(false);
            }
        }
        Channel.Dispose();
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_outputLock)
        {
            _output.Add(line);
        }
    }
}

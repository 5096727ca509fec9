using System.Diagnostics;
using System.Globalization;
using Csi.V1;
using Grpc.Core;
using Grpc.Net.Client;
using k8s.Models;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;
using S3Supervisor.TestKit.Kubernetes;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.TestKit.Containers;

/// <summary>
/// A node of deploy/ under podman: the node DaemonSet's pod (supervisor privileged with hostPID and
/// hostNetwork, the kubelet root bind-mounted with rshared propagation, the state hostPath, a
/// memory-backed secrets emptyDir; the plugin as uid 65532 with a read-only root and no capabilities,
/// sharing only the socket directory) and the controller Deployment's plugin, all from the images
/// scripts/images.sh built, with the environment of the manifests. On this test node:
/// <list type="bullet">
/// <item>the kubelet root is <see cref="SupervisorLayout.KubeletRoot"/> (made a shared mount, as
/// /var/lib/kubelet is on a systemd host; "/var/lib/kubelet" in the manifests means it);</item>
/// <item>the state hostPath (/var/lib/s3supervisor) is the layout's state directory, the socket
/// emptyDir its run directory;</item>
/// <item>Kubernetes__Kubeconfig points at the test API server (plain HTTP on loopback; in-cluster
/// configuration needs HTTPS), through a file in the service-account volume;</item>
/// <item>Supervisor__ChildCgroupParent and Supervisor__MetricsAddress are unique to the test, so
/// that nodes of parallel tests do not share a cgroup or a port;</item>
/// <item>the controller pod runs in the host's network: the test's only S3 server is on loopback.</item>
/// </list>
/// </summary>
public sealed class ContainerNode : IAsyncDisposable
{
    public const string SupervisorContainer = "supervisor";
    public const string PluginContainer = "plugin";

    private readonly string _runId = Guid.NewGuid().ToString("N")[..8];
    private PodmanPod? _node;
    private PodmanPod? _controller;
    private ContainerNode(SupervisorLayout layout, string nodeName)
    {
        Layout = layout;
        NodeName = nodeName;
        SupervisorChannel = UnixSocketChannel.Create(layout.SocketPath);
        Supervisor = new S3Supervisor.Api.V1.Supervisor.SupervisorClient(SupervisorChannel);
        PluginChannel = UnixSocketChannel.Create(CsiSocket);
        Identity = new Identity.IdentityClient(PluginChannel);
        Node = new Csi.V1.Node.NodeClient(PluginChannel);
        ControllerChannel = UnixSocketChannel.Create(ControllerSocket);
        Controller = new Controller.ControllerClient(ControllerChannel);
    }

    public SupervisorLayout Layout { get; }

    public string NodeName { get; }

    /// <summary>The plugin's CSI socket as kubelet sees it (the plugin-dir hostPath).</summary>
    public string CsiSocket => Path.Combine(Layout.KubeletRoot, "plugins", NodeSimulator.DriverName, "csi.sock");

    /// <summary>The controller pod's CSI socket (its socket-dir emptyDir on this machine).</summary>
    public string ControllerSocket => Path.Combine(Layout.Root, "controller-pod", "volumes", "kubernetes.io~empty-dir", "socket-dir", "csi.sock");

    public PodmanPod NodePod => _node ?? throw new InvalidOperationException("not started");

    public PodmanPod ControllerPod => _controller ?? throw new InvalidOperationException("not started");

    public GrpcChannel SupervisorChannel { get; }

    public S3Supervisor.Api.V1.Supervisor.SupervisorClient Supervisor { get; }

    public GrpcChannel PluginChannel { get; }

    public Identity.IdentityClient Identity { get; }

    public Csi.V1.Node.NodeClient Node { get; }

    public GrpcChannel ControllerChannel { get; }

    public Controller.ControllerClient Controller { get; }

    /// <summary>The label on every container of this node (and of its app containers): <c>podman ps --filter label=...</c>.</summary>
    public string RunLabel => $"s3supervisor-test={_runId}";

    /// <summary>
    /// Creates the node's pods (volumes, init containers) and starts the supervisor and the plugin,
    /// and the controller's plugin, waiting until each answers. <paramref name="supervisorSettings"/>
    /// are added to the supervisor's environment (say, a shorter health-check interval).
    /// </summary>
    public static async Task<ContainerNode> StartAsync(SupervisorLayout layout, TestCluster cluster, string nodeName = "node-a", IReadOnlyDictionary<string, string>? supervisorSettings = null)
    {
        var node = new ContainerNode(layout, nodeName);
        try
        {
            await node.CreateAsync(cluster, supervisorSettings).ConfigureAwait(false);
            return node;
        }
        catch
        {
            await node.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task CreateAsync(TestCluster cluster, IReadOnlyDictionary<string, string>? supervisorSettings)
    {
        Directory.CreateDirectory(Layout.KubeletRoot);
        Directory.CreateDirectory(Layout.StateDirectory);
        Directory.CreateDirectory(Path.Combine(Layout.KubeletRoot, "plugins_registry"));
        // Mounts the supervisor makes under the kubelet root inside its container come back to this
        // machine's namespace (rshared, Bidirectional) only through a shared mount, as on a node.
        await ProcessRunner.RunCheckedAsync("mount", ["--bind", Layout.KubeletRoot, Layout.KubeletRoot]).ConfigureAwait(false);
        await ProcessRunner.RunCheckedAsync("mount", ["--make-rshared", Layout.KubeletRoot]).ConfigureAwait(false);

        var kubeconfig = await File.ReadAllTextAsync(cluster.Kubeconfig).ConfigureAwait(false);
        var supervisorEnv = new Dictionary<string, string>
        {
            ["Kubernetes__Kubeconfig"] = "/var/run/secrets/kubernetes.io/serviceaccount/kubeconfig",
            ["Supervisor__ChildCgroupParent"] = SupervisorProcess.ChildCgroupParent(Layout),
            ["Supervisor__MetricsAddress"] = "127.0.0.1:" + LoopbackPorts.Free(1)[0].ToString(CultureInfo.InvariantCulture),
        };
        foreach (var (key, value) in supervisorSettings ?? new Dictionary<string, string>())
        {
            supervisorEnv[key] = value;
        }
        var daemonSet = PodmanPod.Manifest<V1DaemonSet>("base/node-daemonset.yaml");
        _node = new PodmanPod($"s3sv-{_runId}-node", daemonSet.Spec.Template.Spec, new PodHost
        {
            KubeletRoot = Layout.KubeletRoot,
            PodDirectory = Path.Combine(Layout.Root, "node-pod"),
            HostPaths = new Dictionary<string, string> { ["/var/lib/s3supervisor"] = Layout.StateDirectory, ["/var/cache/s3supervisor"] = Path.Combine(Layout.Root, "cache") },
            NodeName = NodeName,
            ServiceAccountFiles = new Dictionary<string, string>
            {
                ["token"] = "test-token",
                ["namespace"] = "s3supervisor",
                ["ca.crt"] = "",
                ["kubeconfig"] = kubeconfig,
            },
            EnvironmentOverrides = new Dictionary<string, IReadOnlyDictionary<string, string>> { [SupervisorContainer] = supervisorEnv },
            RunLabel = RunLabel,
        });
        // The node pod's socket-dir emptyDir is the layout's run directory: tests and the CLI reach the
        // supervisor at Layout.SocketPath, as kubectl exec would inside the pod.
        Directory.CreateDirectory(Path.Combine(Layout.Root, "node-pod", "volumes", "kubernetes.io~empty-dir"));
        Directory.CreateDirectory(Layout.RunDirectory);
        File.CreateSymbolicLink(Path.Combine(Layout.Root, "node-pod", "volumes", "kubernetes.io~empty-dir", "socket-dir"), Layout.RunDirectory);

        var deployment = PodmanPod.Manifest<V1Deployment>("base/controller-deployment.yaml");
        _controller = new PodmanPod($"s3sv-{_runId}-controller", deployment.Spec.Template.Spec, new PodHost
        {
            KubeletRoot = Layout.KubeletRoot,
            PodDirectory = Path.Combine(Layout.Root, "controller-pod"),
            NodeName = NodeName,
            HostNetwork = true,
            RunLabel = RunLabel,
        });

        await StartSupervisorAsync().ConfigureAwait(false);
        await StartPluginAsync().ConfigureAwait(false);
        await _controller.StartAsync(PluginContainer).ConfigureAwait(false);
        await WaitAnswersAsync(() => Controller.ControllerGetCapabilitiesAsync(new ControllerGetCapabilitiesRequest(), deadline: DateTime.UtcNow.AddSeconds(2)).ResponseAsync, TimeSpan.FromSeconds(60), "the controller plugin", _controller, PluginContainer).ConfigureAwait(false);
    }

    /// <summary>Starts (or starts again) the supervisor container from <paramref name="tag"/> and waits until its socket answers; returns the time from podman run to its first answer.</summary>
    public async Task<TimeSpan> StartSupervisorAsync(string? tag = null)
    {
        var clock = Stopwatch.StartNew();
        await NodePod.StartAsync(SupervisorContainer, tag).ConfigureAwait(false);
        await WaitAnswersAsync(() => Supervisor.ListVolumesAsync(new S3Supervisor.Api.V1.ListVolumesRequest(), deadline: DateTime.UtcNow.AddSeconds(2)).ResponseAsync, TimeSpan.FromSeconds(60), "the supervisor", NodePod, SupervisorContainer).ConfigureAwait(false);
        return clock.Elapsed;
    }

    /// <summary>Starts (or starts again) the node plugin container from <paramref name="tag"/> and waits until Probe says ready; returns the time that took.</summary>
    public async Task<TimeSpan> StartPluginAsync(string? tag = null)
    {
        var clock = Stopwatch.StartNew();
        await NodePod.StartAsync(PluginContainer, tag).ConfigureAwait(false);
        await WaitAnswersAsync(async () =>
        {
            var probe = await Identity.ProbeAsync(new ProbeRequest(), deadline: DateTime.UtcNow.AddSeconds(2)).ResponseAsync.ConfigureAwait(false);
            return probe.Ready == true ? probe : throw new RpcException(new Status(StatusCode.Unavailable, "not ready"));
        }, TimeSpan.FromSeconds(60), "the node plugin", NodePod, PluginContainer).ConfigureAwait(false);
        return clock.Elapsed;
    }

    public Task KillSupervisorAsync() => NodePod.KillAsync(SupervisorContainer);

    public Task<int> StopSupervisorAsync() => NodePod.StopAsync(SupervisorContainer);

    public Task KillPluginAsync() => NodePod.KillAsync(PluginContainer);

    public Task<string> SupervisorLogsAsync() => NodePod.LogsAsync(SupervisorContainer);

    /// <summary>Waits until a volume reaches a state (polling GetVolume); a timeout carries the supervisor container's log.</summary>
    public Task<S3Supervisor.Api.V1.Volume> WaitForStateAsync(string volumeId, VolumeState state, TimeSpan timeout, Func<S3Supervisor.Api.V1.Volume, bool>? also = null) =>
        SupervisorProcess.WaitForStateAsync(Supervisor, volumeId, state, timeout, also, SupervisorLogsAsync);

    private static async Task WaitAnswersAsync<T>(Func<Task<T>> call, TimeSpan timeout, string what, PodmanPod pod, string container)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await call().ConfigureAwait(false);
                return;
            }
            catch (RpcException) when (clock.Elapsed < timeout)
            {
                if (await pod.PidAsync(container).ConfigureAwait(false) == 0 && clock.Elapsed > TimeSpan.FromSeconds(2))
                {
                    throw new InvalidOperationException($"{what} container exited:\n{await pod.LogsAsync(container).ConfigureAwait(false)}");
                }
                await Task.Delay(20).ConfigureAwait(false);
            }
            catch (RpcException e)
            {
                throw new TimeoutException($"{what} did not answer within {timeout}: {e.Status.Detail}\n{await pod.LogsAsync(container).ConfigureAwait(false)}", e);
            }
        }
    }

    /// <summary>
    /// Removes every container of the node (its pods' and app containers with its label), then what
    /// the supervisor left outside them (s3fs processes, mounts, per-volume cgroups) and the layout.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        SupervisorChannel.Dispose();
        PluginChannel.Dispose();
        ControllerChannel.Dispose();
        var labelled = await Podman.RunAsync(["ps", "-a", "-q", "--filter", "label=" + RunLabel]).ConfigureAwait(false);
        foreach (var id in labelled.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            await Podman.RunAsync(["rm", "-f", "-t", "0", id.Trim()]).ConfigureAwait(false);
        }
        if (_controller is not null)
        {
            await _controller.DisposeAsync().ConfigureAwait(false);
        }
        if (_node is not null)
        {
            await _node.DisposeAsync().ConfigureAwait(false);
        }
        // CleanUpAsync unmounts everything under the root, the kubelet root's shared bind included.
        await SupervisorProcess.CleanUpAsync(Layout).ConfigureAwait(false);
    }
}

using System.Diagnostics;
using Csi.V1;
using k8s.Models;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit.Kubernetes;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.TestKit.Containers;

/// <summary>
/// The node pod of deploy/ under podman (<see cref="ContainerNode"/>), driven through a volume's whole
/// life with real app containers (one read-write, one read-only, one through a subPath) and every
/// failure the project promises to survive: plugin kill and upgrade, supervisor container kill (the
/// s3fs children outlive it), supervisor and children killed (rebuild and repair inside the app
/// containers), a SIGTERM upgrade to a new image tag, an s3fs kill, a volume with use_cache under the
/// read-only root, and the teardown. Every check is printed with its figures; the README's
/// <c>bash scripts/local-node.sh --containers</c> and the ContainerNode test collection both run it.
/// </summary>
public sealed class ContainerScenario : IAsyncDisposable
{
    private const string Namespace = "shop";
    private const string Bucket = "container-node";
    private const string ClaimName = "orders";
    private readonly ScenarioReport _report;
    private readonly SupervisorLayout _layout = new(Directory.CreateTempSubdirectory("s3sv-container-node-").FullName);
    private readonly List<PodmanAppContainer> _apps = [];
    private RgwServer? _s3;
    private TestCluster? _cluster;
    private ContainerNode? _node;

    public ContainerScenario(Action<string> write) => _report = new ScenarioReport(write);

    public ScenarioReport Report => _report;

    /// <summary>Why the scenario cannot run here, or null.</summary>
    public static async Task<string?> MissingAsync() =>
        Prerequisites.RootMissing() ?? Prerequisites.FuseMissing() ?? Prerequisites.RadosgwMissing() ?? Prerequisites.CgroupsMissing() ?? await Podman.MissingAsync().ConfigureAwait(false);

    public async Task RunAsync()
    {
        Say("S3Supervisor node pod under podman: deploy/'s manifests and the images of scripts/images.sh, one volume's life with real app containers.");
        Say($"work directory {_layout.Root} (the kubelet root is {_layout.KubeletRoot}); image tag {Podman.ImageTag}");

        Step("1. Start the S3 server (Ceph RGW on loopback) and the test Kubernetes API server");
        _s3 = await RgwServer.StartAsync();
        await _s3.CreateBucketAsync(Bucket);
        _cluster = await TestCluster.StartAsync(Path.Combine(_layout.Root, "kubeconfig"));
        Check("RGW and API server answer", true, $"S3 {_s3.Endpoint} (up in {_s3.StartupTime.TotalSeconds:0.0} s), API {_cluster.Api.BaseUri}");

        Step("2. Start the node pod (supervisor + plugin) and the controller's plugin from deploy/base");
        var start = Stopwatch.StartNew();
        _node = await ContainerNode.StartAsync(_layout, _cluster, supervisorSettings: new Dictionary<string, string> { ["Supervisor__HealthCheckInterval"] = "00:00:02" });
        var node = _node;
        Check("node pod and controller answer", true, $"supervisor socket and both CSI sockets answer {start.ElapsedMilliseconds} ms after the first podman run");
        foreach (var line in node.NodePod.Overrides)
        {
            Say($"   set on this test node: {line}");
        }
        Say($"   not run here: {string.Join("; ", node.NodePod.NotRun.Concat(node.ControllerPod.NotRun))}");
        var pluginPid = await node.NodePod.PidAsync(ContainerNode.PluginContainer);
        var status = ProcStatus(pluginPid);
        var readOnlyRoot = await Podman.CheckedAsync(["inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", node.NodePod.ContainerName(ContainerNode.PluginContainer)]);
        Check("plugin unprivileged", status.Uid == "65532" && status.CapEff == "0000000000000000" && readOnlyRoot == "true",
            $"uid {status.Uid}, groups {status.Groups}, CapEff {status.CapEff}, read-only root {readOnlyRoot}");
        var supervisorPid = await node.NodePod.PidAsync(ContainerNode.SupervisorContainer);
        var supervisorStatus = ProcStatus(supervisorPid);
        Check("supervisor privileged in the host's pid namespace", supervisorStatus.Uid == "0" && supervisorStatus.CapEff != "0000000000000000" && Pid1IsInit(supervisorPid),
            $"pid {supervisorPid} as seen from the host, CapEff {supervisorStatus.CapEff}");

        Step("3. CreateVolume through the controller's CSI socket; NodeStage + NodePublish through the node plugin's");
        var secrets = new Dictionary<string, string> { ["accessKeyID"] = _s3.AccessKey, ["secretAccessKey"] = _s3.SecretKey };
        var capability = new VolumeCapability { Mount = new VolumeCapability.Types.MountVolume(), AccessMode = new VolumeCapability.Types.AccessMode { Mode = VolumeCapability.Types.AccessMode.Types.Mode.MultiNodeMultiWriter } };
        var (created, pv) = await CreateAsync(capability, secrets, ClaimName, "stat_cache_expire=1");
        var sim = new NodeSimulator(_layout.KubeletRoot, node.NodeName);
        var writerPod = TestObjects.Pod(Namespace, "orders-writer", node.NodeName, [new PodVolumeMount(ClaimName, "/data")]);
        var readerPod = TestObjects.Pod(Namespace, "orders-reader", node.NodeName, [new PodVolumeMount(ClaimName, "/data", ReadOnly: true)]);
        var reportsPod = TestObjects.Pod(Namespace, "orders-reports", node.NodeName, [new PodVolumeMount(ClaimName, "/reports", SubPath: "reports")]);
        _cluster.Api.UpsertAll([writerPod, readerPod, reportsPod]);
        var stage = Stopwatch.StartNew();
        var staging = await sim.PrepareStagingAsync(pv);
        await node.Node.NodeStageVolumeAsync(new NodeStageVolumeRequest { VolumeId = created.VolumeId, StagingTargetPath = staging, VolumeCapability = capability, VolumeContext = { created.VolumeContext }, Secrets = { secrets } });
        var staged = stage.ElapsedMilliseconds;
        var writerTarget = await sim.CsiPublishAsync(node.Node, writerPod, pv, created, capability, readOnly: false);
        var readerTarget = await sim.CsiPublishAsync(node.Node, readerPod, pv, created, capability, readOnly: true);
        var reportsTarget = await sim.CsiPublishAsync(node.Node, reportsPod, pv, created, capability, readOnly: false);
        var volume = await node.Supervisor.GetVolumeAsync(new GetVolumeRequest { VolumeId = created.VolumeId });
        Check("staged and published", volume.State == VolumeState.Ready && volume.Targets.Count == 3, $"NodeStage {staged} ms, all three publishes {stage.ElapsedMilliseconds} ms; s3fs pid {volume.Pid}, {volume.Targets.Count} targets, cgroup {volume.Cgroup}");

        Step("4. App containers (podman, private propagation): read-write, read-only, and a subPath");
        var writer = await App("orders-writer", new VolumeMountSpec(writerTarget, "/data"));
        await writer.ExecAsync("mkdir", "-p", "/data/reports");
        var reader = await App("orders-reader", new VolumeMountSpec(readerTarget, "/data", ReadOnly: true));
        var reports = await App("orders-reports", new VolumeMountSpec(reportsTarget, "/reports", SubPath: "reports"));
        await writer.WriteFileAsync("/data/order-1.json", "{\"order\":1}");
        await reports.WriteFileAsync("/reports/daily.txt", "daily");
        var prefix = created.VolumeContext.TryGetValue("prefix", out var p) ? p + "/" : string.Empty;
        Check("reader sees the writer's file", await reader.ReadFileAsync("/data/order-1.json") == "{\"order\":1}", "two containers, one s3fs");
        Check("object in S3", await _s3.GetObjectTextAsync(Bucket, prefix + "order-1.json") == "{\"order\":1}", $"s3://{Bucket}/{prefix}order-1.json");
        Check("subPath container sees only its subdirectory", await writer.ReadFileAsync("/data/reports/daily.txt") == "daily" && await reports.ExecAsync("test", "-e", "/reports/order-1.json") is { ExitCode: not 0 }, "/reports is <volume>/reports");
        var denied = await reader.ExecAsync("sh", "-c", "echo x > /data/nope");
        Check("read-only container cannot write", denied.ExitCode != 0 && denied.Stderr.Contains("Read-only", StringComparison.Ordinal), denied.Stderr.Trim());
        var apps = new[] { writer, reader, reports };
        // Every app-side figure below is seen through `podman exec` (conmon + runc exec per operation),
        // which costs far more than the stand-in scenario's nsenter: say how much, so the two agree.
        var execClock = Stopwatch.StartNew();
        for (var i = 0; i < 5; i++)
        {
            await writer.ExecAsync("true");
        }
        Say($"   one podman exec round trip: {execClock.ElapsedMilliseconds / 5} ms (mean of 5); the app-side figures below include it");

        Step("5. podman kill of the plugin container and a new one; then an upgrade to a second plugin image tag");
        var (ops, failures) = await ContainerIo.WhileAsync(writer, async waitForOps =>
        {
            await node.KillPluginAsync();
            await waitForOps(3, "I/O while no plugin runs");
            var ready = await node.StartPluginAsync();
            Say($"   plugin container killed and started again; Probe ready {ready.TotalMilliseconds:0} ms after podman run");
        });
        Check("plugin kill: no failed operation", failures == 0 && ops > 0, $"{ops} write+read operations, {failures} failed");
        var nextTag = Podman.ImageTag + "-next";
        await Podman.CheckedAsync(["tag", Podman.LocalImage("s3supervisor/plugin", Podman.ImageTag), Podman.LocalImage("s3supervisor/plugin", nextTag)]);
        await Podman.CheckedAsync(["tag", Podman.LocalImage("s3supervisor/supervisor", Podman.ImageTag), Podman.LocalImage("s3supervisor/supervisor", nextTag)]);
        (ops, failures) = await ContainerIo.WhileAsync(writer, async waitForOps =>
        {
            await node.NodePod.StopAsync(ContainerNode.PluginContainer);
            var ready = await node.StartPluginAsync(nextTag);
            Say($"   plugin upgraded to {nextTag} (a second tag of the image); Probe ready {ready.TotalMilliseconds:0} ms after podman run");
        });
        var stats = await node.Node.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = created.VolumeId, VolumePath = writerTarget });
        Check("plugin upgrade: no failed operation", failures == 0 && ops > 0 && stats.VolumeCondition?.Abnormal == false, $"{ops} operations, {failures} failed; new plugin's VolumeCondition: {stats.VolumeCondition?.Message}");

        Step("6. podman kill of the supervisor container and a new one: the s3fs children live outside it");
        var before = await node.Supervisor.GetVolumeAsync(new GetVolumeRequest { VolumeId = created.VolumeId });
        TimeSpan listening = default;
        (ops, failures) = await ContainerIo.WhileAsync(writer, async waitForOps =>
        {
            await node.KillSupervisorAsync();
            Say($"   supervisor container killed (podman kill: SIGKILL to every process in it); s3fs pid {before.Pid} alive: {ProcessInfo.IsRunning(before.Pid)}");
            await SupervisorProcess.RestartGapAsync(whileDown: () => waitForOps(3, "I/O while no supervisor runs"));
            listening = await node.StartSupervisorAsync();
        });
        var adopted = await node.WaitForStateAsync(created.VolumeId, VolumeState.Ready, TimeSpan.FromSeconds(30));
        Check("supervisor container kill: no failed operation", failures == 0 && ops > 0, $"{ops} operations, {failures} failed; new supervisor answers {listening.TotalMilliseconds:0} ms after podman run");
        Check("s3fs adopted, not restarted", adopted.Adopted && adopted.Pid == before.Pid, $"same s3fs pid {adopted.Pid}, Ready at the new supervisor's first answer");

        Step("7. The supervisor container and its s3fs killed too: rebuild from the API server, repair inside the app containers");
        await writer.WriteFileAsync("/data/order-2.json", "{\"order\":2}");
        await node.KillSupervisorAsync();
        ProcessTree.Signal(adopted.Pid, 9);
        await ProcessTree.WaitGoneAsync([adopted.Pid], TimeSpan.FromSeconds(10));
        await SupervisorProcess.RestartGapAsync();
        var broken = await writer.ExecAsync("stat", "-t", "/data");
        Check("app containers see the dead mount", broken.ExitCode != 0, broken.Stderr.Trim());
        _cluster.Api.ClearEvents();
        var restart = Stopwatch.StartNew();
        listening = await node.StartSupervisorAsync();
        var rebuilt = await node.WaitForStateAsync(created.VolumeId, VolumeState.Ready, TimeSpan.FromSeconds(60));
        var readyMs = restart.ElapsedMilliseconds;
        var views = await ViewsRestoredAsync(restart, (writer, "/data/order-2.json"), (reader, "/data/order-2.json"), (reports, "/reports/daily.txt"));
        Check("rebuilt", rebuilt.Targets.Count == 3 && rebuilt.Pid != adopted.Pid, $"answers {listening.TotalMilliseconds:0} ms, Ready {readyMs} ms after podman run; new s3fs pid {rebuilt.Pid}, {rebuilt.Targets.Count} targets");
        Check("every container view restored", views.All(v => v.Ok), string.Join(", ", views.Select(v => $"{v.Name} {v.Ms} ms")));
        denied = await reader.ExecAsync("sh", "-c", "echo x > /data/nope");
        Check("read-only still read-only", denied.ExitCode != 0 && denied.Stderr.Contains("Read-only", StringComparison.Ordinal), denied.Stderr.Trim());
        Check("subPath still its subdirectory", await reports.ExecAsync("test", "-e", "/reports/order-2.json") is { ExitCode: not 0 } && await reports.ReadFileAsync("/reports/daily.txt") == "daily", "/reports/daily.txt, no order-2.json");
        var recovered = await _cluster.Api.WaitForEventAsync(e => e.Reason == "VolumeRecovered", Eventually.DefaultTimeout);
        Check("Event on a pod", true, $"{recovered.InvolvedObject.Name}: {recovered.Reason}");

        Step("8. podman stop (SIGTERM) of the supervisor container and a new image tag: an upgrade without a gap");
        before = await node.Supervisor.GetVolumeAsync(new GetVolumeRequest { VolumeId = created.VolumeId });
        var exitCode = -1;
        (ops, failures) = await ContainerIo.WhileAsync(writer, async waitForOps =>
        {
            exitCode = await node.StopSupervisorAsync();
            await SupervisorProcess.RestartGapAsync(whileDown: () => waitForOps(3, "I/O while no supervisor runs"));
            listening = await node.StartSupervisorAsync(nextTag);
        });
        adopted = await node.WaitForStateAsync(created.VolumeId, VolumeState.Ready, TimeSpan.FromSeconds(30));
        Check("SIGTERM upgrade: no failed operation, same s3fs", failures == 0 && ops > 0 && adopted.Pid == before.Pid && adopted.Adopted,
            $"exit code {exitCode}; {ops} operations, {failures} failed; supervisor {nextTag} answers {listening.TotalMilliseconds:0} ms after podman run; same s3fs pid {adopted.Pid}");

        Step("9. kill -9 of the s3fs: healed inside the app containers");
        var heal = Stopwatch.StartNew();
        ProcessTree.Signal(adopted.Pid, 9);
        var healed = await node.WaitForStateAsync(created.VolumeId, VolumeState.Ready, TimeSpan.FromSeconds(60), v => v.Pid != adopted.Pid);
        var healedMs = heal.ElapsedMilliseconds;
        views = await ViewsRestoredAsync(heal, (writer, "/data/order-1.json"), (reader, "/data/order-1.json"), (reports, "/reports/daily.txt"));
        Check("healed", views.All(v => v.Ok), $"Ready {healedMs} ms after the kill, new s3fs pid {healed.Pid}; views: {string.Join(", ", views.Select(v => $"{v.Name} {v.Ms} ms"))}");

        Step("10. A volume with use_cache under the manifests' read-only root and volumes");
        var (cached, cachedPv) = await CreateAsync(capability, secrets, "cached", "use_cache,stat_cache_expire=1");
        var cachedPod = TestObjects.Pod(Namespace, "cached-app", node.NodeName, [new PodVolumeMount("cached", "/data")]);
        _cluster.Api.UpsertAll([cachedPod]);
        var cachedStaging = await sim.PrepareStagingAsync(cachedPv);
        string cacheDetail;
        try
        {
            await node.Node.NodeStageVolumeAsync(new NodeStageVolumeRequest { VolumeId = cached.VolumeId, StagingTargetPath = cachedStaging, VolumeCapability = capability, VolumeContext = { cached.VolumeContext }, Secrets = { secrets } });
            var cachedTarget = await sim.CsiPublishAsync(node.Node, cachedPod, cachedPv, cached, capability, readOnly: false);
            var cachedApp = await App("cached-app", new VolumeMountSpec(cachedTarget, "/data"));
            await cachedApp.WriteFileAsync("/data/big.bin", new string('x', 1 << 20));
            var back = await cachedApp.ReadFileAsync("/data/big.bin");
            var cacheFiles = Directory.EnumerateFiles(Path.Combine(_layout.Root, "cache"), "*", SearchOption.AllDirectories).Count();
            cacheDetail = $"1 MiB written and read back ({back.Length} bytes); {cacheFiles} file(s) in the cache hostPath";
            Check("use_cache volume works", back.Length == 1 << 20 && cacheFiles > 0, cacheDetail);
            await node.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = cached.VolumeId, TargetPath = cachedTarget });
            await cachedApp.DisposeAsync();
            _apps.Remove(cachedApp);
            await node.Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = cached.VolumeId, StagingTargetPath = cachedStaging });
        }
        catch (Grpc.Core.RpcException e)
        {
            Check("use_cache volume works", false, $"{e.StatusCode}: {e.Status.Detail}");
        }
        await node.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = cached.VolumeId, Secrets = { secrets } });

        Step("11. NodeUnpublish, NodeUnstage, DeleteVolume: nothing left");
        foreach (var target in new[] { writerTarget, readerTarget, reportsTarget })
        {
            await node.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = created.VolumeId, TargetPath = target });
        }
        foreach (var app in apps)
        {
            await app.DisposeAsync();
        }
        await node.Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = created.VolumeId, StagingTargetPath = staging });
        await node.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = created.VolumeId, Secrets = { secrets } });
        var mounts = MountTable.Under(_layout.KubeletRoot).Where(m => m.MountPoint != _layout.KubeletRoot).ToList();
        // The s3fs children name only container paths (/var/lib/s3supervisor/...) on their command
        // lines, so they are found by where the supervisor put them: the per-volume cgroups of this node.
        var childCgroups = TestCgroup.For(SupervisorProcess.ChildCgroupParent(_layout));
        var s3fs = childCgroups.Pids();
        var cgroups = childCgroups.Directories.Where(Directory.Exists).SelectMany(Directory.EnumerateDirectories).ToList();
        var left = await _s3.ListKeysAsync(Bucket);
        var files = new[] { Path.Combine(_layout.Root, "cache"), Path.Combine(_layout.StateDirectory, "tmp") }
            .Where(Directory.Exists).Sum(d => Directory.EnumerateFileSystemEntries(d).Count());
        Check("nothing left", mounts.Count == 0 && s3fs.Count == 0 && cgroups.Count == 0 && left.Count == 0 && files == 0,
            $"{mounts.Count} mounts under the kubelet root, {s3fs.Count} processes in the node's per-volume cgroups (s3fs), {cgroups.Count} per-volume cgroups, {left.Count} objects in the bucket, {files} cache/tmp directories");
    }

    private async Task<(Csi.V1.Volume Created, V1PersistentVolume Pv)> CreateAsync(VolumeCapability capability, Dictionary<string, string> secrets, string claimName, string options)
    {
        var pvName = "pvc-" + Guid.NewGuid().ToString();
        var created = (await _node!.Controller.CreateVolumeAsync(new CreateVolumeRequest
        {
            Name = pvName,
            CapacityRange = new CapacityRange { RequiredBytes = 1L << 30 },
            VolumeCapabilities = { capability },
            Parameters = { ["endpoint"] = _s3!.Endpoint, ["region"] = _s3.Region, ["bucket"] = Bucket, ["options"] = options },
            Secrets = { secrets },
        })).Volume;
        var secret = TestObjects.Secret(Namespace, claimName + "-creds", _s3.AccessKey, _s3.SecretKey);
        var storageClass = TestObjects.StorageClass("s3-" + claimName, _s3.Endpoint, Bucket, _s3.Region, secretName: claimName + "-creds", secretNamespace: Namespace);
        var claim = TestObjects.BoundClaim(Namespace, claimName, "s3-" + claimName, pvName);
        var pv = TestObjects.PersistentVolume(pvName, "s3-" + claimName, created.VolumeId, created.VolumeContext.ToDictionary(), new V1SecretReference { Name = claimName + "-creds", NamespaceProperty = Namespace }, claim: claim);
        _cluster!.Api.UpsertAll([storageClass, claim, pv, secret]);
        Say($"   CreateVolume {claimName}: volume id {created.VolumeId}");
        return (created, pv);
    }

    private async Task<PodmanAppContainer> App(string name, VolumeMountSpec mount)
    {
        var app = await PodmanAppContainer.StartAsync($"{_node!.NodePod.Name}-{name}", [mount], _node.RunLabel);
        _apps.Add(app);
        return app;
    }

    /// <summary>Per app container, the time from <paramref name="since"/>'s start until its file reads again (each within a generous deadline).</summary>
    private static async Task<List<(string Name, bool Ok, long Ms)>> ViewsRestoredAsync(Stopwatch since, params (PodmanAppContainer App, string Path)[] views)
    {
        var tasks = views.Select(async v =>
        {
            try
            {
                await Eventually.SucceedsAsync<string, Exception>(() => v.App.ReadFileAsync(v.Path), TimeSpan.FromSeconds(60));
                return (v.App.Name, true, since.ElapsedMilliseconds);
            }
            catch (TimeoutException)
            {
                return (v.App.Name, false, since.ElapsedMilliseconds);
            }
        });
        return [.. await Task.WhenAll(tasks)];
    }

    private static (string Uid, string Groups, string CapEff) ProcStatus(int pid)
    {
        var lines = File.ReadAllLines($"/proc/{pid}/status");
        string Field(string name) => lines.FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.Ordinal))?[(name.Length + 1)..].Trim() ?? "";
        return (Field("Uid").Split('\t', StringSplitOptions.RemoveEmptyEntries)[0], Field("Groups"), Field("CapEff"));
    }

    /// <summary>Whether the process shares pid 1 with this machine's (its pid namespace is the host's: hostPID).</summary>
    private static bool Pid1IsInit(int pid) =>
        new FileInfo($"/proc/{pid}/ns/pid").LinkTarget is { } ns && ns == new FileInfo("/proc/self/ns/pid").LinkTarget;

    private void Check(string what, bool ok, string detail) => _report.Check(what, ok, detail);

    private void Step(string title) => _report.Step(title);

    private void Say(string line) => _report.Say(line);

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.DisposeAsync();
        }
        if (_node is not null)
        {
            await _node.DisposeAsync();
        }
        else
        {
            await SupervisorProcess.CleanUpAsync(_layout);
        }
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
        if (_s3 is not null)
        {
            await _s3.DisposeAsync();
        }
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text;
using Csi.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using k8s.Models;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Containers;
using S3Supervisor.TestKit.Kubernetes;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.LocalNode;

internal sealed class Scenario : IAsyncDisposable
{
    private const string Namespace = "shop";
    private const string Bucket = "local-node";
    private const string ClaimName = "orders";
    private readonly ScenarioReport _report = new(Console.WriteLine);
    private readonly SupervisorLayout _layout = new(Directory.CreateTempSubdirectory("s3sv-local-node-").FullName);
    private readonly List<StandInContainer> _containers = [];
    private RgwServer? _s3;
    private TestCluster? _cluster;
    private TestApiServer? _api;
    private SupervisorProcess? _supervisor;
    private PluginProcess? _plugin;
    private Dictionary<string, string> _supervisorSettings = [];

    private string CsiSocket => Path.Combine(_layout.KubeletRoot, "plugins", NodeSimulator.DriverName, "csi.sock");

    public async Task RunAsync()
    {
        Say("S3Supervisor local node: one volume's life, from CreateVolume to DeleteVolume, with every failure we promise to survive.");
        Say($"work directory {_layout.Root} (the kubelet root is {_layout.KubeletRoot})");
        var prerequisite = Prerequisites.RootMissing() ?? Prerequisites.FuseMissing() ?? Prerequisites.S3fsMissing() ?? Prerequisites.RadosgwMissing() ?? Prerequisites.MountNamespacesMissing();
        if (prerequisite is not null)
        {
            _report.Fail("prerequisites", prerequisite);
            return;
        }

        Step("1. Start the S3 server (Ceph RADOS Gateway on loopback)");
        _s3 = await RgwServer.StartAsync();
        await _s3.CreateBucketAsync(Bucket);
        Check("RGW answers S3", true, $"{_s3.Endpoint} in {_s3.StartupTime.TotalSeconds:0.0} s, bucket {Bucket} created");

        Step("2. Start the test Kubernetes API server (stands in for the cluster's; seeded in step 5)");
        _cluster = await TestCluster.StartAsync(Path.Combine(_layout.Root, "kubeconfig"));
        _api = _cluster.Api;
        Check("test API server listens", true, _api.BaseUri.ToString());

        Step("3. Start the supervisor and the CSI plugin");
        var node = new NodeSimulator(_layout.KubeletRoot);
        _supervisorSettings = _cluster.SupervisorSettings(node.NodeName, _layout.KubeletRoot);
        _supervisorSettings["Supervisor__HealthCheckInterval"] = "00:00:02";
        // In a stand-in container cgroup of its own: step 10 kills it the way a runtime kills a container.
        _supervisor = await SupervisorProcess.StartAsync(_layout, _supervisorSettings, ownCgroup: true);
        _plugin = await PluginProcess.StartAsync(CsiSocket, _layout.SocketPath, node.NodeName);
        var probe = await _plugin.Identity.ProbeAsync(new ProbeRequest());
        var info = await _plugin.Identity.GetPluginInfoAsync(new GetPluginInfoRequest());
        Check("plugin Probe ready", probe.Ready == true, $"{info.Name} {info.VendorVersion}; supervisor pid {_supervisor.Pid}, plugin pid {_plugin.Pid}");

        Step("4. CreateVolume (external-provisioner's call): a prefix per volume in a shared bucket");
        var secrets = new Dictionary<string, string> { ["accessKeyID"] = _s3.AccessKey, ["secretAccessKey"] = _s3.SecretKey };
        var capability = new VolumeCapability { Mount = new VolumeCapability.Types.MountVolume(), AccessMode = new VolumeCapability.Types.AccessMode { Mode = VolumeCapability.Types.AccessMode.Types.Mode.MultiNodeMultiWriter } };
        var pvName = "pvc-" + Guid.NewGuid().ToString();
        var create = new CreateVolumeRequest
        {
            Name = pvName,
            CapacityRange = new CapacityRange { RequiredBytes = 1L << 30 },
            VolumeCapabilities = { capability },
            Parameters = { ["endpoint"] = _s3.Endpoint, ["region"] = _s3.Region, ["bucket"] = Bucket, ["options"] = "stat_cache_expire=1" },
            Secrets = { secrets },
        };
        var created = (await _plugin.Controller.CreateVolumeAsync(create)).Volume;
        Check("CreateVolume", created.VolumeId.Length > 0, $"volume id {created.VolumeId}, context {string.Join(", ", created.VolumeContext.Select(kv => $"{kv.Key}={kv.Value}"))}");

        Step("5. Seed the API server: StorageClass, PV, PVC, Secret and two pods on this node");
        var secret = TestObjects.Secret(Namespace, "orders-creds", _s3.AccessKey, _s3.SecretKey);
        var storageClass = TestObjects.StorageClass("s3-shared", _s3.Endpoint, Bucket, _s3.Region, secretName: "orders-creds", secretNamespace: Namespace);
        var claim = TestObjects.BoundClaim(Namespace, ClaimName, "s3-shared", pvName);
        var pv = TestObjects.PersistentVolume(pvName, "s3-shared", created.VolumeId, created.VolumeContext.ToDictionary(), new V1SecretReference { Name = "orders-creds", NamespaceProperty = Namespace }, claim: claim);
        var writerPod = TestObjects.Pod(Namespace, "orders-writer", node.NodeName, [new PodVolumeMount(ClaimName, "/data")]);
        var readerPod = TestObjects.Pod(Namespace, "orders-reader", node.NodeName, [new PodVolumeMount(ClaimName, "/data", ReadOnly: true)]);
        _api.UpsertAll([storageClass, claim, pv, secret, writerPod, readerPod]);
        Check("objects seeded", true, $"pods {writerPod.Metadata.Name} (read-write) and {readerPod.Metadata.Name} (read-only)");

        Step("6. NodeStageVolume and NodePublishVolume (kubelet's calls) into two stand-in app containers");
        var staging = await node.PrepareStagingAsync(pv);
        await _plugin.Node.NodeStageVolumeAsync(new NodeStageVolumeRequest
        {
            VolumeId = created.VolumeId,
            StagingTargetPath = staging,
            VolumeCapability = capability,
            VolumeContext = { created.VolumeContext },
            Secrets = { secrets },
        });
        var writerTarget = await node.CsiPublishAsync(_plugin.Node, writerPod, pv, created, capability, readOnly: false);
        var readerTarget = await node.CsiPublishAsync(_plugin.Node, readerPod, pv, created, capability, readOnly: true);
        var writer = await StandInContainer.StartAsync("orders-writer", [new VolumeMountSpec(writerTarget, "/data")]);
        var reader = await StandInContainer.StartAsync("orders-reader", [new VolumeMountSpec(readerTarget, "/data", ReadOnly: true)]);
        _containers.AddRange([writer, reader]);
        var volume = await _supervisor.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = created.VolumeId });
        Check("volume Ready with 2 targets", volume.State == VolumeState.Ready && volume.Targets.Count == 2, $"s3fs pid {volume.Pid}, device {volume.Device}");
        await PrintCliAsync("list");

        Step("7. Write in one container, read in the other, see it in S3");
        await writer.WriteFileAsync("/data/order-1.json", "{\"order\":1}");
        Check("reader sees the writer's file", await reader.ReadFileAsync("/data/order-1.json") == "{\"order\":1}", "via the same s3fs, two bind mounts");
        var prefix = created.VolumeContext.TryGetValue("prefix", out var p) ? p + "/" : string.Empty;
        Check("object in S3", await _s3.GetObjectTextAsync(Bucket, prefix + "order-1.json") == "{\"order\":1}", $"s3://{Bucket}/{prefix}order-1.json");
        var denied = await reader.ExecAsync("sh", "-c", "echo x > /data/nope");
        Check("read-only container cannot write", denied.ExitCode != 0 && denied.Stderr.Contains("Read-only", StringComparison.Ordinal), denied.Stderr.Trim());

        Step("8. kill -9 the s3fs child: the supervisor heals it and repairs both containers");
        using var watch = _supervisor.Client.WatchVolumes(new WatchVolumesRequest { VolumeId = created.VolumeId });
        var watching = PrintEventsAsync(watch, "ContainersRepaired");
        ProcessTree.Signal(volume.Pid, 9);
        Say($"   killed s3fs pid {volume.Pid}");
        var healed = await _supervisor.WaitForStateAsync(created.VolumeId, VolumeState.Ready, TimeSpan.FromSeconds(60), v => v.RestartCount >= 1);
        await watching.WaitAsync(TimeSpan.FromSeconds(20));
        Check("healed without any call", healed.Pid != volume.Pid, $"new s3fs pid {healed.Pid}, restarts {healed.RestartCount}");
        Check("writer container reads again", await RetryAsync(() => writer.ReadFileAsync("/data/order-1.json")) == "{\"order\":1}", "no container restart");
        Check("reader container reads again", await RetryAsync(() => reader.ReadFileAsync("/data/order-1.json")) == "{\"order\":1}", "still read-only");

        Step("9. kill -9 the plugin while the writer container does I/O: nothing stops");
        var (ops, failures) = await ContainerIo.WhileAsync(writer, async waitForOps =>
        {
            await _plugin.KillAsync();
            Say($"   killed plugin pid {_plugin.Pid}");
            // Down until the container has done some I/O without a plugin (not a fixed time).
            await waitForOps(3, "container I/O while the plugin is down");
            await _plugin.DisposeAsync();
            _plugin = await PluginProcess.StartAsync(CsiSocket, _layout.SocketPath, node.NodeName);
            Say($"   plugin restarted as pid {_plugin.Pid}");
        });
        var after = await _supervisor.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = created.VolumeId });
        Check("I/O never stopped", failures == 0 && ops > 0, $"{ops} write+read operations, {failures} failed");
        Check("no recovery needed", after.Pid == healed.Pid && after.RestartCount == healed.RestartCount, $"same s3fs pid {after.Pid}");
        var stats = await _plugin.Node.NodeGetVolumeStatsAsync(new NodeGetVolumeStatsRequest { VolumeId = created.VolumeId, VolumePath = writerTarget });
        Check("new plugin serves the volume", stats.VolumeCondition?.Abnormal == false, $"VolumeCondition: {stats.VolumeCondition?.Message}");

        Step("10. The supervisor's container is killed (SIGKILL to its cgroup) while the writer does I/O: s3fs lives in its own cgroup, nothing stops");
        var (gapOps, gapFailures) = await ContainerIo.WhileAsync(writer, async waitForOps =>
        {
            // Down for a restart's gap and until the container has done some I/O without a supervisor.
            await _supervisor.KillCgroupAndWaitLikeARuntimeAsync(whileDown: async () =>
            {
                Say($"   killed every process in supervisor pid {_supervisor.Pid}'s container cgroup");
                await waitForOps(3, "container I/O while no supervisor runs");
            });
            await RestartSupervisorAsync();
            Say($"   supervisor restarted as pid {_supervisor.Pid}");
        });
        var adopted = await _supervisor.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = created.VolumeId });
        Check("I/O never stopped across the supervisor's death", gapFailures == 0 && gapOps > 0, $"{gapOps} write+read operations, {gapFailures} failed");
        Check("s3fs adopted, not restarted", adopted.Adopted && adopted.Pid == healed.Pid && adopted.State == VolumeState.Ready, $"same s3fs pid {adopted.Pid}, {adopted.Targets.Count} targets, cgroup {adopted.Cgroup}");

        Step("11. kill -9 the supervisor and s3fs too (say a node-wide OOM): the rebuild restores everything");
        await writer.WriteFileAsync("/data/order-2.json", "{\"order\":2}");
        // Dead for as long as a real restart takes (kubelet's back-off), not restarted at once. The s3fs
        // is not the new supervisor's child (it was adopted): it is killed by pid.
        await _supervisor.KillCgroupLikeARuntimeAsync();
        ProcessTree.Signal(adopted.Pid, 9);
        await ProcessTree.WaitGoneAsync([adopted.Pid], TimeSpan.FromSeconds(10));
        Say($"   killed supervisor pid {_supervisor.Pid} and s3fs pid {adopted.Pid}; starting a new one {SupervisorProcess.RestartDelay.TotalSeconds:0} s later");
        await SupervisorProcess.RestartGapAsync();
        var broken = await writer.ExecAsync("stat", "-t", "/data");
        Check("containers see the dead mount", broken.ExitCode != 0, broken.Stderr.Trim());
        _api.ClearEvents();
        var restart = Stopwatch.StartNew();
        await RestartSupervisorAsync();
        var rebuilt = await _supervisor.WaitForStateAsync(created.VolumeId, VolumeState.Ready, TimeSpan.FromSeconds(60));
        var text = await RetryAsync(() => writer.ReadFileAsync("/data/order-2.json"));
        var ready = restart.ElapsedMilliseconds;
        // The supervisor's own figure (from its RebuildService start), beside the one seen from outside.
        var own = await RetryAsync(() => Task.FromResult(System.Text.RegularExpressions.Regex.Match(_supervisor.Output, @"Rebuild: \d+ volume\(s\) handled in [\d.]+ ms") is { Success: true } m ? m.Value : throw new InvalidOperationException("no rebuild summary yet")));
        Check("rebuilt from kubelet dirs, journal and API server", rebuilt.Targets.Count == 2, $"Ready {ready} ms after start, s3fs pid {rebuilt.Pid}; supervisor log: {own}");
        Check("writer container reads and writes again", text == "{\"order\":2}", "no container restart");
        await writer.WriteFileAsync("/data/order-3.json", "{\"order\":3}");
        Check("reader container reads again", await RetryAsync(() => reader.ReadFileAsync("/data/order-3.json")) == "{\"order\":3}", "still read-only");
        var recovered = await _api.WaitForEventAsync(e => e.Reason == "VolumeRecovered", Eventually.DefaultTimeout);
        Check("Event on the pod", true, $"{recovered.InvolvedObject.Name}: {recovered.Reason}: {recovered.Message}");
        await PrintCliAsync("list");

        Step("12. NodeUnpublish, NodeUnstage, DeleteVolume");
        foreach (var (pod, target) in new[] { (writerPod, writerTarget), (readerPod, readerTarget) })
        {
            await _plugin.Node.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = created.VolumeId, TargetPath = target });
        }
        foreach (var container in _containers)
        {
            await container.DisposeAsync();
        }
        _containers.Clear();
        await _plugin.Node.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = created.VolumeId, StagingTargetPath = staging });
        await _plugin.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = created.VolumeId, Secrets = { secrets } });
        var mounts = MountTable.Under(_layout.KubeletRoot).Count;
        var left = await _s3.ListKeysAsync(Bucket, prefix);
        Check("nothing left", mounts == 0 && _supervisor.Children().Count == 0 && left.Count == 0, $"{mounts} mounts, {_supervisor.Children().Count} s3fs children, {left.Count} objects under the prefix");
    }

    /// <summary>Starts the next supervisor on the same layout; the one it replaces (dead by now) is disposed whatever happens.</summary>
    private async Task RestartSupervisorAsync()
    {
        var replaced = _supervisor;
        try
        {
            _supervisor = await SupervisorProcess.StartAsync(_layout, _supervisorSettings, ownCgroup: true);
        }
        finally
        {
            if (replaced is not null)
            {
                await replaced.DisposeAsync();
            }
        }
    }

    private async Task PrintEventsAsync(AsyncServerStreamingCall<VolumeEvent> watch, string until)
    {
        try
        {
            while (await watch.ResponseStream.MoveNext(CancellationToken.None))
            {
                var e = watch.ResponseStream.Current;
                Say($"   watch: {e.Reason,-20} {e.Message}");
                if (e.Reason == until)
                {
                    return;
                }
            }
        }
        catch (RpcException)
        {
        }
    }

    private async Task PrintCliAsync(string verb)
    {
        var info = SupervisorProcess.Binary.StartInfo(verb, "--socket", _layout.SocketPath);
        using var cli = Process.Start(info)!;
        var output = await cli.StandardOutput.ReadToEndAsync();
        await cli.WaitForExitAsync();
        Say($"   $ s3supervisor {verb}");
        foreach (var line in output.TrimEnd().Split('\n'))
        {
            Say("   " + line);
        }
    }

    private static Task<string> RetryAsync(Func<Task<string>> read) => Eventually.SucceedsAsync<string, Exception>(read, Eventually.DefaultTimeout);

    public ScenarioReport Report => _report;

    private void Check(string what, bool ok, string detail) => _report.Check(what, ok, detail);

    private void Step(string title) => _report.Step(title);

    private void Say(string line) => _report.Say(line);

    public async ValueTask DisposeAsync()
    {
        foreach (var container in _containers)
        {
            await container.DisposeAsync();
        }
        if (_plugin is not null)
        {
            await _plugin.DisposeAsync();
        }
        if (_supervisor is not null)
        {
            await _supervisor.DisposeAsync();
        }
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
        await SupervisorProcess.CleanUpAsync(_layout);
        if (_s3 is not null)
        {
            await _s3.DisposeAsync();
        }
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;
using Csi.V1;
using Grpc.Core;
using k8s.Models;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Kubernetes;
using S3Supervisor.TestKit.Supervisor;
using Xunit.Abstractions;
using Sv = S3Supervisor.Api.V1;

namespace S3Supervisor.IntegrationTests.Plugin;

/// <summary>
/// The seed scenario as a test: a node as a cluster left it (provisioned PVs, Secrets, running pods in
/// the API server; kubelet's directories and vol_data.json on disk), every volume staged and published
/// through the plugin into stand-in containers. Killing the plugin needs no recovery at all; killing
/// the supervisor (with all its s3fs children) gets a full recovery, and the containers carry on
/// without a restart.
/// </summary>
[Collection(RgwFixture.Collection)]
public sealed class SeedScenarioTests : PluginTestBase
{
    private const string Namespace = "seed";
    private const int VolumeCount = 3;
    private readonly ITestOutputHelper _output;
    private readonly List<StandInContainer> _containers = [];
    private readonly NodeSimulator _node;
    private TestCluster? _cluster;
    private TestApiServer? _api;
    private TestScenario _scenario = null!;

    public SeedScenarioTests(RgwFixture rgw, ITestOutputHelper output)
        : base(rgw)
    {
        _output = output;
        _node = new NodeSimulator(Layout.KubeletRoot, NodeName);
    }

    protected override IDictionary<string, string>? SupervisorSettings => _cluster!.SupervisorSettings(NodeName, Layout.KubeletRoot, fastRetry: true);

    public override async Task InitializeAsync()
    {
        Rgw.SkipIfUnavailable();
        _cluster = await TestCluster.StartAsync(Path.Combine(Layout.Root, "kubeconfig"));
        _api = _cluster.Api;
        _scenario = TestObjects.Scenario(NodeName, VolumeCount, podsPerVolume: 1, S3.Endpoint, Bucket, S3.Region, Namespace, S3.AccessKey, S3.SecretKey);
        _api.UpsertAll(_scenario.Objects);
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        foreach (var container in _containers)
        {
            await container.DisposeAsync();
        }
        await base.DisposeAsync();
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }

    [SkippableFact]
    public async Task SeedScenario_PluginRestartNeedsNoRecovery_SupervisorRestartGetsIt()
    {
        var total = Stopwatch.StartNew();
        // kubelet stages and publishes every volume through the plugin; containers start on the targets.
        var kubelet = new KubeletThroughPlugin(() => Plugin, () => Supervisor.Client, Layout.KubeletRoot,
            handle => _scenario.Volumes.FirstOrDefault(v => v.Volume.Spec.Csi.VolumeHandle == handle)?.Volume.Spec.Csi.VolumeAttributes);
        var byClaim = new Dictionary<string, V1PersistentVolume>();
        foreach (var volume in _scenario.Volumes)
        {
            var staged = await _node.StageAsync(kubelet.Client, volume.Volume, volume.Secret);
            Assert.Equal(Sv.VolumeState.Ready, staged.State);
            Assert.Equal(_node.StagingPath(volume.Volume), staged.StagingPath);
            byClaim[volume.Claim.Metadata.Name] = volume.Volume;
        }
        var targets = new List<(string VolumeId, string TargetPath)>();
        foreach (var pod in _scenario.Pods)
        {
            var published = await _node.PublishPodAsync(kubelet.Client, pod, byClaim);
            targets.AddRange(published.Select(p => (p.Volume.Spec.Csi.VolumeHandle, p.TargetPath)));
            _containers.Add(await NodeSimulator.StartContainerAsync(pod, published));
        }
        Assert.Equal(VolumeCount, _containers.Count);
        for (var i = 0; i < VolumeCount; i++)
        {
            await _containers[i].WriteFileAsync("/data/before.txt", $"volume {i} before");
        }
        var original = await VolumesAsync();
        Assert.All(original, v => Assert.Equal(0, v.RestartCount));
        _output.WriteLine($"{VolumeCount} volumes staged and published through the plugin, containers up: {total.ElapsedMilliseconds} ms");

        // 1. The plugin dies (kill -9) and comes back: nothing happens to the mounts, container I/O never stops.
        var io = new ContainerIoLoop(_containers[0]);
        var runner = io.RunAsync();
        // I/O runs before the kill, while the plugin is down and after it is back: each phase waits
        // for operations to complete (not for a fixed time, which a busy machine may not fill).
        await WaitForOperationsAsync(io, 2, "container I/O before the plugin is killed");
        var stopwatch = Stopwatch.StartNew();
        await Plugin.KillAsync();
        await WaitForOperationsAsync(io, 2, "container I/O while the plugin is down");
        await StartPluginAsync();
        var restartTime = stopwatch.Elapsed;
        foreach (var (volumeId, targetPath) in targets)
        {
            var condition = await ConditionAsync(volumeId, targetPath);
            Assert.False(condition.Abnormal, condition.Message);
        }
        await WaitForOperationsAsync(io, 2, "container I/O after the plugin is back");
        io.Stop();
        await runner.WaitAsync(TimeSpan.FromSeconds(30));
        _output.WriteLine($"plugin kill -9 + restart: {restartTime.TotalMilliseconds:0} ms; container I/O across it: {io.Operations} ops, {io.Failures.Count} failed");
        Assert.True(io.Failures.IsEmpty, string.Join(" | ", io.Failures));
        Assert.True(io.Operations > 0);
        var afterPluginRestart = await VolumesAsync();
        foreach (var volume in afterPluginRestart)
        {
            var was = original.Single(v => v.VolumeId == volume.VolumeId);
            Assert.Equal(was.Pid, volume.Pid);
            Assert.Equal(was.Device, volume.Device);
            Assert.Equal(0, volume.RestartCount);
            Assert.Equal(Sv.VolumeState.Ready, volume.State);
        }

        // 2. The supervisor dies with its s3fs children; the plugin sees it and says so. It stays
        // dead as long as a real restart takes.
        await Supervisor.KillAndWaitLikeARuntimeAsync();
        var (code, _, stderr) = await _containers[1].ExecAsync("stat", "-t", "/data");
        Assert.NotEqual(0, code);
        Assert.Contains("Transport endpoint is not connected", stderr, StringComparison.Ordinal);
        Assert.False((await Plugin.Identity.ProbeAsync(new ProbeRequest(), deadline: DateTime.UtcNow.AddSeconds(10))).Ready);
        var unavailable = await Assert.ThrowsAsync<RpcException>(() => ConditionAsync(targets[0].VolumeId, targets[0].TargetPath));
        Assert.Equal(StatusCode.Unavailable, unavailable.StatusCode);

        // A new supervisor (same node, same settings) rebuilds every volume from kubelet's directories,
        // its journal and the API server, and repairs the containers.
        stopwatch.Restart();
        await StartSupervisorAsync();
        var rebuilt = await WaitAllReadyAsync(TimeSpan.FromSeconds(60));
        var rebuildTime = stopwatch.Elapsed;
        Assert.All(rebuilt, v => Assert.True(v.RestartCount >= 1, $"{v.VolumeId}: restart_count {v.RestartCount}"));
        Assert.All(rebuilt, v => Assert.Single(v.Targets));
        for (var i = 0; i < VolumeCount; i++)
        {
            var container = _containers[i];
            Assert.Equal($"volume {i} before", await EventuallyAsync(() => container.ReadFileAsync("/data/before.txt")));
            await container.WriteFileAsync("/data/after.txt", $"volume {i} after");
            Assert.Equal($"volume {i} after", await S3.GetObjectTextAsync(Bucket, $"{_scenario.Volumes[i].Volume.Metadata.Name}/after.txt"));
        }
        _output.WriteLine($"supervisor kill -9 to all {VolumeCount} volumes Ready: {rebuildTime.TotalMilliseconds:0} ms; containers read and write again: {stopwatch.ElapsedMilliseconds} ms");

        // The same plugin instance talks to the new supervisor: ready, conditions normal.
        Assert.True((await Plugin.Identity.ProbeAsync(new ProbeRequest())).Ready);
        foreach (var (volumeId, targetPath) in targets)
        {
            var condition = await EventuallyAsync(() => ConditionAsync(volumeId, targetPath));
            Assert.False(condition.Abnormal, condition.Message);
            var staging = await ConditionAsync(volumeId, NodeSimulator.StagingPath(Layout.KubeletRoot, volumeId));
            Assert.False(staging.Abnormal, staging.Message);
        }
        Assert.DoesNotContain(S3.SecretKey, Plugin.Output, StringComparison.Ordinal);
        _output.WriteLine($"whole scenario: {total.ElapsedMilliseconds} ms");
    }

    private static Task WaitForOperationsAsync(ContainerIoLoop io, int count, string describe)
    {
        var from = io.Operations;
        return Eventually.WaitAsync(() => io.Operations >= from + count || !io.Failures.IsEmpty, Eventually.DefaultTimeout, $"{count} operations: {describe}", () => $"{io.Operations - from} done, failures: {string.Join(" | ", io.Failures)}");
    }

    private async Task<IReadOnlyList<Sv.Volume>> VolumesAsync()
    {
        var volumes = (await Supervisor.Client.ListVolumesAsync(new Sv.ListVolumesRequest())).Volumes;
        Assert.Equal(VolumeCount, volumes.Count);
        return volumes;
    }

    private async Task<IReadOnlyList<Sv.Volume>> WaitAllReadyAsync(TimeSpan timeout)
    {
        var stopwatch = Stopwatch.StartNew();
        var volumes = new Google.Protobuf.Collections.RepeatedField<Sv.Volume>();
        while (stopwatch.Elapsed < timeout)
        {
            volumes = (await Supervisor.Client.ListVolumesAsync(new Sv.ListVolumesRequest())).Volumes;
            if (volumes.Count == VolumeCount && volumes.All(v => v.State == Sv.VolumeState.Ready))
            {
                return volumes;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"{volumes.Count(v => v.State == Sv.VolumeState.Ready)} of {VolumeCount} volumes ready: {string.Join("; ", volumes.Select(v => $"{v.VolumeId} {v.State} {v.LastError}"))}\n{Supervisor.Output}");
    }

    /// <summary>Writes, reads back and verifies a file inside a stand-in container, in a loop.</summary>
    private sealed class ContainerIoLoop(StandInContainer container)
    {
        private long _operations;
        private volatile bool _stop;

        public long Operations => Interlocked.Read(ref _operations);

        public ConcurrentQueue<string> Failures { get; } = new();

        public void Stop() => _stop = true;

        public async Task RunAsync()
        {
            for (var i = 0; !_stop; i++)
            {
                var path = $"/data/loop-{i % 4}.txt";
                var content = $"container operation {i}";
                try
                {
                    await container.WriteFileAsync(path, content);
                    var read = await container.ReadFileAsync(path);
                    if (read != content)
                    {
                        Failures.Enqueue($"op {i}: read back \"{read}\"");
                    }
                }
                catch (ContainerExecException e)
                {
                    Failures.Enqueue($"op {i}: {e.Message}");
                }
                Interlocked.Increment(ref _operations);
            }
        }
    }
}

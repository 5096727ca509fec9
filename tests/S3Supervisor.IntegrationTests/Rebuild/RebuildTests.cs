using System.Globalization;
using k8s.Models;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Kubernetes;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.IntegrationTests.Rebuild;

/// <summary>
/// The capability the project exists for: the supervisor dies with all its s3fs children (like a
/// container death), a new one starts, rebuilds every volume from kubelet's directories, its journal
/// and the API server, and repairs the stale mounts inside running containers, without a restart.
/// </summary>
[Collection(RgwFixture.Collection)]
public sealed class RebuildTests : IAsyncLifetime
{
    private const string Namespace = "apps";
    private const int VolumeCount = 10;
    private readonly RgwFixture _rgw;
    private readonly SupervisorLayout _layout = new(Directory.CreateTempSubdirectory("s3sv-rb-").FullName);
    private readonly List<SupervisorProcess> _supervisors = [];
    private readonly List<StandInContainer> _containers = [];
    private readonly string _bucket = "rb-" + Guid.NewGuid().ToString("N")[..16];
    private TestApiServer? _api;
    private NodeSimulator _node = null!;
    private TestScenario _scenario = null!;
    private List<V1Pod> _pods = [];
    private string _kubeconfig = string.Empty;

    public RebuildTests(RgwFixture rgw)
    {
        _rgw = rgw;
    }

    private RgwServer S3 => _rgw.Server!;

    public async Task InitializeAsync()
    {
        _rgw.SkipIfUnavailable();
        await S3.CreateBucketAsync(_bucket);
        _api = await TestApiServer.StartAsync();
        _kubeconfig = _api.WriteKubeconfig(Path.Combine(_layout.Root, "kubeconfig"));
        _node = new NodeSimulator(_layout.KubeletRoot);
        _scenario = TestObjects.Scenario(_node.NodeName, VolumeCount, podsPerVolume: 0, S3.Endpoint, _bucket, S3.Region, Namespace, S3.AccessKey, S3.SecretKey);
        // Two pods use every volume; pod B mounts volume 0 read-only (PVC readOnly) and volume 1 through a subPath.
        var claims = _scenario.Volumes.Select(v => v.Claim.Metadata.Name).ToArray();
        _pods =
        [
            TestObjects.Pod(Namespace, "app-a", _node.NodeName, claims.Select((c, i) => new PodVolumeMount(c, $"/data/{i}"))),
            TestObjects.Pod(Namespace, "app-b", _node.NodeName, claims.Select((c, i) => new PodVolumeMount(c, $"/data/{i}", ReadOnly: i == 0, SubPath: i == 1 ? "sub" : null))),
        ];
        _api.UpsertAll(_scenario.Objects);
        foreach (var pod in _pods)
        {
            _api.Upsert(pod);
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var container in _containers)
        {
            await container.DisposeAsync();
        }
        foreach (var supervisor in _supervisors)
        {
            await supervisor.DisposeAsync();
        }
        if (_api is not null)
        {
            await _api.DisposeAsync();
        }
        SupervisorProcess.CleanUp(_layout);
    }

    [SkippableFact]
    public async Task KillSupervisor_TenVolumesTwoContainers_EverythingRestoredWithoutContainerRestart()
    {
        var first = await StartSupervisorAsync();
        await SetUpNodeAsync(first);
        // Data written and closed before the kill, through both containers.
        for (var i = 0; i < VolumeCount; i++)
        {
            if (i != 1)
            {
                await _containers[0].WriteFileAsync($"/data/{i}/before.txt", $"volume {i} before");
            }
        }
        await _containers[1].WriteFileAsync("/data/1/from-b.txt", "written through the subPath");

        await first.KillAsync();
        var (code, _, stderr) = await _containers[0].ExecAsync("stat", "-t", "/data/2");
        Assert.NotEqual(0, code);
        Assert.Contains("Transport endpoint is not connected", stderr, StringComparison.Ordinal);

        var second = await StartSupervisorAsync();
        var volumes = await WaitAllReadyAsync(second, TimeSpan.FromSeconds(60));
        Assert.Equal(VolumeCount, volumes.Count);
        Assert.All(volumes, v => Assert.Equal(2, v.Targets.Count));

        // Every container reads and writes its data again, without a restart.
        for (var i = 0; i < VolumeCount; i++)
        {
            if (i == 1)
            {
                continue;
            }
            Assert.Equal($"volume {i} before", await EventuallyAsync(() => _containers[0].ReadFileAsync($"/data/{i}/before.txt")));
            await _containers[0].WriteFileAsync($"/data/{i}/after.txt", $"volume {i} after");
            if (i != 0)
            {
                Assert.Equal($"volume {i} before", await EventuallyAsync(() => _containers[1].ReadFileAsync($"/data/{i}/before.txt")));
            }
        }
        // Read-only stays read-only.
        Assert.Equal("volume 0 before", await EventuallyAsync(() => _containers[1].ReadFileAsync("/data/0/before.txt")));
        var write = await _containers[1].ExecAsync("sh", "-c", "echo x > /data/0/nope.txt");
        Assert.NotEqual(0, write.ExitCode);
        Assert.Contains("Read-only file system", write.Stderr, StringComparison.Ordinal);
        // The subPath still shows only its subdirectory.
        var listing = await EventuallyAsync(() => _containers[1].ListAsync("/data/1"));
        Assert.Equal(["from-b.txt"], listing.OrderBy(x => x).ToArray());
        await _containers[1].WriteFileAsync("/data/1/after-b.txt", "subPath after");

        // Everything is in S3 with the right contents.
        for (var i = 0; i < VolumeCount; i++)
        {
            var prefix = _scenario.Volumes[i].Volume.Metadata.Name;
            if (i != 1)
            {
                Assert.Equal($"volume {i} before", await S3.GetObjectTextAsync(_bucket, $"{prefix}/before.txt"));
                Assert.Equal($"volume {i} after", await S3.GetObjectTextAsync(_bucket, $"{prefix}/after.txt"));
            }
        }
        var subPrefix = _scenario.Volumes[1].Volume.Metadata.Name;
        Assert.Equal("written through the subPath", await S3.GetObjectTextAsync(_bucket, $"{subPrefix}/sub/from-b.txt"));
        Assert.Equal("subPath after", await S3.GetObjectTextAsync(_bucket, $"{subPrefix}/sub/after-b.txt"));

        // Each pod was told.
        await _api!.WaitForEventAsync(e => e.Reason == "VolumeRecovered" && e.InvolvedObject.Name == "app-b", TimeSpan.FromSeconds(10));
    }

    [SkippableFact]
    public async Task ApiServerDownAtStart_RecoveryCompletesOnceItIsBack()
    {
        var first = await StartSupervisorAsync();
        await SetUpNodeAsync(first, containers: false);
        await first.KillAsync();
        await _api!.SetModeAsync(ApiServerMode.Down);

        var second = await StartSupervisorAsync();
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Empty((await second.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes);
        Assert.Contains("API server unreachable", second.Output, StringComparison.Ordinal);

        await _api.SetModeAsync(ApiServerMode.Normal);
        var volumes = await WaitAllReadyAsync(second, TimeSpan.FromSeconds(60));
        Assert.Equal(VolumeCount, volumes.Count);
    }

    [SkippableFact]
    public async Task SecretsForbidden_SupervisorStaysUpAndRecoversOnceAllowed()
    {
        var first = await StartSupervisorAsync();
        await SetUpNodeAsync(first, containers: false);
        await first.KillAsync();
        _api!.ForbidResource("secrets");

        var second = await StartSupervisorAsync();
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.False(second.HasExited, second.Output);
        Assert.Empty((await second.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes);
        Assert.Contains("Forbidden", second.Output, StringComparison.Ordinal);

        _api.AllowResource("secrets");
        var volumes = await WaitAllReadyAsync(second, TimeSpan.FromSeconds(60));
        Assert.Equal(VolumeCount, volumes.Count);
    }

    [SkippableFact]
    public async Task OneSecretMissing_OthersRecoverAndThatOneIsReported()
    {
        var first = await StartSupervisorAsync();
        await SetUpNodeAsync(first, containers: false);
        await first.KillAsync();
        var victim = _scenario.Volumes[3];
        _api!.Remove(victim.Secret);

        var second = await StartSupervisorAsync();
        var ready = await WaitAllReadyAsync(second, TimeSpan.FromSeconds(60), expected: VolumeCount - 1);
        Assert.DoesNotContain(ready, v => v.VolumeId == victim.Volume.Spec.Csi.VolumeHandle);
        var ev = await _api.WaitForEventAsync(e => e.Reason == "VolumeRestoreBlocked", TimeSpan.FromSeconds(20));
        Assert.Contains($"secret {Namespace}/{victim.Secret.Metadata.Name} not found", ev.Message, StringComparison.Ordinal);
        Assert.Equal("Warning", ev.Type);
        Assert.Contains(victim.Volume.Spec.Csi.VolumeHandle, second.Output, StringComparison.Ordinal);

        // Once the secret is back, the volume recovers too.
        _api.Upsert(victim.Secret);
        await second.WaitForStateAsync(victim.Volume.Spec.Csi.VolumeHandle, VolumeState.Ready, TimeSpan.FromSeconds(60));
    }

    [SkippableFact]
    public async Task JournalOnlyVolume_WithoutKubeletDirectories_IsDropped()
    {
        var first = await StartSupervisorAsync();
        await SetUpNodeAsync(first, containers: false);
        await first.KillAsync();
        // Node "reboot" for volume 5: kubelet's directories for it are gone.
        var gone = _scenario.Volumes[5].Volume;
        SupervisorProcess.CleanUp(new SupervisorLayout(Path.GetDirectoryName(_node.StagingPath(gone))!));
        foreach (var pod in _pods)
        {
            var dir = Path.GetDirectoryName(_node.TargetPath(pod, gone))!;
            MountCleaner.UnmountUnder(dir);
            Directory.Delete(dir, true);
        }

        var second = await StartSupervisorAsync();
        var ready = await WaitAllReadyAsync(second, TimeSpan.FromSeconds(60), expected: VolumeCount - 1);
        Assert.DoesNotContain(ready, v => v.VolumeId == gone.Spec.Csi.VolumeHandle);
        await Task.Delay(500);
        Assert.DoesNotContain(gone.Spec.Csi.VolumeHandle, await File.ReadAllTextAsync(Path.Combine(_layout.StateDirectory, "journal.json")), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task RepairTurnedOff_ChildKilled_HostHealsAndPodEventSaysContainersKeepOldMount()
    {
        var supervisor = await StartSupervisorAsync(repair: false);
        await SetUpNodeAsync(supervisor);
        var volume = _scenario.Volumes[2].Volume.Spec.Csi.VolumeHandle;
        var before = await supervisor.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = volume });

        ProcessTree.Signal(before.Pid, 9);

        await supervisor.WaitForStateAsync(volume, VolumeState.Ready, TimeSpan.FromSeconds(30), v => v.RestartCount == 1);
        Assert.Equal("volume 2 host", await WriteThroughHostAsync(_node.TargetPath(_pods[0], _scenario.Volumes[2].Volume), "volume 2 host"));
        var ev = await _api!.WaitForEventAsync(e => e.Reason == "ContainerRepairFailed" && e.InvolvedObject.Name == "app-a", TimeSpan.FromSeconds(15));
        Assert.Equal("Warning", ev.Type);
        Assert.Contains("container repair is turned off", ev.Message, StringComparison.Ordinal);
        Assert.Contains("livenessProbe", ev.Message, StringComparison.Ordinal);
        var (code, _, stderr) = await _containers[0].ExecAsync("stat", "-t", "/data/2");
        Assert.NotEqual(0, code);
        Assert.Contains("Transport endpoint is not connected", stderr, StringComparison.Ordinal);
    }

    private static async Task<string> WriteThroughHostAsync(string target, string text)
    {
        var path = Path.Combine(target, "host.txt");
        await File.WriteAllTextAsync(path, text);
        return await File.ReadAllTextAsync(path);
    }

    private async Task<SupervisorProcess> StartSupervisorAsync(bool repair = true)
    {
        var supervisor = await SupervisorProcess.StartAsync(_layout, new Dictionary<string, string>
        {
            ["Kubernetes__Kubeconfig"] = _kubeconfig,
            ["Kubernetes__NodeName"] = _node.NodeName,
            ["Kubernetes__KubeletRoot"] = _layout.KubeletRoot,
            ["Kubernetes__RetryInitial"] = "00:00:00.500",
            ["Kubernetes__RetryMax"] = "00:00:02",
            ["Supervisor__RepairContainers"] = repair ? "true" : "false",
        });
        _supervisors.Add(supervisor);
        return supervisor;
    }

    private async Task SetUpNodeAsync(SupervisorProcess supervisor, bool containers = true)
    {
        var byClaim = new Dictionary<string, V1PersistentVolume>();
        foreach (var volume in _scenario.Volumes)
        {
            await _node.StageAsync(supervisor.Client, volume.Volume, volume.Secret);
            byClaim[volume.Claim.Metadata.Name] = volume.Volume;
        }
        foreach (var pod in _pods)
        {
            var published = await _node.PublishPodAsync(supervisor.Client, pod, byClaim);
            if (containers)
            {
                _containers.Add(await NodeSimulator.StartContainerAsync(pod, published));
            }
        }
    }

    private static async Task<IReadOnlyList<Volume>> WaitAllReadyAsync(SupervisorProcess supervisor, TimeSpan timeout, int expected = VolumeCount)
    {
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        IReadOnlyList<Volume> volumes = [];
        while (stopwatch.Elapsed < timeout)
        {
            volumes = (await supervisor.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes;
            if (volumes.Count(v => v.State == VolumeState.Ready) >= expected)
            {
                return volumes.Where(v => v.State == VolumeState.Ready).ToArray();
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"{volumes.Count(v => v.State == VolumeState.Ready)} of {expected} volumes ready: {string.Join("; ", volumes.Select(v => $"{v.VolumeId} {v.State} {v.LastError}"))}\n{supervisor.Output}");
    }

    private static async Task<T> EventuallyAsync<T>(Func<Task<T>> action)
    {
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await action();
            }
            catch (Exception) when (stopwatch.Elapsed < TimeSpan.FromSeconds(15))
            {
                await Task.Delay(200);
            }
        }
    }
}

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
    private TestCluster? _cluster;

    public RebuildTests(RgwFixture rgw)
    {
        _rgw = rgw;
    }

    private RgwServer S3 => _rgw.Server!;

    public async Task InitializeAsync()
    {
        _rgw.SkipIfUnavailable();
        await S3.CreateBucketAsync(_bucket);
        _cluster = await TestCluster.StartAsync(Path.Combine(_layout.Root, "kubeconfig"));
        _api = _cluster.Api;
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
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
        await SupervisorProcess.CleanUpAsync(_layout);
    }

    /// <summary>The one test that stays dead as long as a kubelet back-off really keeps a crashed container down.</summary>
    [SkippableFact]
    public async Task KillSupervisor_TenVolumesTwoContainersBack15sLater_EverythingRestoredWithoutContainerRestart()
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

        await first.KillAndWaitLikeARuntimeAsync(TimeSpan.FromSeconds(15));
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
        await _api!.WaitForEventAsync(e => e.Reason == "VolumeRecovered" && e.InvolvedObject.Name == "app-b", Eventually.DefaultTimeout);
    }

    [SkippableFact]
    public async Task KillSupervisor_TenVolumesStagedWithoutPods_AllRestoredAndNextPublishWritesToS3()
    {
        // kubelet stages before it publishes and keeps a volume staged between pods: ten staged volumes,
        // no pod on the node uses any of them (the API server has no pods), nothing published.
        var first = await StartSupervisorAsync();
        foreach (var volume in _scenario.Volumes)
        {
            await _node.StageAsync(first.Client, volume.Volume, volume.Secret);
        }
        foreach (var old in _pods)
        {
            Assert.True(_api!.Remove<V1Pod>(old.Metadata.Name, Namespace));
        }

        // Back after a real restart's gap: a plain stat of the dead mounts no longer succeeds from
        // FUSE's attribute cache (the gap that hid the bug), Directory.Exists is false on them.
        await first.KillAndWaitLikeARuntimeAsync();
        Assert.All(_scenario.Volumes, v => Assert.False(Directory.Exists(_node.StagingPath(v.Volume))));

        var second = await StartSupervisorAsync();
        var volumes = await WaitAllReadyAsync(second, Eventually.DefaultTimeout * 2);
        Assert.Equal(VolumeCount, volumes.Count);
        Assert.All(volumes, v => Assert.Empty(v.Targets));
        Assert.DoesNotContain("dropped", second.Output, StringComparison.Ordinal);
        foreach (var volume in volumes)
        {
            var mount = MountTable.Find(volume.StagingPath);
            var device = mount is null ? "none" : $"{mount.Major}:{mount.Minor}";
            Assert.True(device == volume.Device, $"{volume.VolumeId}: staging mount {device}, volume device {volume.Device}");
        }

        // kubelet's next NodePublish (a new pod on the node) works, and what the pod writes reaches S3.
        var claims = _scenario.Volumes.Select(v => v.Claim.Metadata.Name).ToArray();
        var pod = _api!.Upsert(TestObjects.Pod(Namespace, "app-c", _node.NodeName, claims.Select((c, i) => new PodVolumeMount(c, $"/data/{i}"))));
        var published = await _node.PublishPodAsync(second.Client, pod, _scenario.Volumes.ToDictionary(v => v.Claim.Metadata.Name, v => v.Volume));
        Assert.Equal(VolumeCount, published.Count);
        foreach (var (target, i) in published.Select((p, i) => (p.TargetPath, i)))
        {
            Assert.Equal($"volume {i} after the restart", await WriteThroughHostAsync(target, $"volume {i} after the restart"));
            Assert.Equal($"volume {i} after the restart", await S3.GetObjectTextAsync(_bucket, $"{_scenario.Volumes[i].Volume.Metadata.Name}/host.txt"));
        }
        Assert.All(await WaitAllReadyAsync(second, Eventually.DefaultTimeout), v => Assert.Single(v.Targets));
    }

    [SkippableFact]
    public async Task ApiServerDownAtStart_PasswdFilesKept_AllRestoredFromTheJournalWithoutIt()
    {
        var first = await StartSupervisorAsync();
        await SetUpNodeAsync(first, containers: false);
        await first.KillAndWaitLikeARuntimeAsync();
        // The supervisor's container restarted, its pod did not: the secrets directory kept every passwd file.
        await _api!.SetModeAsync(ApiServerMode.Down);

        var second = await StartSupervisorAsync();
        var volumes = await WaitAllReadyAsync(second, TimeSpan.FromSeconds(60));
        Assert.Equal(VolumeCount, volumes.Count);
        await Eventually.WaitAsync(() => second.Output.Contains($"Rebuild: {VolumeCount} of {VolumeCount} volume(s) remounted from the journal", StringComparison.Ordinal), Eventually.DefaultTimeout, "the rebuild saying it remounted every volume from the journal", () => second.Output);
        Assert.All(volumes, v => Assert.Equal(2, v.Targets.Count));
        // The new s3fs really serve with the stored credentials: a write through a target reaches S3.
        var volume = _scenario.Volumes[0].Volume;
        var target = _node.TargetPath(_pods[0], volume);
        await File.WriteAllTextAsync(Path.Combine(target, "journal-path.txt"), "from the journal");
        await Eventually.WaitAsync(async () => await S3.ObjectExistsAsync(_bucket, $"{volume.Metadata.Name}/journal-path.txt"), Eventually.DefaultTimeout, "the write through the restored mount reaching S3");
        await _api.SetModeAsync(ApiServerMode.Normal);
    }

    [SkippableFact]
    public async Task NewNodePod_VolumesShareOneSecret_ItIsReadOnceForAll()
    {
        var first = await StartSupervisorAsync();
        await SetUpNodeAsync(first, containers: false);
        await first.KillAndWaitLikeARuntimeAsync();
        LoseStoredCredentials();
        // Every PV names the first volume's Secret (same keys): one read must serve them all.
        var shared = _scenario.Volumes[0].Secret;
        foreach (var v in _scenario.Volumes)
        {
            v.Volume.Spec.Csi.NodeStageSecretRef = new V1SecretReference { Name = shared.Metadata.Name, NamespaceProperty = shared.Metadata.NamespaceProperty };
            _api!.Upsert(v.Volume);
        }
        _api!.ClearRequests();

        var second = await StartSupervisorAsync();
        var volumes = await WaitAllReadyAsync(second, TimeSpan.FromSeconds(60));

        Assert.Equal(VolumeCount, volumes.Count);
        var secretReads = _api.Requests.Where(r => r.Method == "GET" && r.Path.Contains("/secrets/", StringComparison.Ordinal)).ToList();
        Assert.True(secretReads.Count == 1, $"{secretReads.Count} Secret reads for {VolumeCount} volumes naming one Secret: {string.Join(", ", secretReads.Select(r => r.Path))}");
    }

    /// <summary>What a replaced node pod finds: a new secrets emptyDir, no passwd file of any volume.</summary>
    private void LoseStoredCredentials()
    {
        foreach (var directory in Directory.EnumerateDirectories(_layout.SecretsDirectory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [SkippableFact]
    public async Task ApiServerDownAtStart_RecoveryCompletesOnceItIsBack()
    {
        var first = await StartSupervisorAsync();
        await SetUpNodeAsync(first, containers: false);
        await first.KillAndWaitLikeARuntimeAsync();
        // A new node pod: its secrets emptyDir is new, so only the API server has the credentials.
        LoseStoredCredentials();
        await _api!.SetModeAsync(ApiServerMode.Down);

        var second = await StartSupervisorAsync();
        // It tried (and says so), and restored nothing without the API server.
        await Eventually.WaitAsync(() => second.Output.Contains("API server unreachable", StringComparison.Ordinal), Eventually.DefaultTimeout, "the rebuild logging that the API server is unreachable", () => second.Output);
        Assert.Empty((await second.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes);

        await _api.SetModeAsync(ApiServerMode.Normal);
        var volumes = await WaitAllReadyAsync(second, TimeSpan.FromSeconds(60));
        Assert.Equal(VolumeCount, volumes.Count);
    }

    [SkippableFact]
    public async Task DuringRebuild_VolumeNotYetRestored_StatsAndRepublishAnswerUnavailableNotNotFound()
    {
        var first = await StartSupervisorAsync();
        await SetUpNodeAsync(first, containers: false);
        var volume = _scenario.Volumes[4].Volume;
        var id = volume.Spec.Csi.VolumeHandle;
        var target = _node.TargetPath(_pods[0], volume);
        await first.KillAndWaitLikeARuntimeAsync();
        // A new node pod: its secrets emptyDir is new, so only the API server has the credentials.
        LoseStoredCredentials();
        await _api!.SetModeAsync(ApiServerMode.Down);

        var second = await StartSupervisorAsync();
        await Eventually.WaitAsync(() => second.Output.Contains("API server unreachable", StringComparison.Ordinal), Eventually.DefaultTimeout, "the rebuild logging that the API server is unreachable", () => second.Output);

        // kubelet's calls for a volume that is coming back: transient, never final.
        var get = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => second.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = id }).ResponseAsync);
        Assert.Equal(Grpc.Core.StatusCode.Unavailable, get.StatusCode);
        Assert.Contains("volume_id", get.Status.Detail, StringComparison.Ordinal);
        var republish = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => second.Client.PublishVolumeAsync(new PublishVolumeRequest { VolumeId = id, TargetPath = target }).ResponseAsync);
        Assert.Equal(Grpc.Core.StatusCode.Unavailable, republish.StatusCode);
        // An id that neither kubelet nor the journal knows is still NOT_FOUND.
        var unknown = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => second.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = "never-on-this-node" }).ResponseAsync);
        Assert.Equal(Grpc.Core.StatusCode.NotFound, unknown.StatusCode);

        await _api.SetModeAsync(ApiServerMode.Normal);
        await second.WaitForStateAsync(id, VolumeState.Ready, TimeSpan.FromSeconds(60));
        // Ready shows while the restore still holds the volume's lock for its journal write: ABORTED is kubelet's "retry".
        await Eventually.WaitAsync(
            async () =>
            {
                try
                {
                    await second.Client.PublishVolumeAsync(new PublishVolumeRequest { VolumeId = id, TargetPath = target });
                    return true;
                }
                catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.Aborted)
                {
                    return false;
                }
            },
            Eventually.DefaultTimeout,
            "a republish of the restored volume");
    }

    [SkippableFact]
    public async Task SecretsForbidden_SupervisorStaysUpAndRecoversOnceAllowed()
    {
        var first = await StartSupervisorAsync();
        await SetUpNodeAsync(first, containers: false);
        await first.KillAndWaitLikeARuntimeAsync();
        // A new node pod: its secrets emptyDir is new, so only the API server has the credentials.
        LoseStoredCredentials();
        _api!.ForbidResource("secrets");

        var second = await StartSupervisorAsync();
        // It asked for the secrets, was refused (and says so), stays up and restored nothing.
        await Eventually.WaitAsync(() => second.Output.Contains("Forbidden", StringComparison.Ordinal), Eventually.DefaultTimeout, "the rebuild logging the API server's Forbidden for secrets", () => second.Output);
        Assert.False(second.HasExited, second.Output);
        Assert.Empty((await second.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes);

        _api.AllowResource("secrets");
        var volumes = await WaitAllReadyAsync(second, TimeSpan.FromSeconds(60));
        Assert.Equal(VolumeCount, volumes.Count);
    }

    [SkippableFact]
    public async Task KillSupervisor_KubernetesClientCannotBeBuiltAtFirst_RebuildReportsRetriesAndRestores()
    {
        var first = await StartSupervisorAsync();
        await SetUpNodeAsync(first, containers: false);
        await first.KillAndWaitLikeARuntimeAsync();
        // A new node pod: its secrets emptyDir is new, so only the API server has the credentials.
        LoseStoredCredentials();
        // A kubeconfig that passes the check at start (a user with a client certificate and key) but
        // whose files are not there yet: building the client throws (FileNotFoundException).
        var certificate = Path.Combine(_layout.Root, "client.crt");
        var key = Path.Combine(_layout.Root, "client.key");
        var kubeconfig = Path.Combine(_layout.Root, "kubeconfig-cert");
        await File.WriteAllTextAsync(kubeconfig, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: test
              cluster:
                server: {_api!.BaseUri.ToString().TrimEnd('/')}
            contexts:
            - name: test
              context:
                cluster: test
                user: cert-user
            current-context: test
            users:
            - name: cert-user
              user:
                client-certificate: {certificate}
                client-key: {key}

            """);

        var second = await StartSupervisorAsync(kubeconfig: kubeconfig);
        using var watch = second.Client.WatchVolumes(new WatchVolumesRequest());
        using var deadline = new CancellationTokenSource(Eventually.DefaultTimeout);
        string? reported = null;
        while (reported is null && await watch.ResponseStream.MoveNext(deadline.Token))
        {
            reported = watch.ResponseStream.Current.Reason == "KubernetesClientFailed" ? watch.ResponseStream.Current.Message : null;
        }
        Assert.Contains(_layout.Root, reported, StringComparison.Ordinal);
        // Not once and given up: it goes on trying, and stays up.
        await Eventually.WaitAsync(() => Occurrences(second.Output, "cannot build the Kubernetes API client") >= 3, Eventually.DefaultTimeout, "three attempts to build the client logged", () => second.Output);
        Assert.False(second.HasExited, second.Output);
        Assert.DoesNotContain("Rebuild stopped", second.Output, StringComparison.Ordinal);
        Assert.Empty((await second.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes);

        // The files appear (a projected volume caught up, an operator fixed it): the next attempt restores everything.
        using (var rsa = System.Security.Cryptography.RSA.Create(2048))
        {
            var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=s3supervisor-test", rsa, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
            using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
            await File.WriteAllTextAsync(key, rsa.ExportPkcs8PrivateKeyPem());
            await File.WriteAllTextAsync(certificate, cert.ExportCertificatePem());
        }
        var volumes = await WaitAllReadyAsync(second, Eventually.DefaultTimeout * 2);
        Assert.Equal(VolumeCount, volumes.Count);
    }

    [SkippableFact]
    public async Task OneSecretMissing_OthersRecoverAndThatOneIsReported()
    {
        var first = await StartSupervisorAsync();
        await SetUpNodeAsync(first, containers: false);
        await first.KillAndWaitLikeARuntimeAsync();
        // A new node pod: its secrets emptyDir is new, so only the API server has the credentials.
        LoseStoredCredentials();
        var victim = _scenario.Volumes[3];
        _api!.Remove(victim.Secret);

        var second = await StartSupervisorAsync();
        var ready = await WaitAllReadyAsync(second, TimeSpan.FromSeconds(60), expected: VolumeCount - 1);
        Assert.DoesNotContain(ready, v => v.VolumeId == victim.Volume.Spec.Csi.VolumeHandle);
        var ev = await _api.WaitForEventAsync(e => e.Reason == "VolumeRestoreBlocked", Eventually.DefaultTimeout);
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
        await first.KillAndWaitLikeARuntimeAsync();
        // Node "reboot" for volume 5: kubelet's directories for it are gone.
        var gone = _scenario.Volumes[5].Volume;
        var stagingDirectory = Path.GetDirectoryName(_node.StagingPath(gone))!;
        MountCleaner.UnmountUnder(stagingDirectory);
        Directory.Delete(stagingDirectory, true);
        foreach (var pod in _pods)
        {
            var dir = Path.GetDirectoryName(_node.TargetPath(pod, gone))!;
            MountCleaner.UnmountUnder(dir);
            Directory.Delete(dir, true);
        }

        var second = await StartSupervisorAsync();
        var ready = await WaitAllReadyAsync(second, TimeSpan.FromSeconds(60), expected: VolumeCount - 1);
        Assert.DoesNotContain(ready, v => v.VolumeId == gone.Spec.Csi.VolumeHandle);
        Assert.Contains($"Rebuild: volume {gone.Spec.Csi.VolumeHandle} dropped", second.Output, StringComparison.Ordinal);
        // The drop is logged just before the journal is written without it.
        var journal = Path.Combine(_layout.StateDirectory, "journal.json");
        await Eventually.WaitAsync(() => !ReadOrEmpty(journal).Contains(gone.Spec.Csi.VolumeHandle, StringComparison.Ordinal), Eventually.DefaultTimeout, $"the journal without {gone.Spec.Csi.VolumeHandle}", () => ReadOrEmpty(journal));
        Assert.Contains(ready[0].VolumeId, ReadOrEmpty(journal), StringComparison.Ordinal);
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
        var ev = await _api!.WaitForEventAsync(e => e.Reason == "ContainerRepairFailed" && e.InvolvedObject.Name == "app-a", Eventually.DefaultTimeout);
        Assert.Equal("Warning", ev.Type);
        Assert.Contains("container repair is turned off", ev.Message, StringComparison.Ordinal);
        Assert.Contains("livenessProbe", ev.Message, StringComparison.Ordinal);
        var (code, _, stderr) = await _containers[0].ExecAsync("stat", "-t", "/data/2");
        Assert.NotEqual(0, code);
        Assert.Contains("Transport endpoint is not connected", stderr, StringComparison.Ordinal);
    }

    /// <summary>The file's text, or empty while it is missing or being replaced.</summary>
    private static string ReadOrEmpty(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    private static async Task<string> WriteThroughHostAsync(string target, string text)
    {
        var path = Path.Combine(target, "host.txt");
        await File.WriteAllTextAsync(path, text);
        return await File.ReadAllTextAsync(path);
    }

    private static int Occurrences(string text, string value)
    {
        var count = 0;
        for (var at = text.IndexOf(value, StringComparison.Ordinal); at >= 0; at = text.IndexOf(value, at + value.Length, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }

    private async Task<SupervisorProcess> StartSupervisorAsync(bool repair = true, string? kubeconfig = null)
    {
        var settings = _cluster!.SupervisorSettings(_node.NodeName, _layout.KubeletRoot, fastRetry: true, kubeconfig);
        settings["Supervisor__RepairContainers"] = repair ? "true" : "false";
        var supervisor = await SupervisorProcess.StartAsync(_layout, settings);
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
        IReadOnlyList<Volume> volumes = [];
        await Eventually.WaitAsync(
            async () =>
            {
                volumes = (await supervisor.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes;
                return volumes.Count(v => v.State == VolumeState.Ready) >= expected;
            },
            timeout,
            $"{expected} volumes Ready",
            () => $"{volumes.Count(v => v.State == VolumeState.Ready)} ready: {string.Join("; ", volumes.Select(v => $"{v.VolumeId} {v.State} {v.LastError}"))}\n{supervisor.Output}");
        return volumes.Where(v => v.State == VolumeState.Ready).ToArray();
    }

    /// <summary>A read or write inside a container right after its repair: retried while it still fails.</summary>
    private static Task<T> EventuallyAsync<T>(Func<Task<T>> action) => Eventually.SucceedsAsync<T, Exception>(action, Eventually.DefaultTimeout);
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using S3Supervisor.TestKit.Kubernetes;

namespace S3Supervisor.IntegrationTests.Kubernetes;

/// <summary>The test API server, driven by the real KubernetesClient the supervisor uses.</summary>
public sealed class TestApiServerTests : IAsyncLifetime
{
    private const string Node = "node-a";
    private TestApiServer _server = null!;
    private k8s.Kubernetes _client = null!;
    private TestScenario _scenario = null!;

    public async Task InitializeAsync()
    {
        _server = await TestApiServer.StartAsync();
        _client = _server.CreateClient();
        _scenario = TestObjects.Scenario(Node, volumeCount: 3, podsPerVolume: 2);
        _server.UpsertAll(_scenario.Objects);
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task ListPodForAllNamespaces_FieldSelectorOnNodeName_ReturnsOnlyThatNodesPods()
    {
        _server.Add(TestObjects.Pod("other", "elsewhere", "node-b", [new PodVolumeMount("data-00", "/data")]));

        var pods = await _client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={Node}");

        Assert.Equal(6, pods.Items.Count);
        Assert.All(pods.Items, p => Assert.Equal(Node, p.Spec.NodeName));
        Assert.Equal(_scenario.Pods.Select(p => p.Metadata.Uid).Order(), pods.Items.Select(p => p.Metadata.Uid).Order());
        Assert.Equal("PodList", pods.Kind);
        Assert.Equal("v1", pods.ApiVersion);
        Assert.False(string.IsNullOrEmpty(pods.Metadata.ResourceVersion));
        var all = await _client.CoreV1.ListPodForAllNamespacesAsync();
        Assert.Equal(7, all.Items.Count);
        var request = _server.Requests.First(r => r.QueryValue("fieldSelector") is not null);
        Assert.Equal("GET", request.Method);
        Assert.Equal("/api/v1/pods", request.Path);
        Assert.Equal($"spec.nodeName={Node}", request.QueryValue("fieldSelector"));
    }

    [Fact]
    public async Task ListNamespacedPod_SelectorsAndNamespace_FilterLikeTheApiServer()
    {
        _server.Add(TestObjects.Pod("other", "elsewhere", Node, [new PodVolumeMount("data-00", "/data")]));

        var inDefault = await _client.CoreV1.ListNamespacedPodAsync("default", fieldSelector: $"spec.nodeName={Node},status.phase=Running");
        var byLabel = await _client.CoreV1.ListNamespacedPodAsync("default", labelSelector: "app in (app-00-0,app-01-1)");
        var notRunning = await _client.CoreV1.ListNamespacedPodAsync("default", fieldSelector: "status.phase!=Running");

        Assert.Equal(6, inDefault.Items.Count);
        Assert.Equal(["app-00-0", "app-01-1"], byLabel.Items.Select(p => p.Metadata.Name));
        Assert.Empty(notRunning.Items);
    }

    [Fact]
    public async Task ListPodForAllNamespaces_UnsupportedField_ThrowsBadRequest()
    {
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: "spec.containers=x"));

        Assert.Equal(HttpStatusCode.BadRequest, e.Response.StatusCode);
        Assert.Contains("field label not supported: spec.containers", e.Response.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListPodForAllNamespaces_RawJson_ListHasTypeMetaAndItemsDoNotLikeTheRealServer()
    {
        using var http = new HttpClient { BaseAddress = _server.BaseUri };

        using var list = JsonDocument.Parse(await http.GetStringAsync("api/v1/pods"));
        using var one = JsonDocument.Parse(await http.GetStringAsync("api/v1/namespaces/default/pods/app-00-0"));

        Assert.Equal("PodList", list.RootElement.GetProperty("kind").GetString());
        Assert.Equal("v1", list.RootElement.GetProperty("apiVersion").GetString());
        var item = list.RootElement.GetProperty("items")[0];
        Assert.False(item.TryGetProperty("kind", out _));
        Assert.True(item.GetProperty("metadata").TryGetProperty("resourceVersion", out _));
        Assert.Equal("Pod", one.RootElement.GetProperty("kind").GetString());
        Assert.Equal("v1", one.RootElement.GetProperty("apiVersion").GetString());
    }

    [Fact]
    public async Task ReadNamespacedPod_Seeded_HasVolumesNodeUidAndPhase()
    {
        var seeded = _scenario.Pods[0];

        var pod = await _client.CoreV1.ReadNamespacedPodAsync(seeded.Metadata.Name, "default");

        Assert.Equal(seeded.Metadata.Uid, pod.Metadata.Uid);
        Assert.Equal(Node, pod.Spec.NodeName);
        Assert.Equal("Running", pod.Status.Phase);
        Assert.Equal("data-00", Assert.Single(pod.Spec.Volumes).PersistentVolumeClaim.ClaimName);
        Assert.Equal("/data", Assert.Single(pod.Spec.Containers[0].VolumeMounts).MountPath);
    }

    [Fact]
    public async Task ReadNamespacedPersistentVolumeClaim_Seeded_RoundTripsBinding()
    {
        var seeded = _scenario.Volumes[1].Claim;

        var claim = await _client.CoreV1.ReadNamespacedPersistentVolumeClaimAsync(seeded.Metadata.Name, "default");
        var list = await _client.CoreV1.ListNamespacedPersistentVolumeClaimAsync("default");

        Assert.Equal("PersistentVolumeClaim", claim.Kind);
        Assert.Equal(seeded.Metadata.Uid, claim.Metadata.Uid);
        Assert.Equal(seeded.Spec.VolumeName, claim.Spec.VolumeName);
        Assert.Equal("s3", claim.Spec.StorageClassName);
        Assert.Equal("Bound", claim.Status.Phase);
        Assert.Equal(3, list.Items.Count);
    }

    [Fact]
    public async Task ReadPersistentVolume_Seeded_RoundTripsCsiSource()
    {
        var seeded = _scenario.Volumes[2];

        var pv = await _client.CoreV1.ReadPersistentVolumeAsync(seeded.Volume.Metadata.Name);
        var all = await _client.CoreV1.ListPersistentVolumeAsync();

        Assert.Equal(TestObjects.DriverName, pv.Spec.Csi.Driver);
        Assert.Equal($"test-bucket/{seeded.Volume.Metadata.Name}", pv.Spec.Csi.VolumeHandle);
        Assert.Equal(seeded.Volume.Spec.Csi.VolumeAttributes, pv.Spec.Csi.VolumeAttributes);
        Assert.Equal("data-02-creds", pv.Spec.Csi.NodeStageSecretRef.Name);
        Assert.Equal("default", pv.Spec.Csi.NodeStageSecretRef.NamespaceProperty);
        Assert.Null(pv.Spec.Csi.NodePublishSecretRef);
        Assert.Equal(seeded.Claim.Metadata.Uid, pv.Spec.ClaimRef.Uid);
        Assert.Equal("data-02", pv.Spec.ClaimRef.Name);
        Assert.Null(pv.Metadata.NamespaceProperty);
        Assert.Equal(3, all.Items.Count);
    }

    [Fact]
    public async Task ReadStorageClass_Seeded_RoundTripsProvisionerAndSecretTemplates()
    {
        var sc = await _client.StorageV1.ReadStorageClassAsync("s3");
        var list = await _client.StorageV1.ListStorageClassAsync();

        Assert.Equal("storage.k8s.io/v1", sc.ApiVersion);
        Assert.Equal("StorageClass", sc.Kind);
        Assert.Equal(TestObjects.DriverName, sc.Provisioner);
        Assert.Equal("${pvc.name}-creds", sc.Parameters[TestObjects.NodeStageSecretNameParameter]);
        Assert.Equal("${pvc.namespace}", sc.Parameters[TestObjects.NodeStageSecretNamespaceParameter]);
        Assert.Equal("http://127.0.0.1:9000", sc.Parameters["endpoint"]);
        Assert.Equal("us-east-1", sc.Parameters["region"]);
        Assert.Equal("test-bucket", sc.Parameters["bucket"]);
        Assert.Equal("StorageClassList", list.Kind);
        Assert.Single(list.Items);
    }

    [Fact]
    public async Task ReadNamespacedSecret_BinaryData_BytesExact()
    {
        byte[] awkward = [0x00, 0xFF, 0x80, 0x0A, (byte)'=', (byte)'/', 0x7F];
        var secret = TestObjects.Secret("default", "binary", "AKIA", "s");
        secret.Data[TestObjects.SecretAccessKeyKey] = awkward;
        _server.Add(secret);

        var read = await _client.CoreV1.ReadNamespacedSecretAsync("binary", "default");
        var seeded = await _client.CoreV1.ReadNamespacedSecretAsync("data-00-creds", "default");

        Assert.Equal(awkward, read.Data[TestObjects.SecretAccessKeyKey]);
        Assert.Equal("AKIA"u8.ToArray(), read.Data[TestObjects.AccessKeyIdKey]);
        Assert.Equal("Opaque", read.Type);
        Assert.Equal(_scenario.Volumes[0].Secret.Data[TestObjects.AccessKeyIdKey], seeded.Data[TestObjects.AccessKeyIdKey]);
        Assert.Equal(_scenario.Volumes[0].Secret.Data[TestObjects.SecretAccessKeyKey], seeded.Data[TestObjects.SecretAccessKeyKey]);
    }

    [Fact]
    public async Task ReadNamespacedSecret_Removed_ThrowsNotFoundWithStatus()
    {
        Assert.True(_server.Remove<V1Secret>("data-01-creds", "default"));

        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReadNamespacedSecretAsync("data-01-creds", "default"));

        Assert.Equal(HttpStatusCode.NotFound, e.Response.StatusCode);
        var status = KubernetesJson.Deserialize<V1Status>(e.Response.Content);
        Assert.Equal("Status", status.Kind);
        Assert.Equal("Failure", status.Status);
        Assert.Equal("NotFound", status.Reason);
        Assert.Equal(404, status.Code);
        Assert.Equal("secrets \"data-01-creds\" not found", status.Message);
        Assert.Equal("data-01-creds", status.Details.Name);
        Assert.Equal("secrets", status.Details.Kind);
    }

    [Fact]
    public async Task ReadStorageClass_Missing_ThrowsNotFoundNamingTheGroup()
    {
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.StorageV1.ReadStorageClassAsync("nope"));

        Assert.Equal(HttpStatusCode.NotFound, e.Response.StatusCode);
        var status = KubernetesJson.Deserialize<V1Status>(e.Response.Content);
        Assert.Equal("storageclasses.storage.k8s.io \"nope\" not found", status.Message);
        Assert.Equal("storage.k8s.io", status.Details.Group);
    }

    [Fact]
    public async Task Get_UnknownPath_ReturnsNotFoundStatus()
    {
        using var http = new HttpClient { BaseAddress = _server.BaseUri };

        using var response = await http.GetAsync("apis/example.com/v1/widgets");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var status = KubernetesJson.Deserialize<V1Status>(await response.Content.ReadAsStringAsync());
        Assert.Equal("NotFound", status.Reason);
    }

    [Fact]
    public async Task CreateNamespacedEvent_CoreV1_IsRecorded()
    {
        var pod = _scenario.Pods[1];
        var body = new Corev1Event
        {
            Metadata = new V1ObjectMeta { GenerateName = $"{pod.Metadata.Name}." },
            InvolvedObject = new V1ObjectReference { ApiVersion = "v1", Kind = "Pod", Name = pod.Metadata.Name, NamespaceProperty = "default", Uid = pod.Metadata.Uid },
            Reason = "VolumeRecovered",
            Message = "volume data-00 is mounted again",
            Type = "Normal",
            Source = new V1EventSource { Component = TestObjects.DriverName, Host = Node },
            FirstTimestamp = DateTime.UtcNow,
            LastTimestamp = DateTime.UtcNow,
            Count = 1,
        };

        var created = await _client.CoreV1.CreateNamespacedEventAsync(body, "default");

        Assert.StartsWith($"{pod.Metadata.Name}.", created.Metadata.Name, StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(created.Metadata.Uid));
        var recorded = Assert.Single(_server.Events);
        Assert.Equal("v1", recorded.ApiVersion);
        Assert.Equal(pod.Metadata.Uid, recorded.InvolvedObject.Uid);
        Assert.Equal("VolumeRecovered", recorded.Reason);
        Assert.Equal("volume data-00 is mounted again", recorded.Message);
        Assert.Equal("Normal", recorded.Type);
        var listed = await _client.CoreV1.ListNamespacedEventAsync("default", fieldSelector: $"involvedObject.uid={pod.Metadata.Uid}");
        Assert.Single(listed.Items);
    }

    [Fact]
    public async Task CreateNamespacedEvent_EventsV1_IsRecordedInCoreShape()
    {
        var pod = _scenario.Pods[2];
        var body = new Eventsv1Event
        {
            Metadata = new V1ObjectMeta { Name = $"{pod.Metadata.Name}.17a0" },
            Regarding = new V1ObjectReference { ApiVersion = "v1", Kind = "Pod", Name = pod.Metadata.Name, NamespaceProperty = "default", Uid = pod.Metadata.Uid },
            Reason = "VolumeRepairFailed",
            Note = "container view of data-01 could not be repaired",
            Type = "Warning",
            Action = "Repair",
            EventTime = DateTime.UtcNow,
            ReportingController = $"{TestObjects.DriverName}/supervisor",
            ReportingInstance = Node,
        };

        await _client.EventsV1.CreateNamespacedEventAsync(body, "default");

        var recorded = await _server.WaitForEventAsync(e => e.Reason == "VolumeRepairFailed", TimeSpan.FromSeconds(5));
        Assert.Equal("events.k8s.io/v1", recorded.ApiVersion);
        Assert.Equal(pod.Metadata.Uid, recorded.InvolvedObject.Uid);
        Assert.Equal("container view of data-01 could not be repaired", recorded.Message);
        Assert.Equal("Warning", recorded.Type);
        Assert.Equal($"{TestObjects.DriverName}/supervisor", recorded.ReportingComponent);
        Assert.Contains(_server.Requests, r => r.Method == "POST" && r.Path == "/apis/events.k8s.io/v1/namespaces/default/events");
    }

    [Fact]
    public async Task CreateNamespacedEvent_EventsV1WithoutRequiredFields_ThrowsUnprocessableEntity()
    {
        var body = new Eventsv1Event
        {
            Metadata = new V1ObjectMeta { Name = "incomplete" },
            Regarding = new V1ObjectReference { Kind = "Pod", Name = "app-00-0", NamespaceProperty = "default" },
            Reason = "VolumeRecovered",
            Type = "Normal",
        };

        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.EventsV1.CreateNamespacedEventAsync(body, "default"));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Response.StatusCode);
        var status = KubernetesJson.Deserialize<V1Status>(e.Response.Content);
        Assert.Equal("Invalid", status.Reason);
        Assert.Contains(status.Details.Causes, c => c.Field == "eventTime");
        Assert.Empty(_server.Events);
    }

    [Fact]
    public async Task CreateNamespacedEvent_SameNameTwice_ThrowsConflict()
    {
        var body = new Corev1Event
        {
            Metadata = new V1ObjectMeta { Name = "fixed-name" },
            InvolvedObject = new V1ObjectReference { Kind = "Pod", Name = "app-00-0", NamespaceProperty = "default" },
            Reason = "VolumeRecovered",
            Type = "Normal",
        };
        await _client.CoreV1.CreateNamespacedEventAsync(body, "default");

        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.CreateNamespacedEventAsync(body, "default"));

        Assert.Equal(HttpStatusCode.Conflict, e.Response.StatusCode);
        Assert.Single(_server.Events);
    }

    [Fact]
    public async Task SetModeAsync_Forbidden_EveryRequestGets403()
    {
        await _server.SetModeAsync(ApiServerMode.Forbidden);

        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={Node}"));

        Assert.Equal(HttpStatusCode.Forbidden, e.Response.StatusCode);
        var status = KubernetesJson.Deserialize<V1Status>(e.Response.Content);
        Assert.Equal("Forbidden", status.Reason);
        Assert.Equal(403, status.Code);
        Assert.Contains("cannot list resource \"pods\" in API group \"\" at the cluster scope", status.Message, StringComparison.Ordinal);
        await _server.SetModeAsync(ApiServerMode.Normal);
        Assert.Equal(6, (await _client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={Node}")).Items.Count);
    }

    [Fact]
    public async Task ForbidResource_Secrets_OnlySecretsGet403()
    {
        _server.ForbidResource("secrets");

        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReadNamespacedSecretAsync("data-00-creds", "default"));
        var pv = await _client.CoreV1.ReadPersistentVolumeAsync(_scenario.Volumes[0].Volume.Metadata.Name);

        Assert.Equal(HttpStatusCode.Forbidden, e.Response.StatusCode);
        Assert.StartsWith("secrets \"data-00-creds\" is forbidden", KubernetesJson.Deserialize<V1Status>(e.Response.Content).Message, StringComparison.Ordinal);
        Assert.NotNull(pv);
        _server.AllowResource("secrets");
        Assert.NotNull(await _client.CoreV1.ReadNamespacedSecretAsync("data-00-creds", "default"));
    }

    [Fact]
    public async Task ForbidResource_CreateEventsOnly_ReadsStillWork()
    {
        _server.ForbidResource("events", "create");
        var body = new Corev1Event
        {
            Metadata = new V1ObjectMeta { GenerateName = "x." },
            InvolvedObject = new V1ObjectReference { Kind = "Pod", Name = "app-00-0", NamespaceProperty = "default" },
            Reason = "VolumeRecovered",
            Type = "Normal",
        };

        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.CreateNamespacedEventAsync(body, "default"));
        var events = await _client.CoreV1.ListNamespacedEventAsync("default");

        Assert.Equal(HttpStatusCode.Forbidden, e.Response.StatusCode);
        Assert.Empty(events.Items);
    }

    [Fact]
    public async Task SetModeAsync_Down_ThrowsHttpRequestExceptionAndRecoversOnSamePort()
    {
        var port = _server.Port;
        Assert.NotEmpty((await _client.CoreV1.ListPodForAllNamespacesAsync()).Items);

        await _server.SetModeAsync(ApiServerMode.Down);

        await Assert.ThrowsAsync<HttpRequestException>(() => _client.CoreV1.ListPodForAllNamespacesAsync());
        using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            var refused = await Assert.ThrowsAsync<SocketException>(async () => await socket.ConnectAsync(IPAddress.Loopback, port));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        }

        await _server.SetModeAsync(ApiServerMode.Normal);

        Assert.Equal(port, _server.Port);
        Assert.Equal(6, (await _client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={Node}")).Items.Count);
    }

    [Fact]
    public async Task SetModeAsync_DownDuringSlowRequest_DropsTheRequest()
    {
        await _server.SetModeAsync(ApiServerMode.Slow(TimeSpan.FromSeconds(30)));
        var pending = _client.CoreV1.ListPodForAllNamespacesAsync();
        await _server.WaitForRequestAsync(r => r.Path == "/api/v1/pods", TimeSpan.FromSeconds(5));

        await _server.SetModeAsync(ApiServerMode.Down);

        await Assert.ThrowsAsync<HttpRequestException>(() => pending);
    }

    [Fact]
    public async Task SetModeAsync_Slow_DelaysEveryResponse()
    {
        // A delay long enough that a busy machine's own slowness cannot pass for it, nor hide its absence.
        var delay = TimeSpan.FromSeconds(3);
        await _server.SetModeAsync(ApiServerMode.Slow(delay));
        var watch = Stopwatch.StartNew();

        var pv = await _client.CoreV1.ReadPersistentVolumeAsync(_scenario.Volumes[0].Volume.Metadata.Name);

        Assert.True(watch.Elapsed >= delay - TimeSpan.FromMilliseconds(50), $"answered after {watch.Elapsed}");
        Assert.NotNull(pv);
        await _server.SetModeAsync(ApiServerMode.Normal);
        watch.Restart();
        await _client.CoreV1.ReadPersistentVolumeAsync(_scenario.Volumes[0].Volume.Metadata.Name);
        Assert.True(watch.Elapsed < delay, $"answered after {watch.Elapsed}");
    }

    [Fact]
    public async Task SetModeAsync_Failing503_ThrowsServiceUnavailable()
    {
        await _server.SetModeAsync(ApiServerMode.Failing(HttpStatusCode.ServiceUnavailable));

        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReadNamespacedPodAsync("app-00-0", "default"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, e.Response.StatusCode);
        Assert.Equal("ServiceUnavailable", KubernetesJson.Deserialize<V1Status>(e.Response.Content).Reason);
    }

    [Fact]
    public async Task WriteKubeconfig_BearerToken_ClientFromFileIsAcceptedAndOthersAreNot()
    {
        await using var secured = await TestApiServer.StartAsync(new TestApiServerOptions { BearerToken = "s3cr3t-token" });
        secured.UpsertAll(_scenario.Objects);
        var path = Path.Combine(Path.GetTempPath(), $"kubeconfig-{Guid.NewGuid():N}");
        try
        {
            secured.WriteKubeconfig(path);
            using var fromFile = new k8s.Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(path));
            using var anonymous = new k8s.Kubernetes(new KubernetesClientConfiguration { Host = secured.BaseUri.ToString() });

            var pods = await fromFile.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: $"spec.nodeName={Node}");
            var e = await Assert.ThrowsAsync<HttpOperationException>(() => anonymous.CoreV1.ListPodForAllNamespacesAsync());

            Assert.Equal(6, pods.Items.Count);
            Assert.Equal(HttpStatusCode.Unauthorized, e.Response.StatusCode);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task WriteKubeconfig_NoAuth_BuildConfigFromConfigFileWorks()
    {
        var path = Path.Combine(Path.GetTempPath(), $"kubeconfig-{Guid.NewGuid():N}");
        try
        {
            _server.WriteKubeconfig(path);
            var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(path);
            using var client = new k8s.Kubernetes(config);

            var sc = await client.StorageV1.ReadStorageClassAsync("s3");

            Assert.Equal(_server.BaseUri.ToString().TrimEnd('/'), config.Host.TrimEnd('/'));
            Assert.Equal("default", config.Namespace);
            Assert.Equal(TestObjects.DriverName, sc.Provisioner);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task GetCode_Version_ReturnsVersionInfo()
    {
        var version = await _client.Version.GetCodeAsync();

        Assert.Equal("1", version.Major);
        Assert.Equal("v1.33.1", version.GitVersion);
    }

    [Fact]
    public async Task Upsert_ExistingPod_KeepsUidAndBumpsResourceVersion()
    {
        var before = await _client.CoreV1.ReadNamespacedPodAsync("app-00-0", "default");
        var changed = _server.Get<V1Pod>("app-00-0", "default")!;
        changed.Metadata.Uid = null;
        changed.Status.Phase = "Succeeded";

        _server.Upsert(changed);
        var after = await _client.CoreV1.ReadNamespacedPodAsync("app-00-0", "default");

        Assert.Equal(before.Metadata.Uid, after.Metadata.Uid);
        Assert.NotEqual(before.Metadata.ResourceVersion, after.Metadata.ResourceVersion);
        Assert.Equal("Succeeded", after.Status.Phase);
        Assert.Throws<InvalidOperationException>(() => _server.Add(changed));
    }
}

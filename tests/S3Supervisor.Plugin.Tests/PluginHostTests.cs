using Csi.V1;
using Grpc.Core;
using Grpc.Health.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using S3Supervisor.Common;
using S3Supervisor.Plugin.Csi;
using S3Supervisor.Plugin.Hosting;
using S3Supervisor.Plugin.Tests.Fakes;

namespace S3Supervisor.Plugin.Tests;

/// <summary>The plugin as it runs: Kestrel on a unix socket, the interceptor, the services, the health service.</summary>
public sealed class PluginHostTests : IAsyncLifetime
{
    private FakeSupervisorServer _supervisor = null!;
    private readonly List<WebApplication> _apps = [];
    private readonly CapturingLoggerProvider _logs = new();

    public async Task InitializeAsync() => _supervisor = await FakeSupervisorServer.StartAsync();

    public async Task DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
        await _supervisor.DisposeAsync();
    }

    private async Task<Grpc.Net.Client.GrpcChannel> StartPlugin(string mode = PluginModes.All, string? socket = null)
    {
        socket ??= Path.Combine(_supervisor.Directory, "csi", "csi.sock");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(_logs);
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Csi:Endpoint"] = $"unix://{socket}",
            ["Csi:Mode"] = mode,
            ["Csi:NodeId"] = "node-a",
            ["Csi:SupervisorSocket"] = _supervisor.SocketPath,
        });
        builder.Services.AddCsiPlugin(builder.Configuration);
        var app = builder.Build();
        app.MapCsiPlugin();
        _apps.Add(app);
        await app.StartAsync();
        return UnixSocketChannel.Create(socket);
    }

    [Fact]
    public async Task Start_StaleSocketFile_ReplacedAndServing()
    {
        var socket = Path.Combine(_supervisor.Directory, "stale", "csi.sock");
        Directory.CreateDirectory(Path.GetDirectoryName(socket)!);
        await File.WriteAllTextAsync(socket, "left over by a killed plugin");

        using var channel = await StartPlugin(socket: socket);
        var info = await new Identity.IdentityClient(channel).GetPluginInfoAsync(new GetPluginInfoRequest());

        Assert.Equal(CsiOptions.DefaultDriverName, info.Name);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(socket));
    }

    [Fact]
    public async Task Probe_OverSocket_ReadyWithSupervisor()
    {
        using var channel = await StartPlugin();
        var probe = await new Identity.IdentityClient(channel).ProbeAsync(new ProbeRequest());
        Assert.True(probe.Ready);
    }

    [Fact]
    public async Task HealthCheck_Running_Serving()
    {
        using var channel = await StartPlugin();
        var health = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    [Fact]
    public async Task NodeStageVolume_OverSocket_LogsRequestWithoutSecrets()
    {
        using var channel = await StartPlugin();
        await new Node.NodeClient(channel).NodeStageVolumeAsync(TestData.Stage());

        Assert.Contains(TestData.StagingPath, _logs.All);
        Assert.Contains("NodeStageVolume", _logs.All);
        Assert.DoesNotContain(TestData.SecretKey, _logs.All);
        Assert.DoesNotContain(TestData.AccessKey, _logs.All);
    }

    [Fact]
    public async Task NodeStageVolume_InvalidOverSocket_InvalidArgumentLoggedWithoutSecrets()
    {
        using var channel = await StartPlugin();
        var request = TestData.Stage();
        request.VolumeCapability = null;
        var e = await Assert.ThrowsAsync<RpcException>(async () => await new Node.NodeClient(channel).NodeStageVolumeAsync(request));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("InvalidArgument", _logs.All);
        Assert.DoesNotContain(TestData.SecretKey, _logs.All);
    }

    [Fact]
    public async Task NodeStageVolume_SupervisorHandlerCrashes_UnknownPassedThrough()
    {
        _supervisor.Fake.Before = _ => throw new InvalidOperationException("boom");
        using var channel = await StartPlugin();
        var e = await Assert.ThrowsAsync<RpcException>(async () => await new Node.NodeClient(channel).NodeStageVolumeAsync(TestData.Stage()));
        // The fake supervisor's own failure arrives as an RpcException (Unknown) and passes through.
        Assert.Equal(StatusCode.Unknown, e.StatusCode);
    }

    [Fact]
    public async Task ControllerCall_NodeMode_Unimplemented()
    {
        using var channel = await StartPlugin(PluginModes.Node);
        var e = await Assert.ThrowsAsync<RpcException>(async () => await new Controller.ControllerClient(channel).CreateVolumeAsync(TestData.Create()));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        var caps = await new Identity.IdentityClient(channel).GetPluginCapabilitiesAsync(new GetPluginCapabilitiesRequest());
        Assert.Empty(caps.Capabilities);
    }

    [Fact]
    public async Task NodeCall_ControllerMode_Unimplemented()
    {
        using var channel = await StartPlugin(PluginModes.Controller);
        var e = await Assert.ThrowsAsync<RpcException>(async () => await new Node.NodeClient(channel).NodeGetInfoAsync(new NodeGetInfoRequest()));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
    }

    [Fact]
    public async Task UnsupportedControllerRpc_Unimplemented()
    {
        using var channel = await StartPlugin();
        var e = await Assert.ThrowsAsync<RpcException>(async () => await new Controller.ControllerClient(channel).ListVolumesAsync(new ListVolumesRequest()));
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
    }

    [Fact]
    public async Task Restart_NewInstanceOnSameSocket_UnpublishesWhatOldOnePublished()
    {
        var socket = Path.Combine(_supervisor.Directory, "restart", "csi.sock");
        using (var first = await StartPlugin(socket: socket))
        {
            var node = new Node.NodeClient(first);
            await node.NodeStageVolumeAsync(TestData.Stage());
            await node.NodePublishVolumeAsync(TestData.Publish());
        }
        // The old instance goes away without cleaning up (its socket file stays).
        var old = _apps[0];
        _apps.Clear();
        await old.DisposeAsync();

        using var second = await StartPlugin(socket: socket);
        var restarted = new Node.NodeClient(second);
        await restarted.NodeUnpublishVolumeAsync(new NodeUnpublishVolumeRequest { VolumeId = TestData.VolumeId, TargetPath = TestData.TargetPath });
        await restarted.NodeUnstageVolumeAsync(new NodeUnstageVolumeRequest { VolumeId = TestData.VolumeId, StagingTargetPath = TestData.StagingPath });
        Assert.Empty(_supervisor.Fake.Volumes);
    }
    public static TheoryData<string> MalformedCases() => new(S3Supervisor.TestKit.Supervisor.RawGrpc.Malformed.Select(m => m.Name));

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public async Task NodeStageVolume_MalformedMessage_InvalidArgumentNamingRequestAndStillServes(string name)
    {
        var bytes = S3Supervisor.TestKit.Supervisor.RawGrpc.Malformed.Single(m => m.Name == name).Bytes;
        using var channel = await StartPlugin();

        var e = await Assert.ThrowsAsync<RpcException>(() => S3Supervisor.TestKit.Supervisor.RawGrpc.CallAsync(channel, "/csi.v1.Node/NodeStageVolume", bytes));

        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal("request: is not a valid csi.v1.NodeStageVolumeRequest message", e.Status.Detail);
        Assert.Empty(_supervisor.Fake.Requests);
        Assert.True((await new Identity.IdentityClient(channel).ProbeAsync(new ProbeRequest())).Ready);
        await new Node.NodeClient(channel).NodeStageVolumeAsync(TestData.Stage());
    }

    [Fact]
    public async Task NodeStageVolume_ValidMessageAsRawBytes_PassesThroughUnchanged()
    {
        using var channel = await StartPlugin();
        await S3Supervisor.TestKit.Supervisor.RawGrpc.CallAsync(channel, "/csi.v1.Node/NodeStageVolume", Google.Protobuf.MessageExtensions.ToByteArray(TestData.Stage()));
        Assert.Equal(TestData.StagingPath, _supervisor.Fake.OnlyRequest<S3Supervisor.Api.V1.StageVolumeRequest>().StagingPath);
    }
}

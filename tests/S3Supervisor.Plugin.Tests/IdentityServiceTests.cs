using Csi.V1;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using S3Supervisor.Plugin.Csi;
using S3Supervisor.Plugin.Hosting;
using S3Supervisor.Plugin.Tests.Fakes;
using ServiceType = Csi.V1.PluginCapability.Types.Service.Types.Type;

namespace S3Supervisor.Plugin.Tests;

public sealed class IdentityServiceTests : IAsyncLifetime
{
    private FakeSupervisorServer _server = null!;
    private readonly TestCallContext _context = new();

    public async Task InitializeAsync() => _server = await FakeSupervisorServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private IdentityService Identity(string mode = PluginModes.All, SupervisorCalls? calls = null) =>
        new(TestData.Options(mode, socket: _server.SocketPath), calls ?? _server.Calls, new FakeTimeProvider(DateTimeOffset.UtcNow), NullLogger<IdentityService>.Instance);

    [Fact]
    public async Task GetPluginInfo_Default_ReturnsDriverNameAndBuildVersion()
    {
        var info = await Identity().GetPluginInfo(new GetPluginInfoRequest(), _context);
        Assert.Equal(CsiOptions.DefaultDriverName, info.Name);
        Assert.StartsWith("0.1.0", info.VendorVersion);
    }

    [Fact]
    public async Task GetPluginInfo_ConfiguredName_ReturnsIt()
    {
        var options = Microsoft.Extensions.Options.Options.Create(new CsiOptions { DriverName = "s3.example.com", NodeId = "n" });
        var identity = new IdentityService(options, _server.Calls, TimeProvider.System, NullLogger<IdentityService>.Instance);
        Assert.Equal("s3.example.com", (await identity.GetPluginInfo(new GetPluginInfoRequest(), _context)).Name);
    }

    [Theory]
    [InlineData(PluginModes.All, true)]
    [InlineData(PluginModes.Controller, true)]
    [InlineData(PluginModes.Node, false)]
    public async Task GetPluginCapabilities_Mode_ReportsControllerServiceWhenServed(string mode, bool controller)
    {
        var caps = await Identity(mode).GetPluginCapabilities(new GetPluginCapabilitiesRequest(), _context);
        Assert.Equal(controller, caps.Capabilities.Any(c => c.Service?.Type == ServiceType.ControllerService));
    }

    [Fact]
    public async Task Probe_SupervisorAnswers_Ready()
    {
        // The longest timeout allowed: this is about the answer, not its speed. With the default 2 s the
        // first call of a cold test process (the gRPC stack JIT-compiled, its connection made) missed its
        // deadline on a loaded 2-core machine; the timeout itself is Probe_SupervisorHangs_NotReadyWithinTimeout's.
        var options = Microsoft.Extensions.Options.Options.Create(new CsiOptions { NodeId = "n", SupervisorSocket = _server.SocketPath, ProbeTimeout = TimeSpan.FromMinutes(1) });
        var identity = new IdentityService(options, _server.Calls, TimeProvider.System, NullLogger<IdentityService>.Instance);
        var probe = await identity.Probe(new ProbeRequest(), _context);
        Assert.True(probe.Ready);
        Assert.Single(_server.Fake.Requests.OfType<S3Supervisor.Api.V1.ListVolumesRequest>());
    }

    [Fact]
    public async Task Probe_SupervisorUnreachable_NotReady()
    {
        var socket = Path.Combine(_server.Directory, "gone.sock");
        var calls = new SupervisorCalls(new S3Supervisor.Api.V1.Supervisor.SupervisorClient(S3Supervisor.Common.UnixSocketChannel.Create(socket)), socket);
        var probe = await Identity(calls: calls).Probe(new ProbeRequest(), _context);
        Assert.False(probe.Ready);
    }

    [Fact]
    public async Task Probe_SupervisorHangs_NotReadyWithinTimeout()
    {
        var release = new TaskCompletionSource();
        _server.Fake.Before = _ => release.Task;
        var options = Microsoft.Extensions.Options.Options.Create(new CsiOptions { NodeId = "n", ProbeTimeout = TimeSpan.FromMilliseconds(200) });
        var identity = new IdentityService(options, _server.Calls, TimeProvider.System, NullLogger<IdentityService>.Instance);
        var started = DateTime.UtcNow;
        var probe = await identity.Probe(new ProbeRequest(), _context);
        release.SetResult();
        Assert.False(probe.Ready);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Probe_ControllerOnly_ReadyWithoutAskingSupervisor()
    {
        var probe = await Identity(PluginModes.Controller).Probe(new ProbeRequest(), _context);
        Assert.True(probe.Ready);
        Assert.Empty(_server.Fake.Requests);
    }
}

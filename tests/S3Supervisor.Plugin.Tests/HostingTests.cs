using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using S3Supervisor.Plugin.Csi;
using S3Supervisor.Plugin.Hosting;

namespace S3Supervisor.Plugin.Tests;

public sealed class CsiOptionsTests
{
    private static CsiOptions Resolve(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        using var provider = new ServiceCollection().AddLogging().AddCsiPlugin(configuration).BuildServiceProvider();
        return provider.GetRequiredService<IOptions<CsiOptions>>().Value;
    }

    private static OptionsValidationException Invalid(Dictionary<string, string?> settings) =>
        Assert.Throws<OptionsValidationException>(() => Resolve(settings));

    [Fact]
    public void Resolve_OnlyNodeId_Defaults()
    {
        var o = Resolve(new() { ["Csi:NodeId"] = "node-a" });
        Assert.Equal("/csi/csi.sock", o.SocketPath);
        Assert.Equal(CsiOptions.DefaultDriverName, o.DriverName);
        Assert.Equal(CsiOptions.DefaultSupervisorSocket, o.SupervisorSocket);
        Assert.True(o.ServesNode);
        Assert.True(o.ServesController);
    }

    [Theory]
    [InlineData("KUBE_NODE_NAME")]
    [InlineData("NODE_ID")]
    public void Resolve_NodeIdFromEnvironmentName_Used(string variable)
    {
        Assert.Equal("node-b", Resolve(new() { [variable] = "node-b" }).NodeId);
    }

    [Fact]
    public void Resolve_ExplicitNodeId_WinsOverEnvironment() =>
        Assert.Equal("explicit", Resolve(new() { ["Csi:NodeId"] = "explicit", ["KUBE_NODE_NAME"] = "env" }).NodeId);

    [Theory]
    [InlineData("unix:///var/lib/csi/csi.sock", "/var/lib/csi/csi.sock")]
    [InlineData("/var/lib/csi/csi.sock", "/var/lib/csi/csi.sock")]
    [InlineData("UNIX:///x.sock", "/x.sock")]
    public void Resolve_Endpoint_SocketPath(string endpoint, string path) =>
        Assert.Equal(path, Resolve(new() { ["Csi:NodeId"] = "n", ["Csi:Endpoint"] = endpoint }).SocketPath);

    [Theory]
    [InlineData("tcp://127.0.0.1:10000")]
    [InlineData("unix://relative.sock")]
    [InlineData("csi.sock")]
    [InlineData("/dir/")]
    public void Resolve_BadEndpoint_FailsNamingSetting(string endpoint)
    {
        var e = Invalid(new() { ["Csi:NodeId"] = "n", ["Csi:Endpoint"] = endpoint });
        Assert.Contains("Csi:Endpoint", e.Message);
    }

    [Fact]
    public void Resolve_NodeModeWithoutNodeId_FailsNamingSetting()
    {
        var e = Invalid(new() { ["Csi:Mode"] = "node" });
        Assert.Contains("Csi:NodeId", e.Message);
    }

    [Fact]
    public void Resolve_ControllerModeWithoutNodeId_Valid()
    {
        var o = Resolve(new() { ["Csi:Mode"] = "controller" });
        Assert.False(o.ServesNode);
        Assert.True(o.ServesController);
    }

    [Fact]
    public void Resolve_BadMode_FailsNamingSetting()
    {
        var e = Invalid(new() { ["Csi:Mode"] = "both", ["Csi:NodeId"] = "n" });
        Assert.Contains("Csi:Mode", e.Message);
    }

    [Theory]
    [InlineData("-starts-with-dash")]
    [InlineData("has_underscore")]
    [InlineData("")]
    public void Resolve_BadDriverName_FailsNamingSetting(string name)
    {
        var e = Invalid(new() { ["Csi:NodeId"] = "n", ["Csi:DriverName"] = name });
        Assert.Contains("Csi:DriverName", e.Message);
    }

    [Fact]
    public void Resolve_RelativeSupervisorSocket_FailsNamingSetting()
    {
        var e = Invalid(new() { ["Csi:NodeId"] = "n", ["Csi:SupervisorSocket"] = "supervisor.sock" });
        Assert.Contains("Csi:SupervisorSocket", e.Message);
    }

    [Fact]
    public void Resolve_SeveralProblems_ReportsAll()
    {
        var e = Invalid(new() { ["Csi:Mode"] = "node", ["Csi:Endpoint"] = "tcp://x", ["Csi:DriverName"] = "_" });
        Assert.Equal(3, e.Failures.Count());
    }
}

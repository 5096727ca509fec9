using Csi.V1;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using S3Supervisor.Plugin.Csi;
using S3Supervisor.Plugin.Tests.Fakes;

namespace S3Supervisor.Plugin.Tests;

public sealed class CsiLoggingInterceptorTests
{
    private readonly CapturingLoggerProvider _logs = new();
    private readonly CsiLoggingInterceptor _interceptor;

    public CsiLoggingInterceptorTests()
    {
        using var factory = LoggerFactory.Create(b => b.AddProvider(_logs).SetMinimumLevel(LogLevel.Debug));
        _interceptor = new CsiLoggingInterceptor(factory.CreateLogger<CsiLoggingInterceptor>());
    }

    [Fact]
    public async Task UnaryServerHandler_UnexpectedException_InternalWithoutItsMessage()
    {
        var e = await TestData.Fails(StatusCode.Internal, () => _interceptor.UnaryServerHandler<NodeStageVolumeRequest, NodeStageVolumeResponse>(
            TestData.Stage(), new TestCallContext("/csi.v1.Node/NodeStageVolume"), (_, _) => throw new InvalidOperationException("internal detail 42")));
        Assert.DoesNotContain("internal detail 42", e.Status.Detail);
        Assert.Contains("internal detail 42", _logs.All);
    }

    [Fact]
    public async Task UnaryServerHandler_RpcException_PassedThroughAndLogged()
    {
        await TestData.Fails(StatusCode.NotFound, () => _interceptor.UnaryServerHandler<NodeStageVolumeRequest, NodeStageVolumeResponse>(
            TestData.Stage(), new TestCallContext("/csi.v1.Node/NodeStageVolume"), (_, _) => throw new RpcException(new Status(StatusCode.NotFound, "gone"))));
        Assert.Contains("NotFound", _logs.All);
        Assert.DoesNotContain(TestData.SecretKey, _logs.All);
    }

    [Fact]
    public async Task UnaryServerHandler_CallerCancelled_Cancelled()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await TestData.Fails(StatusCode.Cancelled, () => _interceptor.UnaryServerHandler<NodeStageVolumeRequest, NodeStageVolumeResponse>(
            TestData.Stage(), new TestCallContext("/csi.v1.Node/NodeStageVolume", cancellationToken: cts.Token), (_, c) => throw new OperationCanceledException(c.CancellationToken)));
    }

    [Fact]
    public async Task UnaryServerHandler_Success_RequestLoggedWithoutSecrets()
    {
        await _interceptor.UnaryServerHandler<NodeStageVolumeRequest, NodeStageVolumeResponse>(
            TestData.Stage(), new TestCallContext("/csi.v1.Node/NodeStageVolume"), (_, _) => Task.FromResult(new NodeStageVolumeResponse()));
        Assert.Contains(TestData.StagingPath, _logs.All);
        Assert.Contains("succeeded", _logs.All);
        Assert.DoesNotContain(TestData.SecretKey, _logs.All);
        Assert.DoesNotContain(TestData.AccessKey, _logs.All);
    }
    [Fact]
    public async Task UnaryServerHandler_UnexpectedException_ReferenceInDetailAndLog()
    {
        var e = await TestData.Fails(StatusCode.Internal, () => _interceptor.UnaryServerHandler<NodeStageVolumeRequest, NodeStageVolumeResponse>(
            TestData.Stage(), new TestCallContext("/csi.v1.Node/NodeStageVolume"), (_, _) => throw new InvalidOperationException("boom")));
        var match = System.Text.RegularExpressions.Regex.Match(e.Status.Detail, "^internal error \\(ref ([0-9a-f]{8})\\); see the plugin log$");
        Assert.True(match.Success, e.Status.Detail);
        Assert.Contains($"failed unexpectedly (ref {match.Groups[1].Value})", _logs.All);
    }

    [Fact]
    public async Task UnaryServerHandler_DetailWithUrlUserInfo_RedactedInDetailAndLog()
    {
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _interceptor.UnaryServerHandler<NodeStageVolumeRequest, NodeStageVolumeResponse>(
            TestData.Stage(), new TestCallContext("/csi.v1.Node/NodeStageVolume"),
            (_, _) => throw new RpcException(new Status(StatusCode.InvalidArgument, "source.endpoint: http://AK:TopSecret1@127.0.0.1:1 is refused"))));
        Assert.Equal("source.endpoint: http://***@127.0.0.1:1 is refused", e.Status.Detail);
        Assert.DoesNotContain("TopSecret1", _logs.All);
        Assert.Contains("http://***@127.0.0.1:1", _logs.All);
    }

    [Fact]
    public async Task UnaryServerHandler_RequestWithUserInfoEndpoint_RedactedInLog()
    {
        var request = TestData.Stage();
        request.VolumeContext["endpoint"] = "HTTP://AK:TopSecret2@127.0.0.1:1";
        await _interceptor.UnaryServerHandler<NodeStageVolumeRequest, NodeStageVolumeResponse>(
            request, new TestCallContext("/csi.v1.Node/NodeStageVolume"), (_, _) => Task.FromResult(new NodeStageVolumeResponse()));
        Assert.DoesNotContain("TopSecret2", _logs.All);
        Assert.Contains("HTTP://***@127.0.0.1:1", _logs.All);
    }
}

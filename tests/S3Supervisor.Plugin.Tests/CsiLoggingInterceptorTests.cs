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
}

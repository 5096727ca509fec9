using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;
using S3Supervisor.Plugin.Csi;

namespace S3Supervisor.Plugin.Tests.Fakes;

/// <summary>A <see cref="FakeSupervisor"/> served over gRPC on a temporary unix socket, as the real one is.</summary>
public sealed class FakeSupervisorServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Grpc.Net.Client.GrpcChannel _channel;

    private FakeSupervisorServer(WebApplication app, string directory, FakeSupervisor fake)
    {
        _app = app;
        Directory = directory;
        Fake = fake;
        _channel = UnixSocketChannel.Create(SocketPath);
        Calls = new SupervisorCalls(new Supervisor.SupervisorClient(_channel), SocketPath);
    }

    public string Directory { get; }

    public string SocketPath => Path.Combine(Directory, "supervisor.sock");

    public FakeSupervisor Fake { get; }

    /// <summary>What the plugin's services use to reach this server.</summary>
    public SupervisorCalls Calls { get; }

    public static async Task<FakeSupervisorServer> StartAsync()
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("s3csi-fake-").FullName;
        var fake = new FakeSupervisor();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(Path.Combine(directory, "supervisor.sock"), l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(fake);
        var app = builder.Build();
        app.MapGrpcService<FakeSupervisor>();
        await app.StartAsync();
        return new FakeSupervisorServer(app, directory, fake);
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}

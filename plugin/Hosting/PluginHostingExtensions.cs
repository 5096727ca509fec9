using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;
using S3Supervisor.Plugin.Csi;
using S3Supervisor.Plugin.Storage;

namespace S3Supervisor.Plugin.Hosting;

public static class PluginHostingExtensions
{
    /// <summary>
    /// Everything the plugin needs: validated "Csi" options, Kestrel on the CSI unix socket (HTTP/2
    /// only), the CSI services, grpc.health.v1, the supervisor client and the S3 client factory.
    /// </summary>
    public static IServiceCollection AddCsiPlugin(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<CsiOptions>()
            .Bind(configuration.GetSection(CsiOptions.Section))
            .PostConfigure(o =>
            {
                if (string.IsNullOrWhiteSpace(o.NodeId))
                {
                    // The DaemonSet passes spec.nodeName through the downward API.
                    o.NodeId = FirstNonEmpty(configuration["KUBE_NODE_NAME"], configuration["NODE_ID"]);
                }
            })
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<CsiOptions>, CsiOptionsValidator>();
        // Bound at start (a value that does not bind stops start-up), not at the first CreateVolume.
        services.AddOptions<S3ClientOptions>().Bind(configuration.GetSection(S3ClientOptions.Section)).ValidateOnStart();
        services.AddSingleton<IConfigureOptions<KestrelServerOptions>, CsiKestrelSetup>();
        services.AddSingleton(TimeProvider.System);

        services.AddGrpc(o =>
        {
            o.Interceptors.Add<CsiLoggingInterceptor>();
            o.EnableDetailedErrors = false;
        });
        services.AddGrpcHealthChecks().AddCheck("plugin", () => HealthCheckResult.Healthy());

        services.AddSingleton<SupervisorChannel>();
        services.AddSingleton(sp => new SupervisorCalls(
            new Supervisor.SupervisorClient(sp.GetRequiredService<SupervisorChannel>().Channel),
            sp.GetRequiredService<IOptions<CsiOptions>>().Value.SupervisorSocket));
        services.AddSingleton<VolumeLocks>();
        services.AddSingleton<IObjectStoreFactory, S3ObjectStoreFactory>();
        services.AddSingleton<VolumeProvisioner>();
        return services;
    }

    /// <summary>
    /// Maps Identity always, Node and Controller as the mode says, and grpc.health.v1; in front of
    /// them, a request message that does not parse gets INVALID_ARGUMENT instead of grpc-dotnet's UNKNOWN.
    /// </summary>
    public static WebApplication MapCsiPlugin(this WebApplication endpoints)
    {
        endpoints.UseRequestFrameValidation(global::Csi.V1.Identity.Descriptor, global::Csi.V1.Node.Descriptor, global::Csi.V1.Controller.Descriptor, Grpc.Health.V1.Health.Descriptor);
        var options = endpoints.Services.GetRequiredService<IOptions<CsiOptions>>().Value;
        endpoints.MapGrpcService<IdentityService>();
        if (options.ServesNode)
        {
            endpoints.MapGrpcService<NodeService>();
        }
        if (options.ServesController)
        {
            endpoints.MapGrpcService<ControllerService>();
        }
        endpoints.MapGrpcHealthChecksService();

        // kubelet and the sidecars run as root; nobody else needs the socket. Kestrel has bound it
        // once the application has started.
        var lifetime = endpoints.Services.GetRequiredService<IHostApplicationLifetime>();
        lifetime.ApplicationStarted.Register(() =>
        {
            if (File.Exists(options.SocketPath))
            {
                File.SetUnixFileMode(options.SocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
            }
        });
        return endpoints;
    }

    private static string? FirstNonEmpty(params string?[] values) => values.FirstOrDefault(v => !string.IsNullOrWhiteSpace(v));
}

/// <summary>Kestrel on the CSI endpoint: a stale socket file from a previous run is removed first.</summary>
public sealed class CsiKestrelSetup(IOptions<CsiOptions> options) : IConfigureOptions<KestrelServerOptions>
{
    public void Configure(KestrelServerOptions kestrel)
    {
        var path = options.Value.SocketPath;
        var directory = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }
        // A plugin killed with -9 leaves its socket behind; bind would fail with EADDRINUSE.
        if (File.Exists(path))
        {
            File.Delete(path);
        }
        kestrel.ListenUnixSocket(path, listen => listen.Protocols = HttpProtocols.Http2);
        kestrel.AddServerHeader = false;
    }
}

/// <summary>The one channel to the supervisor socket; it reconnects by itself after a supervisor restart.</summary>
public sealed class SupervisorChannel(IOptions<CsiOptions> options) : IDisposable
{
    private readonly Lazy<GrpcChannel> _channel = new(() => UnixSocketChannel.Create(options.Value.SupervisorSocket, TimeSpan.FromSeconds(2)));

    public GrpcChannel Channel => _channel.Value;

    public void Dispose()
    {
        if (_channel.IsValueCreated)
        {
            _channel.Value.Dispose();
        }
    }
}

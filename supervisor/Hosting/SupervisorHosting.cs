using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using S3Supervisor.Supervisor.Api;
using S3Supervisor.Supervisor.Interop;
using S3Supervisor.Supervisor.Mounts;
using S3Supervisor.Supervisor.Recovery;

namespace S3Supervisor.Supervisor.Hosting;

public static class SupervisorHosting
{
    /// <summary>Registers the supervisor: options (validated at start), the volume manager and its parts, the health loop and graceful shutdown.</summary>
    public static IServiceCollection AddSupervisor(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<SupervisorOptions>()
            .Bind(configuration.GetSection(SupervisorOptions.Section))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<SupervisorOptions>, SupervisorOptionsValidator>();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(sp => new PathGuard(sp.GetRequiredService<IOptions<SupervisorOptions>>().Value.AllowedRoots));
        services.AddSingleton(sp => new CredentialStore(sp.GetRequiredService<IOptions<SupervisorOptions>>().Value.SecretsDirectory));
        services.AddSingleton(sp => new Journal(sp.GetRequiredService<IOptions<SupervisorOptions>>().Value.StateDirectory));
        services.AddSingleton<VolumeEventHub>();
        services.AddSingleton<Observability.SupervisorMetrics>();
        services.AddSingleton<IMounter>(sp => new Mounter(sp.GetRequiredService<PathGuard>().Roots.Append(PrivateMountDirectory(sp))));
        services.AddSingleton<IS3fsLauncher>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<SupervisorOptions>>().Value;
            IChildPlacement placement = o.PlaceChildrenInCgroups ? new CgroupPlacement(sp.GetRequiredService<ChildCgroups>()) : new NoChildPlacement();
            return new S3fsLauncher(o.S3fsPath, o.ChildOomScoreAdj, sp.GetRequiredService<ILogger<S3fsLauncher>>(), placement, o.ChildLogMaxBytes);
        });
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<SupervisorOptions>>().Value;
            return new VolumeManagerSettings(o.MountTimeout, o.ShutdownGrace, o.BackoffInitial, o.BackoffMax, o.HealthCheckTimeout, o.CacheDirectory, PrivateMountDirectory(sp), o.StateDirectory, o.HealthCheckInterval, o.ChildMemoryMaxBytes);
        });
        services.AddSupervisorRecovery(configuration);
        // Per-volume cgroups outside the supervisor's container; nothing is read until first use.
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<SupervisorOptions>>().Value;
            return new ChildCgroups(new ChildCgroupSettings(o.CgroupRoot, o.ChildCgroupParent), sp.GetRequiredService<TimeProvider>());
        });
        services.AddSingleton<IS3AccessCheck>(sp => new HttpS3AccessCheck(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<VolumeManager>();
        services.AddHostedService<SupervisorLifecycle>();
        services.AddHostedService<HealthCheckLoop>();
        // After the lifecycle service (secrets tmpfs ready): restore what this node served before.
        services.AddSingleton<RebuildService>();
        services.AddHostedService(sp => sp.GetRequiredService<RebuildService>());
        services.AddSupervisorApi(configuration);
        // The socket, the metrics listener and the shutdown grace come from the validated options, not a second copy.
        services.AddSingleton<IConfigureOptions<KestrelServerOptions>, SupervisorKestrelSetup>();
        services.AddSingleton<IConfigureOptions<HostOptions>, SupervisorShutdownSetup>();
        return services;
    }

    /// <summary>The directory where every s3fs mounts first (0700, the supervisor's alone), in canonical form.</summary>
    private static string PrivateMountDirectory(IServiceProvider services)
    {
        var directory = services.GetRequiredService<IOptions<SupervisorOptions>>().Value.MountDirectory;
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return Libc.RealPath(directory);
    }

    /// <summary>The rebuild after a restart, container repair and pod Events (section "Kubernetes").</summary>
    public static IServiceCollection AddSupervisorRecovery(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<RebuildOptions>()
            .Bind(configuration.GetSection(RebuildOptions.Section))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<RebuildOptions>, RebuildOptionsValidator>();
        services.AddOptions<KubernetesOptions>()
            .Bind(configuration.GetSection(KubernetesOptions.Section))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<KubernetesOptions>, KubernetesOptionsValidator>();
        services.AddSingleton(sp => KubernetesAccess.Create(sp.GetRequiredService<IOptions<KubernetesOptions>>().Value));
        services.AddSingleton<IPodEventRecorder>(sp => new PodEventRecorder(
            sp.GetRequiredService<KubernetesAccess>(),
            sp.GetRequiredService<IOptions<KubernetesOptions>>().Value.NodeName,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<PodEventRecorder>>()));
        services.AddSingleton(sp => new ContainerRepairer(
            sp.GetRequiredService<ILogger<ContainerRepairer>>(),
            new ContainerRepairOptions { Enabled = sp.GetRequiredService<IOptions<SupervisorOptions>>().Value.RepairContainers }));
        services.AddSingleton<IRecoveryObserver>(sp => new RecoveryNotifier(
            sp.GetRequiredService<ContainerRepairer>(),
            sp.GetRequiredService<IPodEventRecorder>(),
            sp.GetRequiredService<VolumeEventHub>(),
            sp.GetRequiredService<ILogger<RecoveryNotifier>>(),
            sp.GetRequiredService<Observability.SupervisorMetrics>()));
        return services;
    }

    /// <summary>
    /// Kestrel on the unix socket only: HTTP/2 cleartext (gRPC), the stale socket file removed first,
    /// the directory 0750 and every connection's SO_PEERCRED read once for the interceptor.
    /// </summary>
    public static void ListenOnSupervisorSocket(this KestrelServerOptions kestrel, SupervisorOptions options)
    {
        var directory = Path.GetDirectoryName(options.SocketPath)!;
        Directory.CreateDirectory(directory);
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        if (options.SocketGroup is { } group)
        {
            Libc.ChangeGroup(directory, group);
        }
        if (File.Exists(options.SocketPath) || new FileInfo(options.SocketPath).LinkTarget is not null)
        {
            File.Delete(options.SocketPath);
        }
        kestrel.ListenUnixSocket(options.SocketPath, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            listen.Use(next => async connection =>
            {
                var socket = connection.Features.Get<IConnectionSocketFeature>()?.Socket;
                if (socket is not null)
                {
                    var (pid, uid, gid) = Libc.PeerCredentials(socket);
                    connection.Items[PeerCredentialInterceptor.PeerKey] = new PeerCredentials(pid, uid, gid);
                }
                await next(connection).ConfigureAwait(false);
            });
        });
    }

    /// <summary>
    /// Prometheus metrics on a TCP address of the node (HTTP/1.1, GET /metrics), only when
    /// Supervisor:MetricsAddress is set. Loopback by default in the manifests; the API stays on the socket.
    /// </summary>
    public static void ListenForMetrics(this KestrelServerOptions kestrel, SupervisorOptions options)
    {
        if (options.MetricsAddress.Length == 0)
        {
            return;
        }
        var endpoint = System.Net.IPEndPoint.Parse(options.MetricsAddress);
        kestrel.Listen(endpoint, listen => listen.Protocols = HttpProtocols.Http1);
    }

    /// <summary>Right after bind: the socket is 0660 (and group-owned when configured); the directory already kept others out.</summary>
    public static void SecureSocket(SupervisorOptions options)
    {
        File.SetUnixFileMode(options.SocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        if (options.SocketGroup is { } group)
        {
            Libc.ChangeGroup(options.SocketPath, group);
        }
    }
}

/// <summary>Kestrel on the supervisor socket (and the metrics address), from the validated options.</summary>
internal sealed class SupervisorKestrelSetup(IOptions<SupervisorOptions> options) : IConfigureOptions<KestrelServerOptions>
{
    public void Configure(KestrelServerOptions kestrel)
    {
        kestrel.ListenOnSupervisorSocket(options.Value);
        kestrel.ListenForMetrics(options.Value);
    }
}

/// <summary>The host waits for every s3fs's flush grace on shutdown, and a little more.</summary>
internal sealed class SupervisorShutdownSetup(IOptions<SupervisorOptions> options) : IConfigureOptions<HostOptions>
{
    public void Configure(HostOptions host)
    {
        // The host reads its options when it is built, before start-up validation lists every problem
        // of every section: an invalid section keeps the default here and stops start-up a moment later.
        try
        {
            host.ShutdownTimeout = options.Value.ShutdownGrace + TimeSpan.FromSeconds(10);
        }
        catch (OptionsValidationException)
        {
        }
    }
}

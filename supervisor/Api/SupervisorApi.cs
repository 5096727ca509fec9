namespace S3Supervisor.Supervisor.Api;

public static class SupervisorApi
{
    /// <summary>The gRPC services' plumbing: who may call (<see cref="ApiAccessOptions"/>), the interceptors and grpc.health.v1.</summary>
    public static IServiceCollection AddSupervisorApi(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ApiAccessOptions>().Bind(configuration.GetSection(ApiAccessOptions.Section));
        services.AddSingleton<PeerCredentialInterceptor>();
        services.AddGrpc(o =>
        {
            o.Interceptors.Add<PeerCredentialInterceptor>();
            o.Interceptors.Add<UnhandledErrorInterceptor>();
            o.Interceptors.Add<AdoptionGateInterceptor>();
            o.EnableDetailedErrors = false;
        });
        services.AddGrpcHealthChecks().AddCheck("supervisor", () => Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy());
        return services;
    }
}

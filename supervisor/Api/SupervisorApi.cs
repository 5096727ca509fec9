namespace S3Supervisor.Supervisor.Api;

public static class SupervisorApi
{
    /// <summary>The gRPC services' plumbing: who may call (<see cref="ApiAccessOptions"/>), the interceptors and grpc.health.v1.</summary>
    public static IServiceCollection AddSupervisorApi(this IServiceCollection services, IConfiguration configuration)
    {
        // Bound at start, not at the first call: a value that does not bind (AllowedUids__0=root) must stop
        // start-up naming itself, never surface as UNKNOWN from an interceptor's constructor.
        services.AddOptions<ApiAccessOptions>().Bind(configuration.GetSection(ApiAccessOptions.Section)).ValidateOnStart();
        services.AddSingleton<PeerCredentialInterceptor>();
        services.AddGrpc(o =>
        {
            o.Interceptors.Add<PeerCredentialInterceptor>();
            o.Interceptors.Add<UnhandledErrorInterceptor>();
            o.EnableDetailedErrors = false;
        });
        services.AddGrpcHealthChecks().AddCheck("supervisor", () => Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy());
        return services;
    }
}

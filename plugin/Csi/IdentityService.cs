using System.Reflection;
using Csi.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;

namespace S3Supervisor.Plugin.Csi;

/// <summary>CSI Identity: who the plugin is, what it serves, and whether its node side can work now.</summary>
public sealed partial class IdentityService(IOptions<CsiOptions> options, SupervisorCalls supervisor, TimeProvider time, ILogger<IdentityService> logger) : Identity.IdentityBase
{
    /// <summary>The build's informational version (set by the build, e.g. "0.1.0+commit").</summary>
    public static string VendorVersion { get; } =
        typeof(IdentityService).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(IdentityService).Assembly.GetName().Version?.ToString()
        ?? "unknown";

    public override Task<GetPluginInfoResponse> GetPluginInfo(GetPluginInfoRequest request, ServerCallContext context) =>
        Task.FromResult(new GetPluginInfoResponse { Name = options.Value.DriverName, VendorVersion = VendorVersion });

    public override Task<GetPluginCapabilitiesResponse> GetPluginCapabilities(GetPluginCapabilitiesRequest request, ServerCallContext context)
    {
        var response = new GetPluginCapabilitiesResponse();
        if (options.Value.ServesController)
        {
            response.Capabilities.Add(new PluginCapability
            {
                Service = new PluginCapability.Types.Service { Type = PluginCapability.Types.Service.Types.Type.ControllerService },
            });
        }
        return Task.FromResult(response);
    }

    /// <summary>
    /// Ready unless this is a node plugin whose supervisor does not answer: then kubelet's
    /// calls would fail, and the liveness/readiness machinery should know.
    /// </summary>
    public override async Task<ProbeResponse> Probe(ProbeRequest request, ServerCallContext context)
    {
        if (!options.Value.ServesNode)
        {
            return new ProbeResponse { Ready = true };
        }
        try
        {
            var deadline = time.GetUtcNow().UtcDateTime + options.Value.ProbeTimeout;
            await supervisor.Client.ListVolumesAsync(new S3Supervisor.Api.V1.ListVolumesRequest(), deadline: deadline, cancellationToken: context.CancellationToken).ConfigureAwait(false);
            return new ProbeResponse { Ready = true };
        }
        catch (RpcException e) when (!context.CancellationToken.IsCancellationRequested)
        {
            Log.SupervisorNotReady(logger, options.Value.SupervisorSocket, e.StatusCode, Redaction.UrlUserInfo(e.Status.Detail));
            return new ProbeResponse { Ready = false };
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 110, Level = LogLevel.Warning, Message = "Probe: supervisor at {Socket} not ready ({Code}: {Detail})")]
        public static partial void SupervisorNotReady(ILogger logger, string socket, StatusCode code, string detail);
    }
}

using Microsoft.Extensions.Options;

namespace S3Supervisor.Plugin.Csi;

/// <summary>Every problem with the configuration, each naming the setting, so that one failed start shows them all.</summary>
public sealed class CsiOptionsValidator : IValidateOptions<CsiOptions>
{
    public ValidateOptionsResult Validate(string? name, CsiOptions options)
    {
        var failures = new List<string>();
        if (!CsiEndpoint.TryGetSocketPath(options.Endpoint, out _, out var endpointError))
        {
            failures.Add($"{CsiOptions.Section}:Endpoint {endpointError} (got \"{options.Endpoint}\")");
        }
        if (!IsDomainName(options.DriverName))
        {
            failures.Add($"{CsiOptions.Section}:DriverName must be 1 to 63 characters of letters, digits, '-' and '.', beginning and ending with a letter or digit (got \"{options.DriverName}\")");
        }
        if (!PluginModes.IsValid(options.Mode))
        {
            failures.Add($"{CsiOptions.Section}:Mode must be \"node\", \"controller\" or \"all\" (got \"{options.Mode}\")");
        }
        else if (options.ServesNode)
        {
            if (string.IsNullOrWhiteSpace(options.NodeId))
            {
                failures.Add($"{CsiOptions.Section}:NodeId is required in mode \"{options.Mode}\" (set Csi__NodeId, or KUBE_NODE_NAME from the downward API)");
            }
            else if (System.Text.Encoding.UTF8.GetByteCount(options.NodeId) > 256 || options.NodeId.Any(char.IsControl))
            {
                failures.Add($"{CsiOptions.Section}:NodeId must be at most 256 bytes without control characters");
            }
            if (string.IsNullOrWhiteSpace(options.SupervisorSocket) || !options.SupervisorSocket.StartsWith('/'))
            {
                failures.Add($"{CsiOptions.Section}:SupervisorSocket must be an absolute path (got \"{options.SupervisorSocket}\")");
            }
        }
        if (options.ProbeTimeout <= TimeSpan.Zero || options.ProbeTimeout > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{CsiOptions.Section}:ProbeTimeout must be between 00:00:00.001 and 00:01:00 (got {options.ProbeTimeout})");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>The CSI spec's rule for plugin names (RFC 1035 notation, at most 63 characters).</summary>
    public static bool IsDomainName(string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Length > 63)
        {
            return false;
        }
        if (!char.IsAsciiLetterOrDigit(value[0]) || !char.IsAsciiLetterOrDigit(value[^1]))
        {
            return false;
        }
        return value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.');
    }
}

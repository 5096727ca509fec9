using Csi.V1;
using Google.Protobuf.Collections;
using Grpc.Core;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;
using S3Supervisor.Plugin.Storage;
using AccessMode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace S3Supervisor.Plugin.Csi;

/// <summary>
/// CSI request checks that the Identity, Node and Controller services share. Every failure is an
/// InvalidArgument naming the proto field (through <see cref="Validate"/>), never echoing a secret.
/// </summary>
public static class CsiValidation
{
    public static string VolumeId(string? value) => Validate.VolumeId(value, "volume_id");

    /// <summary>An absolute path without control characters (<see cref="PathRules"/>); where it may be is the supervisor's decision.</summary>
    public static string Path(string? value, string field) =>
        PathRules.IsAbsolute(value, out var problem) ? value : throw Validate.Invalid(field, problem);

    /// <summary>A capability this driver can serve: mount access with a known access mode. Returns the mount part and the mode.</summary>
    public static (VolumeCapability.Types.MountVolume Mount, AccessMode Mode) Capability(VolumeCapability? capability, string field = "volume_capability")
    {
        if (capability is null)
        {
            throw Validate.Invalid(field, "is required");
        }
        var problem = Problem(capability);
        if (problem is not null)
        {
            throw Validate.Invalid(problem.Value.Field is null ? field : $"{field}.{problem.Value.Field}", problem.Value.Message);
        }
        return (capability.Mount, capability.AccessMode.Mode);
    }

    public static void Capabilities(RepeatedField<VolumeCapability> capabilities, string field = "volume_capabilities")
    {
        if (capabilities.Count == 0)
        {
            throw Validate.Invalid(field, "is required");
        }
        for (var i = 0; i < capabilities.Count; i++)
        {
            Capability(capabilities[i], $"{field}[{i}]");
        }
    }

    /// <summary>Why a capability is not supported, or null when it is.</summary>
    public static (string? Field, string Message)? Problem(VolumeCapability capability)
    {
        switch (capability.AccessTypeCase)
        {
            case VolumeCapability.AccessTypeOneofCase.Block:
                return ("block", "block access is not supported: S3 volumes are file systems (use mount)");
            case VolumeCapability.AccessTypeOneofCase.None:
                return ("access_type", "is required (mount)");
        }
        if (capability.AccessMode is null)
        {
            return ("access_mode", "is required");
        }
        if (!Enum.IsDefined(capability.AccessMode.Mode) || capability.AccessMode.Mode == AccessMode.Unknown)
        {
            return ("access_mode.mode", "must be a known access mode");
        }
        return null;
    }

    public static bool IsReaderOnly(AccessMode mode) => mode is AccessMode.SingleNodeReaderOnly or AccessMode.MultiNodeReaderOnly;

    /// <summary>
    /// S3 credentials from a secrets map, or null when the map carries none, by the one rule in
    /// <see cref="CredentialRules"/>. A session token is accepted: the Controller gives it to the AWS
    /// SDK, and NodeStage passes it on for the supervisor to judge. Values are never shown.
    /// </summary>
    public static S3Credentials? Credentials(IReadOnlyDictionary<string, string> secrets, string field = "secrets")
    {
        var accessKey = secrets.GetValueOrDefault(SecretKeys.AccessKeyId, string.Empty);
        var secretKey = secrets.GetValueOrDefault(SecretKeys.SecretAccessKey, string.Empty);
        var token = secrets.GetValueOrDefault(SecretKeys.SessionToken, string.Empty);
        if (CredentialRules.Check(accessKey, secretKey, token, sessionTokenSupported: true) is { } problem)
        {
            var key = problem.Part switch
            {
                CredentialPart.AccessKeyId => SecretKeys.AccessKeyId,
                CredentialPart.SecretAccessKey => SecretKeys.SecretAccessKey,
                _ => SecretKeys.SessionToken,
            };
            var rule = CredentialRules.For(problem.Part);
            throw Validate.Invalid($"{field}[{key}]", problem.Fault switch
            {
                CredentialFault.Missing => $"is required with {(problem.Part == CredentialPart.AccessKeyId ? SecretKeys.SecretAccessKey : SecretKeys.AccessKeyId)}",
                CredentialFault.WithoutKeys => $"needs {SecretKeys.AccessKeyId} and {SecretKeys.SecretAccessKey}",
                _ => $"must be at most {rule.MaxLength} characters without {rule.Forbidden}",
            });
        }
        return accessKey.Length == 0 ? null : new S3Credentials(accessKey, secretKey, token.Length == 0 ? null : token);
    }

    /// <summary>The bytes CreateVolume records for a capacity range: required if set, else the limit, else 0 (unknown).</summary>
    public static long Capacity(CapacityRange? range, string field = "capacity_range")
    {
        if (range is null)
        {
            return 0;
        }
        if (range.RequiredBytes < 0)
        {
            throw Validate.Invalid($"{field}.required_bytes", "must not be negative");
        }
        if (range.LimitBytes < 0)
        {
            throw Validate.Invalid($"{field}.limit_bytes", "must not be negative");
        }
        if (range.LimitBytes > 0 && range.RequiredBytes > range.LimitBytes)
        {
            throw new RpcException(new Status(StatusCode.OutOfRange, $"{field}: required_bytes {range.RequiredBytes} is more than limit_bytes {range.LimitBytes}"));
        }
        return range.RequiredBytes > 0 ? range.RequiredBytes : range.LimitBytes;
    }

    /// <summary>A CSI name: required, at most 128 characters (the spec's size limit), none of the banned control characters.</summary>
    public static string Name(string? value, string field = "name")
    {
        if (string.IsNullOrEmpty(value))
        {
            throw Validate.Invalid(field, "is required");
        }
        if (value.Length > 128)
        {
            throw Validate.Invalid(field, "is longer than 128 characters");
        }
        if (value.Any(c => c is (>= '\u0000' and <= '\u0008') or '\u000B' or '\u000C' or (>= '\u000E' and <= '\u001F') or (>= '\u007F' and <= '\u009F')))
        {
            throw Validate.Invalid(field, "must not contain control characters");
        }
        return value;
    }

    /// <summary>The pod from podInfoOnMount keys; each value printable, without whitespace, at most 253 characters.</summary>
    public static PodRef? Pod(IReadOnlyDictionary<string, string> context, string field = "volume_context")
    {
        foreach (var key in new[] { VolumeContext.PodUid, VolumeContext.PodName, VolumeContext.PodNamespace, VolumeContext.ServiceAccountName })
        {
            if (context.TryGetValue(key, out var value) && (value.Length > 253 || value.Any(c => char.IsControl(c) || char.IsWhiteSpace(c))))
            {
                throw Validate.Invalid($"{field}[{key}]", "must be at most 253 characters without whitespace or control characters");
            }
        }
        var uid = context.GetValueOrDefault(VolumeContext.PodUid, string.Empty);
        var name = context.GetValueOrDefault(VolumeContext.PodName, string.Empty);
        var ns = context.GetValueOrDefault(VolumeContext.PodNamespace, string.Empty);
        return uid.Length == 0 && name.Length == 0 && ns.Length == 0 ? null : new PodRef { Uid = uid, Name = name, Namespace = ns };
    }
}

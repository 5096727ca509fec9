using S3Supervisor.Api.V1;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>How a volume's place in S3 is written in messages, events and the operator's listing.</summary>
public static class S3Location
{
    /// <summary>"s3://bucket" or "s3://bucket/prefix".</summary>
    public static string Of(VolumeSource source) =>
        source.Prefix.Length == 0 ? $"s3://{source.Bucket}" : $"s3://{source.Bucket}/{source.Prefix}";
}

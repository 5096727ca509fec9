namespace S3Supervisor.Plugin.Storage;

/// <summary>S3 credentials from a request's secrets. ToString never shows them.</summary>
public sealed record S3Credentials(string AccessKeyId, string SecretAccessKey, string? SessionToken = null)
{
    public override string ToString() => "S3Credentials { *** }";
}

/// <summary>Where S3 is and how to talk to it. Carries no credentials.</summary>
public sealed record S3Endpoint(Uri Url, string Region, bool ForcePathStyle = true, bool InsecureSkipTlsVerify = false)
{
    /// <summary>The signing region used when none is configured (what MinIO and Ceph RGW expect by default).</summary>
    public const string DefaultRegion = "us-east-1";

    public string SigningRegion => string.IsNullOrEmpty(Region) ? DefaultRegion : Region;
}

using S3Supervisor.Api.V1;
using S3Supervisor.Common;

namespace S3Supervisor.Plugin.Storage;

/// <summary>
/// The StorageClass parameters CreateVolume understands. Unknown keys are rejected so that a typo
/// never silently provisions something else; the external-provisioner's own "csi.storage.k8s.io/"
/// keys are ignored.
/// </summary>
public sealed record StorageClassParameters(Uri Endpoint, string Region, string Bucket, string BucketPrefix, MountOptions Options)
{
    public const string EndpointKey = "endpoint";
    public const string RegionKey = "region";
    /// <summary>Optional shared bucket: one prefix per volume inside it. Without it, one bucket per volume.</summary>
    public const string BucketKey = "bucket";
    /// <summary>Optional prefix of generated bucket names (bucket per volume only).</summary>
    public const string BucketPrefixKey = "bucketPrefix";
    /// <summary>s3fs options for every volume of the class, as in the volume context.</summary>
    public const string OptionsKey = "options";

    private const string ProvisionerKeyPrefix = "csi.storage.k8s.io/";

    public bool SharedBucket => Bucket.Length > 0;

    public static StorageClassParameters Parse(IReadOnlyDictionary<string, string> parameters, string field = "parameters")
    {
        foreach (var key in parameters.Keys)
        {
            if (key is not (EndpointKey or RegionKey or BucketKey or BucketPrefixKey or OptionsKey) && !key.StartsWith(ProvisionerKeyPrefix, StringComparison.Ordinal))
            {
                var shown = key.Length > 64 ? key[..64] : key;
                throw Validate.Invalid($"{field}[{new string(shown.Select(c => char.IsControl(c) ? '?' : c).ToArray())}]",
                    $"is not a known StorageClass parameter (known: {EndpointKey}, {RegionKey}, {BucketKey}, {BucketPrefixKey}, {OptionsKey})");
            }
        }
        var endpointText = parameters.GetValueOrDefault(EndpointKey);
        if (string.IsNullOrEmpty(endpointText))
        {
            throw Validate.Invalid($"{field}[{EndpointKey}]", "is required (the S3 endpoint URL, e.g. https://s3.example.com)");
        }
        var endpoint = VolumeSourceRules.Endpoint(endpointText, $"{field}[{EndpointKey}]");
        if (endpoint.AbsolutePath != "/")
        {
            throw Validate.Invalid($"{field}[{EndpointKey}]", "must not have a path for dynamic provisioning (volume ids carry scheme, host and port only)");
        }
        var region = parameters.GetValueOrDefault(RegionKey, string.Empty);
        VolumeSourceRules.Region(region, $"{field}[{RegionKey}]");
        var bucket = parameters.GetValueOrDefault(BucketKey, string.Empty);
        if (bucket.Length > 0)
        {
            VolumeSourceRules.Bucket(bucket, $"{field}[{BucketKey}]");
        }
        var bucketPrefix = parameters.GetValueOrDefault(BucketPrefixKey, string.Empty);
        if (bucketPrefix.Length > 0)
        {
            if (bucket.Length > 0)
            {
                throw Validate.Invalid($"{field}[{BucketPrefixKey}]", $"applies only without \"{BucketKey}\" (one bucket per volume)");
            }
            if (bucketPrefix.Length > ResourceNames.MaxBucketPrefixLength || !bucketPrefix.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-') || !char.IsAsciiLetterOrDigit(bucketPrefix[0]))
            {
                throw Validate.Invalid($"{field}[{BucketPrefixKey}]", $"must be 1 to {ResourceNames.MaxBucketPrefixLength} lowercase letters, digits and '-', starting with a letter or digit");
            }
        }
        var options = VolumeContext.ParseOptions(parameters.GetValueOrDefault(OptionsKey), $"{field}[{OptionsKey}]");
        return new StorageClassParameters(endpoint, region, bucket, bucketPrefix, options);
    }
}

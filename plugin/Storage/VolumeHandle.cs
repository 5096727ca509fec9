using Grpc.Core;
using S3Supervisor.Common;

namespace S3Supervisor.Plugin.Storage;

/// <summary>
/// What a dynamically provisioned volume id encodes: enough to find (and delete) the data with
/// nothing but the id and the provisioner secret, because DeleteVolume gets nothing else.
/// <code>
///   &lt;bucket&gt;@&lt;scheme&gt;:&lt;host[:port]&gt;[;&lt;region&gt;]             one bucket per volume
///   &lt;bucket&gt;:&lt;prefix&gt;@&lt;scheme&gt;:&lt;host[:port]&gt;[;&lt;region&gt;]    one prefix per volume in a shared bucket
/// </code>
/// e.g. <c>pvc-5f0c9a1e-...@https:s3.example.com</c> or <c>shared:pvc-5f0c9a1e-...@http:10.0.0.5:7480;eu-1</c>.
/// Never a credential: endpoints with user information are rejected before they get here. No '/'
/// and no whitespace, so the id is safe wherever the supervisor uses it (<see cref="Validate.VolumeId"/>).
/// </summary>
public sealed record VolumeHandle(string Bucket, string Prefix, Uri Endpoint, string Region)
{
    public bool IsBucketPerVolume => Prefix.Length == 0;

    public string Format()
    {
        var id = Prefix.Length == 0 ? Bucket : $"{Bucket}:{Prefix}";
        id += $"@{Endpoint.Scheme}:{Endpoint.Authority}";
        return Region.Length == 0 ? id : $"{id};{Region}";
    }

    public override string ToString() => Format();

    /// <summary>
    /// Parses an id this plugin made. Anything else (a static PV's hand-written handle, garbage)
    /// is null: the Controller treats such ids as "not a volume of ours" and never deletes data for them.
    /// </summary>
    public static VolumeHandle? TryParse(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > Validate.MaxIdLength)
        {
            return null;
        }
        var at = id.IndexOf('@', StringComparison.Ordinal);
        if (at <= 0)
        {
            return null;
        }
        var left = id[..at];
        var right = id[(at + 1)..];
        var colon = left.IndexOf(':', StringComparison.Ordinal);
        var bucket = colon < 0 ? left : left[..colon];
        var prefix = colon < 0 ? string.Empty : left[(colon + 1)..];
        var semi = right.LastIndexOf(';');
        var endpointPart = semi < 0 ? right : right[..semi];
        var region = semi < 0 ? string.Empty : right[(semi + 1)..];
        var schemeEnd = endpointPart.IndexOf(':', StringComparison.Ordinal);
        if (schemeEnd <= 0 || (colon >= 0 && prefix.Length == 0) || (semi >= 0 && region.Length == 0))
        {
            return null;
        }
        var scheme = endpointPart[..schemeEnd];
        var authority = endpointPart[(schemeEnd + 1)..];
        if (scheme is not ("http" or "https") || authority.Length == 0 || authority.Contains('/', StringComparison.Ordinal))
        {
            return null;
        }
        try
        {
            VolumeSourceRules.Bucket(bucket);
            if (prefix.Length > 0 && (VolumeSourceRules.Prefix(prefix) != prefix || prefix.IndexOfAny(['/', '@', ';']) >= 0))
            {
                return null;
            }
            var endpoint = VolumeSourceRules.Endpoint($"{scheme}://{authority}/");
            VolumeSourceRules.Region(region);
            var handle = new VolumeHandle(bucket, prefix, endpoint, region);
            // Only the canonical spelling is ours.
            return handle.Format() == id ? handle : null;
        }
        catch (RpcException)
        {
            return null;
        }
    }
}

using System.Security.Cryptography;
using System.Text;
using S3Supervisor.Common;

namespace S3Supervisor.Plugin.Storage;

/// <summary>
/// Turns a CSI volume name (external-provisioner sends "pvc-&lt;uid&gt;") into an S3 bucket name or a
/// key prefix. Deterministic, so a repeated CreateVolume finds what the first one made. Names that
/// had to be shortened or changed much get a hash suffix, so two names never share a bucket by accident.
/// </summary>
public static class ResourceNames
{
    public const int MaxBucketPrefixLength = 20;
    public const int MaxPrefixLength = 63;

    public static string Bucket(string bucketPrefix, string volumeName) => Sanitize(bucketPrefix + volumeName, 63, bucket: true);

    public static string Prefix(string volumeName) => Sanitize(volumeName, MaxPrefixLength, bucket: false);

    public static string Sha256Hex(string value) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value)));

    private static string Sanitize(string name, int maxLength, bool bucket)
    {
        var sb = new StringBuilder(name.Length);
        foreach (var c in name.ToLowerInvariant())
        {
            var keep = c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '.';
            var next = keep ? c : '-';
            // No "..", ".-", "-." and no runs of '-' (runs are legal, but collapse keeps names readable).
            if (sb.Length > 0 && (next is '.' or '-') && sb[^1] is '.' or '-')
            {
                continue;
            }
            sb.Append(next);
        }
        var clean = sb.ToString().Trim('-', '.');
        var lossless = clean == name;
        if (clean.Length > maxLength || clean.Length < 3 || !lossless)
        {
            // 8 hex characters of the original name keep different names apart.
            var suffix = Sha256Hex(name)[..8];
            var room = maxLength - suffix.Length - 1;
            clean = clean.Length > room ? clean[..room].TrimEnd('-', '.') : clean;
            clean = clean.Length == 0 ? suffix : $"{clean}-{suffix}";
        }
        if (bucket && !IsValidBucket(clean))
        {
            clean = $"vol-{Sha256Hex(name)[..16]}";
        }
        return clean;
    }

    private static bool IsValidBucket(string name)
    {
        try
        {
            VolumeSourceRules.Bucket(name);
            return true;
        }
        catch (Grpc.Core.RpcException)
        {
            return false;
        }
    }
}

using System.Globalization;
using System.Net;
using S3Supervisor.Api.V1;

namespace S3Supervisor.Common;

/// <summary>
/// The rules a volume's source must follow before anything is mounted: S3 bucket naming, safe
/// prefixes, http(s) endpoints, typed s3fs option values. The supervisor applies them to every
/// request (it is the security boundary); the plugin applies them early for better errors.
/// </summary>
public static class VolumeSourceRules
{
    public const int MaxPrefixLength = 1024;
    public const int MaxEndpointLength = 2048;
    public const int MaxRegionLength = 64;

    public static readonly IReadOnlySet<string> StorageClasses = new HashSet<string>(StringComparer.Ordinal)
    {
        "STANDARD", "STANDARD_IA", "ONEZONE_IA", "REDUCED_REDUNDANCY", "INTELLIGENT_TIERING", "GLACIER_IR",
    };

    public static readonly IReadOnlySet<string> DebugLevels = new HashSet<string>(StringComparer.Ordinal)
    {
        "crit", "err", "warn", "info", "debug",
    };

    /// <summary>Validates and normalises a source (trailing '/' of the prefix removed). Throws InvalidArgument naming the field.</summary>
    public static VolumeSource Check(VolumeSource? source, string field = "source")
    {
        if (source is null)
        {
            throw Validate.Invalid(field, "is required");
        }
        var result = source.Clone();
        Bucket(source.Bucket, $"{field}.bucket");
        result.Prefix = Prefix(source.Prefix, $"{field}.prefix");
        Endpoint(source.Endpoint, $"{field}.endpoint");
        result.Endpoint = LowerCaseScheme(source.Endpoint);
        Region(source.Region, $"{field}.region");
        result.Options = Options(source.Options, $"{field}.options");
        return result;
    }

    /// <summary>S3 bucket naming rules (the strict, DNS-compatible ones every S3 implementation accepts).</summary>
    public static void Bucket(string? bucket, string field = "bucket")
    {
        if (string.IsNullOrEmpty(bucket))
        {
            throw Validate.Invalid(field, "is required");
        }
        if (bucket.Length is < 3 or > 63)
        {
            throw Validate.Invalid(field, "must be 3 to 63 characters long");
        }
        foreach (var c in bucket)
        {
            if (!(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '.' or '-'))
            {
                throw Validate.Invalid(field, "may contain only lowercase letters, digits, '.' and '-'");
            }
        }
        if (!char.IsAsciiLetterOrDigit(bucket[0]) || !char.IsAsciiLetterOrDigit(bucket[^1]))
        {
            throw Validate.Invalid(field, "must begin and end with a letter or digit");
        }
        if (bucket.Contains("..", StringComparison.Ordinal) || bucket.Contains(".-", StringComparison.Ordinal) || bucket.Contains("-.", StringComparison.Ordinal))
        {
            throw Validate.Invalid(field, "must not contain '..', '.-' or '-.'");
        }
        if (IPAddress.TryParse(bucket, out _) && bucket.Count(c => c == '.') == 3)
        {
            throw Validate.Invalid(field, "must not be formatted as an IP address");
        }
        if (bucket.StartsWith("xn--", StringComparison.Ordinal) || bucket.EndsWith("-s3alias", StringComparison.Ordinal))
        {
            throw Validate.Invalid(field, "must not start with 'xn--' or end with '-s3alias'");
        }
    }

    /// <summary>An optional key prefix: relative, no empty, '.' or '..' segments, printable. Returns it without a trailing '/'.</summary>
    public static string Prefix(string? prefix, string field = "prefix")
    {
        if (string.IsNullOrEmpty(prefix))
        {
            return string.Empty;
        }
        if (prefix.Length > MaxPrefixLength)
        {
            throw Validate.Invalid(field, $"is longer than {MaxPrefixLength} characters");
        }
        if (prefix.StartsWith('/'))
        {
            throw Validate.Invalid(field, "must not start with '/'");
        }
        var trimmed = prefix.TrimEnd('/');
        foreach (var c in trimmed)
        {
            if (char.IsControl(c) || c is '\\' or ',')
            {
                throw Validate.Invalid(field, "must not contain control characters, '\\' or ','");
            }
        }
        foreach (var segment in trimmed.Split('/'))
        {
            if (segment.Length == 0 || segment == "." || segment == "..")
            {
                throw Validate.Invalid(field, "must not contain empty, '.' or '..' segments");
            }
        }
        return trimmed;
    }

    public static Uri Endpoint(string? endpoint, string field = "endpoint")
    {
        if (string.IsNullOrEmpty(endpoint))
        {
            throw Validate.Invalid(field, "is required");
        }
        if (endpoint.Length > MaxEndpointLength)
        {
            throw Validate.Invalid(field, $"is longer than {MaxEndpointLength} characters");
        }
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw Validate.Invalid(field, "must be an absolute http:// or https:// URL");
        }
        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            throw Validate.Invalid(field, "must not carry user information; credentials go in the secret");
        }
        if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
        {
            throw Validate.Invalid(field, "must not have a query or fragment");
        }
        foreach (var c in endpoint)
        {
            if (char.IsControl(c) || char.IsWhiteSpace(c) || c == ',')
            {
                throw Validate.Invalid(field, "must not contain whitespace, control characters or ','");
            }
        }
        return uri;
    }

    /// <summary>
    /// "HTTP://host:port/" → "http://host:port/". RFC 3986 schemes are case-insensitive, but s3fs
    /// accepts only lower case; the rest of the URL stays as written.
    /// </summary>
    public static string LowerCaseScheme(string endpoint)
    {
        var colon = endpoint.IndexOf(':', StringComparison.Ordinal);
        return colon <= 0 ? endpoint : endpoint[..colon].ToLowerInvariant() + endpoint[colon..];
    }

    public static void Region(string? region, string field = "region")
    {
        if (string.IsNullOrEmpty(region))
        {
            return;
        }
        if (region.Length > MaxRegionLength)
        {
            throw Validate.Invalid(field, $"is longer than {MaxRegionLength} characters");
        }
        foreach (var c in region)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                throw Validate.Invalid(field, "may contain only letters, digits, '-' and '_'");
            }
        }
    }

    public static MountOptions Options(MountOptions? options, string field = "options")
    {
        var o = options?.Clone() ?? new MountOptions();
        // Every string option, including ones added later: a control character never reaches s3fs's -o list.
        foreach (var option in MountOptions.Descriptor.Fields.InFieldNumberOrder())
        {
            if (option.FieldType == Google.Protobuf.Reflection.FieldType.String && option.Accessor.HasValue(o))
            {
                Validate.NoControlCharacters((string)option.Accessor.GetValue(o), $"{field}.{option.Name}");
            }
        }
        if (o.HasUmask)
        {
            if (o.Umask.Length is 0 or > 4 || o.Umask.Any(c => c is < '0' or > '7'))
            {
                throw Validate.Invalid($"{field}.umask", "must be an octal number such as 022");
            }
        }
        if (o.HasStorageClass && !StorageClasses.Contains(o.StorageClass))
        {
            throw Validate.Invalid($"{field}.storage_class", $"must be one of {string.Join(", ", StorageClasses.Order())}");
        }
        if (o.HasDbglevel && !DebugLevels.Contains(o.Dbglevel))
        {
            throw Validate.Invalid($"{field}.dbglevel", $"must be one of {string.Join(", ", DebugLevels)}");
        }
        Range(o.HasMultipartSizeMb, o.MultipartSizeMb, 5, 5 * 1024, $"{field}.multipart_size_mb");
        Range(o.HasParallelCount, o.ParallelCount, 1, 128, $"{field}.parallel_count");
        Range(o.HasMultireqMax, o.MultireqMax, 1, 128, $"{field}.multireq_max");
        Range(o.HasStatCacheExpireSeconds, o.StatCacheExpireSeconds, 0, 86400, $"{field}.stat_cache_expire_seconds");
        Range(o.HasMaxStatCacheSize, o.MaxStatCacheSize, 0, 10_000_000, $"{field}.max_stat_cache_size");
        Range(o.HasConnectTimeoutSeconds, o.ConnectTimeoutSeconds, 1, 3600, $"{field}.connect_timeout_seconds");
        Range(o.HasReadwriteTimeoutSeconds, o.ReadwriteTimeoutSeconds, 1, 3600, $"{field}.readwrite_timeout_seconds");
        Range(o.HasRetries, o.Retries, 0, 100, $"{field}.retries");
        return o;
    }

    private static void Range(bool has, uint value, uint min, uint max, string field)
    {
        if (has && (value < min || value > max))
        {
            throw Validate.Invalid(field, string.Create(CultureInfo.InvariantCulture, $"must be between {min} and {max}"));
        }
    }
}

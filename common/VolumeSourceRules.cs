using System.Net;
using S3Supervisor.Api.V1;

namespace S3Supervisor.Common;

/// <summary>
/// The rules a volume's source must follow before anything is mounted: S3 bucket naming, safe
/// prefixes, http(s) endpoints, and the typed s3fs option values (<see cref="MountOptionTable"/>).
/// The supervisor applies them to every request (it is the security boundary); the plugin applies
/// them early for better errors.
/// </summary>
public static class VolumeSourceRules
{
    public const int MaxPrefixLength = 1024;
    public const int MaxEndpointLength = 2048;
    public const int MaxRegionLength = 64;

    /// <summary>Validates and normalises a source (trailing '/' of the prefix removed). Throws InvalidArgument naming the field.</summary>
    public static VolumeSource Check(VolumeSource? source, string field = "source")
    {
        var result = CheckLocation(source, field);
        result.Options = Options(result.Options, $"{field}.options");
        return result;
    }

    /// <summary>
    /// The source's bucket, prefix, endpoint and region, normalised; its options as they are. For a
    /// source whose options were checked when they were parsed (<see cref="VolumeContext.ParseOptions"/>).
    /// </summary>
    public static VolumeSource CheckLocation(VolumeSource? source, string field = "source")
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

    /// <summary>A typed request's options, by the rules of <see cref="MountOptionTable"/>. Returns a copy.</summary>
    public static MountOptions Options(MountOptions? options, string field = "options")
    {
        var o = options?.Clone() ?? new MountOptions();
        MountOptionTable.Check(o, field);
        return o;
    }
}

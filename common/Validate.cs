using System.Runtime.CompilerServices;
using Grpc.Core;

namespace S3Supervisor.Common;

/// <summary>
/// The one place request validation turns into gRPC status codes. Every message names the field,
/// and never echoes a secret (callers pass field names, not values, for credentials).
/// </summary>
public static class Validate
{
    public const int MaxIdLength = 256;
    public const int MaxPathLength = 4096;

    public static RpcException Invalid(string field, string problem) =>
        new(new Status(StatusCode.InvalidArgument, $"{field}: {problem}"));

    /// <summary>Whether <paramref name="e"/> is a failure of these validators, and its detail: lets a non-API caller speak its own error.</summary>
    public static bool IsInvalid(Exception e, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? detail)
    {
        detail = e is RpcException { StatusCode: StatusCode.InvalidArgument } rpc ? rpc.Status.Detail : null;
        return detail is not null;
    }

    /// <summary>The characters <see cref="IsSpecialCharacter"/> names, as a message lists them.</summary>
    public const string SpecialCharacters = "',', '=', ':', '\\', whitespace or control characters";

    public const string SpecialCharactersProblem = "must not contain " + SpecialCharacters;

    /// <summary>Whether a character could change the meaning of an s3fs -o list or a passwd file line.</summary>
    public static bool IsSpecialCharacter(char c) => c is ',' or '=' or ':' or '\\' || char.IsControl(c) || char.IsWhiteSpace(c);

    public static bool HasSpecialCharacters(string value) => value.Any(IsSpecialCharacter);

    public static string Required(string? value, [CallerArgumentExpression(nameof(value))] string field = "")
    {
        if (string.IsNullOrEmpty(value))
        {
            throw Invalid(FieldName(field), "is required");
        }
        return value;
    }

    /// <summary>A volume id: 1..256 printable ASCII characters, no whitespace ('/' is fine: CSI ids often carry it).</summary>
    public static string VolumeId(string? value, string field = "volume_id")
    {
        if (string.IsNullOrEmpty(value))
        {
            throw Invalid(field, "is required");
        }
        if (value.Length > MaxIdLength)
        {
            throw Invalid(field, $"is longer than {MaxIdLength} characters");
        }
        foreach (var c in value)
        {
            if (c <= ' ' || c >= 0x7f)
            {
                throw Invalid(field, "may contain only printable ASCII characters, without whitespace");
            }
        }
        return value;
    }

    /// <summary>Rejects values that could change the meaning of an s3fs -o list or a passwd file line.</summary>
    public static void NoSpecialCharacters(string value, string field)
    {
        if (HasSpecialCharacters(value))
        {
            throw Invalid(field, SpecialCharactersProblem);
        }
    }

    /// <summary>Rejects any control character (NUL, CR, LF, TAB, DEL, C1) anywhere in the value.</summary>
    public static void NoControlCharacters(string value, string field)
    {
        if (value.Any(char.IsControl))
        {
            throw Invalid(field, "must not contain control characters");
        }
    }

    /// <summary>A caller's text made safe to quote in a message: control characters become '?', at most <paramref name="max"/> characters.</summary>
    public static string Shown(string? value, int max = 256)
    {
        if (string.IsNullOrEmpty(value))
        {
            return string.Empty;
        }
        var cut = value.Length > max ? value[..max] + "..." : value;
        return string.Create(cut.Length, cut, (span, text) =>
        {
            for (var i = 0; i < text.Length; i++)
            {
                span[i] = char.IsControl(text[i]) ? '?' : text[i];
            }
        });
    }

    /// <summary>Turns generated C# property names ("request.VolumeId") into proto field names ("volume_id").</summary>
    public static string FieldName(string expression)
    {
        var last = expression.Split('.')[^1];
        var sb = new System.Text.StringBuilder(last.Length + 4);
        for (var i = 0; i < last.Length; i++)
        {
            var c = last[i];
            if (char.IsUpper(c))
            {
                if (i > 0)
                {
                    sb.Append('_');
                }
                sb.Append(char.ToLowerInvariant(c));
            }
            else
            {
                sb.Append(c);
            }
        }
        return sb.ToString();
    }
}

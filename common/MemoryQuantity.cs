using System.Globalization;

namespace S3Supervisor.Common;

/// <summary>
/// A Kubernetes resource quantity for memory (<c>512Mi</c>, <c>1G</c>, <c>1.5Gi</c>, <c>128974848</c>,
/// <c>129e6</c>) turned into whole bytes, the way Kubernetes turns a memory limit into a cgroup value:
/// binary suffixes Ki Mi Gi Ti Pi Ei (powers of 1024), decimal suffixes k M G T P E (powers of 1000),
/// a decimal exponent (<c>e6</c>, <c>E6</c>), or none; a fraction of a byte rounds up. Small on purpose:
/// the supervisor checks its settings at start without loading KubernetesClient, and one parser
/// serves the setting and, later, a per-volume value.
/// </summary>
public static class MemoryQuantity
{
    public const string Format = "a Kubernetes quantity such as 512Mi, 1Gi or 1G (a positive number with an optional suffix Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P, E or an exponent e6)";

    /// <summary>Parses <paramref name="text"/> into bytes (at least 1); false with the reason when it is not a positive memory quantity.</summary>
    /// <summary>The least memory limit an s3fs cgroup may get: below it, s3fs does not even start.</summary>
    public const long MinimumChildLimit = 16L * 1024 * 1024;

    /// <summary>
    /// The one rule for an s3fs memory limit, node-wide (Supervisor:ChildMemoryMax) or per volume
    /// (option memory_limit): what is wrong with <paramref name="bytes"/>, or null.
    /// </summary>
    public static string? ChildLimitProblem(ulong bytes) =>
        bytes < MinimumChildLimit ? "must be at least 16Mi (s3fs needs that much to start)"
        : bytes > long.MaxValue ? "must be at most 8Ei"
        : null;

    public static bool TryParseBytes(string? text, out long bytes, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? problem)
    {
        bytes = 0;
        if (string.IsNullOrEmpty(text))
        {
            problem = "is empty";
            return false;
        }
        var number = 0;
        while (number < text.Length && (char.IsAsciiDigit(text[number]) || text[number] == '.'))
        {
            number++;
        }
        var digits = text[..number];
        var suffix = text[number..];
        if (digits.Length == 0 || digits.Count(c => c == '.') > 1 || digits == ".")
        {
            problem = $"'{text}' is not {Format}";
            return false;
        }
        if (!TryMultiplier(suffix, out var multiplier))
        {
            problem = $"'{text}' has an unknown suffix '{suffix}'; use {Format}";
            return false;
        }
        try
        {
            var value = decimal.Parse(digits, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture) * multiplier;
            var rounded = decimal.Ceiling(value);
            if (rounded < 1)
            {
                problem = $"'{text}' must be at least one byte";
                return false;
            }
            if (rounded > long.MaxValue)
            {
                problem = $"'{text}' is too large";
                return false;
            }
            bytes = (long)rounded;
            problem = null;
            return true;
        }
        catch (OverflowException)
        {
            problem = $"'{text}' is too large";
            return false;
        }
    }

    private static bool TryMultiplier(string suffix, out decimal multiplier)
    {
        multiplier = suffix switch
        {
            "" => 1m,
            "Ki" => 1L << 10,
            "Mi" => 1L << 20,
            "Gi" => 1L << 30,
            "Ti" => 1L << 40,
            "Pi" => 1L << 50,
            "Ei" => 1L << 60,
            "k" => 1e3m,
            "M" => 1e6m,
            "G" => 1e9m,
            "T" => 1e12m,
            "P" => 1e15m,
            "E" => 1e18m,
            _ => 0m,
        };
        if (multiplier != 0m)
        {
            return true;
        }
        // A decimal exponent, e.g. 129e6 or 1E9 ("E" alone is exa, above).
        if (suffix.Length >= 2 && suffix[0] is 'e' or 'E'
            && int.TryParse(suffix.AsSpan(1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var exponent)
            && exponent is >= -28 and <= 28)
        {
            multiplier = 1m;
            for (var i = 0; i < Math.Abs(exponent); i++)
            {
                multiplier = exponent > 0 ? multiplier * 10m : multiplier / 10m;
            }
            return true;
        }
        return false;
    }
}

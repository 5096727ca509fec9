using System.Diagnostics.CodeAnalysis;

namespace S3Supervisor.Common;

/// <summary>
/// What a staging or target path must be before anyone looks at where it leads: present, at most
/// <see cref="Validate.MaxPathLength"/> characters, absolute, without control characters. The plugin
/// and the supervisor's PathGuard both apply it, each turning the problem into its own error.
/// </summary>
public static class PathRules
{
    /// <summary>Whether <paramref name="value"/> passes; when it does not, <paramref name="problem"/> says why (without the value).</summary>
    public static bool IsAbsolute([NotNullWhen(true)] string? value, [NotNullWhen(false)] out string? problem)
    {
        problem = string.IsNullOrEmpty(value) ? "is required"
            : value.Length > Validate.MaxPathLength ? $"is longer than {Validate.MaxPathLength} characters"
            : value[0] != '/' ? "must be an absolute path"
            : value.Any(char.IsControl) ? "must not contain control characters"
            : null;
        return problem is null;
    }
}

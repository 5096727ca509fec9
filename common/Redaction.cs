using System.Text.RegularExpressions;

namespace S3Supervisor.Common;

/// <summary>
/// Removes what must never reach a log line or an error message even when a caller put it where it
/// does not belong: the user information of a URL (<c>http://AK:SECRET@host</c>). Applied to whole
/// texts (a rendered request, a status detail, a child's output), so it must find URLs anywhere.
/// </summary>
public static class Redaction
{
    public const string Mask = "***";

    // scheme "://" userinfo "@", where the slashes and the '@' may be JSON-escaped ("\/", "\u002F",
    // "\u0040", escaped once or twice) and the scheme is any RFC 3986 scheme in any case. The
    // userinfo runs to the last '@' before the authority ends ('/', '?', '#', whitespace, a quote):
    // taking too much only hides more. NonBacktracking keeps hostile input linear.
    private static readonly Regex UserInfo = new(
        @"(?<head>[A-Za-z][A-Za-z0-9+.\-]*:(?:\\{0,3}/|\\{1,3}u002[fF]){2})(?<userinfo>[^/?#\s""'<>]*)(?<at>@|\\{1,3}u0040)",
        RegexOptions.CultureInvariant | RegexOptions.NonBacktracking,
        TimeSpan.FromSeconds(1));

    /// <summary>Replaces the userinfo of every <c>scheme://userinfo@</c> in <paramref name="text"/> with <see cref="Mask"/>.</summary>
    public static string UrlUserInfo(string text)
    {
        if (string.IsNullOrEmpty(text) || !text.Contains(':', StringComparison.Ordinal))
        {
            return text;
        }
        try
        {
            return UserInfo.Replace(text, m => m.Groups["userinfo"].Length == 0 ? m.Value : m.Groups["head"].Value + Mask + m.Groups["at"].Value);
        }
        catch (RegexMatchTimeoutException)
        {
            // Never hand out text that could not be checked.
            return "[text withheld: too long to check for credentials]";
        }
    }
}

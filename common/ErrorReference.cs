using System.Security.Cryptography;

namespace S3Supervisor.Common;

/// <summary>
/// A short id that ties an "internal error" answer to the one log line that has the details: the
/// caller gets the id, never the exception's text (it might carry anything).
/// </summary>
public static class ErrorReference
{
    /// <summary>8 lower-case hex characters.</summary>
    public static string New() => RandomNumberGenerator.GetHexString(8, lowercase: true);

    /// <summary>The status detail for an unexpected failure, e.g. "internal error (ref 1a2b3c4d); see the plugin log".</summary>
    public static string Detail(string reference, string process) => $"internal error (ref {reference}); see the {process} log";
}

using Microsoft.AspNetCore.WebUtilities;

namespace S3Supervisor.TestKit.Kubernetes;

/// <summary>
/// One request as the test API server received it, logged before any fault is applied (so 403s and
/// slow answers are in the log too; requests made while the server is down never arrive).
/// </summary>
/// <param name="Method">GET, POST, ...</param>
/// <param name="Path">The URL path, e.g. <c>/api/v1/pods</c>.</param>
/// <param name="Query">The raw query string including the leading '?', or empty.</param>
/// <param name="Time">When it arrived.</param>
public sealed record RecordedRequest(string Method, string Path, string Query, DateTimeOffset Time)
{
    /// <summary>One decoded query parameter, e.g. <c>QueryValue("fieldSelector")</c> gives <c>spec.nodeName=node-a</c>.</summary>
    public string? QueryValue(string name) =>
        QueryHelpers.ParseQuery(Query).TryGetValue(name, out var values) && values.Count > 0 ? values[0] : null;

    public override string ToString() => $"{Method} {Path}{Query}";
}

using System.Net;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s.Models;

namespace S3Supervisor.TestKit.Kubernetes;

/// <summary>
/// The <c>Status</c> bodies the real API server sends with a failure, with the same reason, code,
/// details and message wording (k8s.io/apimachinery/pkg/api/errors), so that code reading
/// <c>HttpOperationException.Response.Content</c> sees what it would see in a cluster.
/// </summary>
internal static class ApiStatus
{
    /// <summary>The identity a 403 names; what the node DaemonSet's service account would be.</summary>
    public const string User = "system:serviceaccount:kube-system:s3-csi-node";

    // Quotes in messages as \" like Go's encoder, not \u0022.
    private static readonly JsonSerializerOptions WireOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static V1Status NotFound(ApiResource resource, string name) =>
        Failure(HttpStatusCode.NotFound, "NotFound", $"{resource.QualifiedPlural} \"{name}\" not found", Details(resource, name));

    public static V1Status PathNotFound() =>
        Failure(HttpStatusCode.NotFound, "NotFound", "the server could not find the requested resource", new V1StatusDetails());

    public static V1Status AlreadyExists(ApiResource resource, string name) =>
        Failure(HttpStatusCode.Conflict, "AlreadyExists", $"{resource.QualifiedPlural} \"{name}\" already exists", Details(resource, name));

    public static V1Status Forbidden(ApiResource? resource, string verb, string? ns, string? name, string path)
    {
        if (resource is null)
        {
            return Failure(HttpStatusCode.Forbidden, "Forbidden", $"forbidden: User \"{User}\" cannot {verb} path \"{path}\"", new V1StatusDetails());
        }
        var subject = name is null ? resource.QualifiedPlural : $"{resource.QualifiedPlural} \"{name}\"";
        var scope = ns is null ? "at the cluster scope" : $"in the namespace \"{ns}\"";
        return Failure(
            HttpStatusCode.Forbidden,
            "Forbidden",
            $"{subject} is forbidden: User \"{User}\" cannot {verb} resource \"{resource.Plural}\" in API group \"{resource.Group}\" {scope}",
            Details(resource, name));
    }

    public static V1Status Unauthorized() =>
        Failure(HttpStatusCode.Unauthorized, "Unauthorized", "Unauthorized", null);

    public static V1Status BadRequest(string message) =>
        Failure(HttpStatusCode.BadRequest, "BadRequest", message, null);

    public static V1Status MethodNotAllowed() =>
        Failure(HttpStatusCode.MethodNotAllowed, "MethodNotAllowed", "the server does not allow this method on the requested resource", new V1StatusDetails());

    public static V1Status Invalid(ApiResource resource, string name, IReadOnlyList<V1StatusCause> causes)
    {
        var listed = causes.Select(c => $"{c.Field}: {c.Message}").ToList();
        var summary = listed.Count == 1 ? listed[0] : $"[{string.Join(", ", listed)}]";
        var details = new V1StatusDetails
        {
            Name = name,
            Group = resource.Group.Length == 0 ? null : resource.Group,
            Kind = resource.Kind,
            Causes = causes.ToList(),
        };
        return Failure((HttpStatusCode)422, "Invalid", $"{resource.QualifiedKind} \"{name}\" is invalid: {summary}", details);
    }

    /// <summary>An injected server-side failure (see <see cref="ApiServerMode.Failing"/>).</summary>
    public static V1Status Injected(HttpStatusCode code)
    {
        var (reason, message) = (int)code switch
        {
            429 => ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
            500 => ("InternalError", "Internal error occurred: injected by the test API server"),
            503 => ("ServiceUnavailable", "the server is currently unable to handle the request"),
            504 => ("Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request"),
            _ => (code.ToString(), $"injected failure {(int)code} from the test API server"),
        };
        var details = (int)code is 429 or 503 ? new V1StatusDetails { RetryAfterSeconds = 1 } : null;
        return Failure(code, reason, message, details);
    }

    /// <summary>
    /// The wire form, in the real server's field order. Written by hand because KubernetesClient's
    /// V1Status converter reads but does not write.
    /// </summary>
    public static string ToJson(V1Status status)
    {
        var json = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = status.Status,
        };
        AddIfSet(json, "message", status.Message);
        AddIfSet(json, "reason", status.Reason);
        if (status.Details is { } d)
        {
            var details = new JsonObject();
            AddIfSet(details, "name", d.Name);
            AddIfSet(details, "group", d.Group);
            AddIfSet(details, "kind", d.Kind);
            AddIfSet(details, "uid", d.Uid);
            if (d.Causes is { Count: > 0 })
            {
                var causes = new JsonArray();
                foreach (var c in d.Causes)
                {
                    var cause = new JsonObject();
                    AddIfSet(cause, "reason", c.Reason);
                    AddIfSet(cause, "message", c.Message);
                    AddIfSet(cause, "field", c.Field);
                    causes.Add(cause);
                }
                details["causes"] = causes;
            }
            if (d.RetryAfterSeconds is { } retry)
            {
                details["retryAfterSeconds"] = retry;
            }
            json["details"] = details;
        }
        json["code"] = status.Code;
        return json.ToJsonString(WireOptions);
    }

    private static void AddIfSet(JsonObject json, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            json[name] = value;
        }
    }

    private static V1StatusDetails Details(ApiResource resource, string? name) => new()
    {
        Name = name,
        Group = resource.Group.Length == 0 ? null : resource.Group,
        Kind = resource.Plural,
    };

    private static V1Status Failure(HttpStatusCode code, string reason, string message, V1StatusDetails? details) => new()
    {
        ApiVersion = "v1",
        Kind = "Status",
        Metadata = new V1ListMeta(),
        Status = "Failure",
        Message = message,
        Reason = reason,
        Details = details,
        Code = (int)code,
    };
}

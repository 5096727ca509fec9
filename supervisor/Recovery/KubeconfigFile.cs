using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace S3Supervisor.Supervisor.Recovery;

/// <summary>
/// A cheap check, at start, of the kubeconfig the rebuild will use after a restart: it parses, its
/// current-context names a cluster with a server and a user with some credential. Without it a
/// kubeconfig KubernetesClient rejects ("does not have appropriate auth credentials") was accepted
/// at start and only failed at the first rebuild, on the next restart, when every volume needs it.
/// </summary>
/// <remarks>
/// Why not KubernetesClient's own loader: LoadKubeConfig / BuildConfigFromConfigFile cost 550-730 ms
/// in a fresh process under the JIT (measured on this project's 2-core machine), which would delay
/// the socket; the YAML representation model alone costs about 95 ms and holds the same facts. The
/// full client is still built lazily, by <see cref="KubernetesAccess"/>, and its failures are
/// reported and retried by the rebuild.
/// </remarks>
public static class KubeconfigFile
{
    /// <summary>The credential fields of a kubeconfig user that KubernetesClient accepts (one is enough; cert and key go together).</summary>
    public const string CredentialFields = "token, tokenFile, client-certificate(-data) with client-key(-data), username with password, exec or auth-provider";

    /// <summary>What is wrong with the kubeconfig at <paramref name="path"/>, each naming Kubernetes:Kubeconfig; empty when it is usable.</summary>
    public static IReadOnlyList<string> Check(string path)
    {
        var prefix = $"Kubernetes:Kubeconfig '{path}'";
        YamlMappingNode root;
        try
        {
            var stream = new YamlStream();
            using (var reader = new StreamReader(path))
            {
                stream.Load(reader);
            }
            if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode mapping)
            {
                return [$"{prefix} is not a kubeconfig (no YAML mapping at the top)."];
            }
            root = mapping;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [$"{prefix} cannot be read: {e.Message}"];
        }
        catch (Exception e) when (e is YamlException or InvalidOperationException)
        {
            // YamlDotNet's scanner throws InvalidOperationException, not YamlException, on some broken
            // input (an unclosed flow sequence such as "kind: [Config").
            return [$"{prefix} is not valid YAML: {e.Message}"];
        }

        var contextName = Scalar(root, "current-context");
        if (contextName is null)
        {
            return [$"{prefix} has no current-context."];
        }
        var context = Named(root, "contexts", contextName, "context");
        if (context is null)
        {
            return [$"{prefix}: current-context '{contextName}' is not in its contexts."];
        }
        var failures = new List<string>();
        var clusterName = Scalar(context, "cluster");
        var cluster = clusterName is null ? null : Named(root, "clusters", clusterName, "cluster");
        var server = cluster is null ? null : Scalar(cluster, "server");
        if (clusterName is null || cluster is null)
        {
            failures.Add($"{prefix}: context '{contextName}' names no cluster that is in its clusters.");
        }
        else if (server is null || !Uri.TryCreate(server, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            failures.Add($"{prefix}: cluster '{clusterName}' has no http(s) server URL.");
        }
        var userName = Scalar(context, "user");
        var user = userName is null ? null : Named(root, "users", userName, "user");
        if (userName is null || user is null)
        {
            failures.Add($"{prefix}: context '{contextName}' names no user that is in its users, so there are no user credentials ({CredentialFields}).");
        }
        else if (!HasCredentials(user))
        {
            failures.Add($"{prefix}: user '{userName}' of context '{contextName}' has no user credentials ({CredentialFields}).");
        }
        return failures;
    }

    private static bool HasCredentials(YamlMappingNode user)
    {
        bool Has(string key) => Scalar(user, key) is not null;
        return Has("token")
            || Has("tokenFile")
            || ((Has("client-certificate-data") || Has("client-certificate")) && (Has("client-key-data") || Has("client-key")))
            || (Has("username") && Has("password"))
            || (Child(user, "exec") is YamlMappingNode exec && Scalar(exec, "command") is not null)
            || (Child(user, "auth-provider") is YamlMappingNode provider && Scalar(provider, "name") is not null);
    }

    /// <summary>The <paramref name="field"/> mapping of the entry named <paramref name="name"/> in the list <paramref name="list"/> (kubeconfig's named lists).</summary>
    private static YamlMappingNode? Named(YamlMappingNode root, string list, string name, string field)
    {
        if (Child(root, list) is not YamlSequenceNode entries)
        {
            return null;
        }
        foreach (var entry in entries.OfType<YamlMappingNode>())
        {
            if (Scalar(entry, "name") == name)
            {
                // `user:` with nothing under it is an entry without fields, not a missing entry.
                return Child(entry, field) as YamlMappingNode ?? new YamlMappingNode();
            }
        }
        return null;
    }

    private static YamlNode? Child(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var child) ? child : null;

    /// <summary>A non-empty scalar value, or null.</summary>
    private static string? Scalar(YamlMappingNode node, string key) =>
        Child(node, key) is YamlScalarNode { Value: { Length: > 0 } value } ? value : null;
}

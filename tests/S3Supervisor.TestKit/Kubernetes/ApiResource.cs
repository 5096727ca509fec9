using k8s;
using k8s.Models;

namespace S3Supervisor.TestKit.Kubernetes;

/// <summary>
/// One REST resource the test API server serves: where it lives (group, version, plural), whether it
/// is namespaced, how to read and list it with KubernetesClient's own types, and which field selectors
/// the real API server accepts for it (anything else is a 400 there, so it is a 400 here too).
/// </summary>
internal sealed class ApiResource
{
    private readonly Func<string, IKubernetesObject<V1ObjectMeta>> _deserialize;
    private readonly Func<Stream, CancellationToken, ValueTask<IKubernetesObject<V1ObjectMeta>?>> _deserializeStream;
    private readonly Func<IEnumerable<IKubernetesObject<V1ObjectMeta>>, V1ListMeta, object> _makeList;
    private readonly Func<IKubernetesObject<V1ObjectMeta>, string, string?>? _extraFields;

    private ApiResource(
        Type itemType,
        string group,
        string version,
        string plural,
        string kind,
        bool namespaced,
        Func<string, IKubernetesObject<V1ObjectMeta>> deserialize,
        Func<Stream, CancellationToken, ValueTask<IKubernetesObject<V1ObjectMeta>?>> deserializeStream,
        Func<IEnumerable<IKubernetesObject<V1ObjectMeta>>, V1ListMeta, object> makeList,
        Func<IKubernetesObject<V1ObjectMeta>, string, string?>? extraFields)
    {
        ItemType = itemType;
        Group = group;
        Version = version;
        Plural = plural;
        Kind = kind;
        Namespaced = namespaced;
        _deserialize = deserialize;
        _deserializeStream = deserializeStream;
        _makeList = makeList;
        _extraFields = extraFields;
    }

    public Type ItemType { get; }

    /// <summary>API group; empty for the core ("legacy") group served under /api.</summary>
    public string Group { get; }

    public string Version { get; }

    public string Plural { get; }

    public string Kind { get; }

    public bool Namespaced { get; }

    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    /// <summary>How the real API server names the resource in messages: "pods", "storageclasses.storage.k8s.io".</summary>
    public string QualifiedPlural => Group.Length == 0 ? Plural : $"{Plural}.{Group}";

    /// <summary>How the real API server names the kind in validation messages: "Event", "Event.events.k8s.io".</summary>
    public string QualifiedKind => Group.Length == 0 ? Kind : $"{Kind}.{Group}";

    public static ApiResource Create<TItem, TList>(
        string group,
        string version,
        string plural,
        string kind,
        bool namespaced,
        Func<IList<TItem>, V1ListMeta, TList> makeList,
        Func<TItem, string, string?>? extraFields = null)
        where TItem : class, IKubernetesObject<V1ObjectMeta>
        where TList : class =>
        new(
            typeof(TItem),
            group,
            version,
            plural,
            kind,
            namespaced,
            json => KubernetesJson.Deserialize<TItem>(json),
            async (stream, ct) =>
            {
                // KubernetesJson has no async stream overload; bodies here are small.
                using var reader = new StreamReader(stream);
                var json = await reader.ReadToEndAsync(ct);
                return KubernetesJson.Deserialize<TItem>(json);
            },
            (items, meta) => makeList(items.Cast<TItem>().ToList(), meta),
            extraFields is null ? null : (item, field) => extraFields((TItem)item, field));

    /// <summary>A deep copy, so that nothing a caller holds aliases what the server stores or sends.</summary>
    public IKubernetesObject<V1ObjectMeta> Clone(IKubernetesObject<V1ObjectMeta> item) => _deserialize(KubernetesJson.Serialize(item));

    public ValueTask<IKubernetesObject<V1ObjectMeta>?> ReadAsync(Stream body, CancellationToken ct) => _deserializeStream(body, ct);

    /// <summary>
    /// The list a real API server returns: apiVersion and kind ("PodList") on the list, and, like the
    /// real server (kubernetes/kubernetes#3030), not on the items.
    /// </summary>
    public object MakeList(IEnumerable<IKubernetesObject<V1ObjectMeta>> items, string resourceVersion)
    {
        var stripped = items.Select(i =>
        {
            var copy = Clone(i);
            copy.ApiVersion = null;
            copy.Kind = null;
            return copy;
        });
        var list = _makeList(stripped, new V1ListMeta { ResourceVersion = resourceVersion });
        if (list is IKubernetesObject typed)
        {
            typed.ApiVersion = ApiVersion;
            typed.Kind = Kind + "List";
        }
        return list;
    }

    public bool SupportsField(string field) => FieldValue(_deserialize("{}"), field) is not null;

    /// <summary>The value of a field-selector field for an item, or null when the field is not supported for this resource.</summary>
    public string? FieldValue(IKubernetesObject<V1ObjectMeta> item, string field) => field switch
    {
        "metadata.name" => item.Metadata?.Name ?? string.Empty,
        "metadata.namespace" => item.Metadata?.NamespaceProperty ?? string.Empty,
        _ => _extraFields?.Invoke(item, field),
    };
}

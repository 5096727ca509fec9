using k8s;
using k8s.Models;

namespace S3Supervisor.TestKit.Kubernetes;

/// <summary>The resources the test API server knows, keyed both by URL and by model type.</summary>
internal static class ApiResources
{
    public static readonly IReadOnlyList<ApiResource> All =
    [
        ApiResource.Create<V1Pod, V1PodList>(
            "", "v1", "pods", "Pod", namespaced: true,
            (items, meta) => new V1PodList { Items = items, Metadata = meta },
            PodField),
        ApiResource.Create<V1PersistentVolumeClaim, V1PersistentVolumeClaimList>(
            "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", namespaced: true,
            (items, meta) => new V1PersistentVolumeClaimList { Items = items, Metadata = meta }),
        ApiResource.Create<V1PersistentVolume, V1PersistentVolumeList>(
            "", "v1", "persistentvolumes", "PersistentVolume", namespaced: false,
            (items, meta) => new V1PersistentVolumeList { Items = items, Metadata = meta }),
        ApiResource.Create<V1Secret, V1SecretList>(
            "", "v1", "secrets", "Secret", namespaced: true,
            (items, meta) => new V1SecretList { Items = items, Metadata = meta },
            (secret, field) => field == "type" ? secret.Type ?? string.Empty : null),
        ApiResource.Create<V1Namespace, V1NamespaceList>(
            "", "v1", "namespaces", "Namespace", namespaced: false,
            (items, meta) => new V1NamespaceList { Items = items, Metadata = meta },
            (ns, field) => field == "status.phase" ? ns.Status?.Phase ?? string.Empty : null),
        ApiResource.Create<V1Node, V1NodeList>(
            "", "v1", "nodes", "Node", namespaced: false,
            (items, meta) => new V1NodeList { Items = items, Metadata = meta },
            (node, field) => field == "spec.unschedulable" ? Bool(node.Spec?.Unschedulable) : null),
        ApiResource.Create<Corev1Event, Corev1EventList>(
            "", "v1", "events", "Event", namespaced: true,
            (items, meta) => new Corev1EventList { Items = items, Metadata = meta },
            CoreEventField),
        ApiResource.Create<Eventsv1Event, Eventsv1EventList>(
            "events.k8s.io", "v1", "events", "Event", namespaced: true,
            (items, meta) => new Eventsv1EventList { Items = items, Metadata = meta }),
        ApiResource.Create<V1StorageClass, V1StorageClassList>(
            "storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced: false,
            (items, meta) => new V1StorageClassList { Items = items, Metadata = meta }),
        ApiResource.Create<V1CSIDriver, V1CSIDriverList>(
            "storage.k8s.io", "v1", "csidrivers", "CSIDriver", namespaced: false,
            (items, meta) => new V1CSIDriverList { Items = items, Metadata = meta }),
    ];

    private static readonly Dictionary<Type, ApiResource> ByType = All.ToDictionary(r => r.ItemType);

    private static readonly Dictionary<(string Group, string Version, string Plural), ApiResource> ByPath =
        All.ToDictionary(r => (r.Group, r.Version, r.Plural));

    public static ApiResource ForType(Type type) =>
        ByType.TryGetValue(type, out var resource)
            ? resource
            : throw new ArgumentException(
                $"The test API server does not serve {type.Name}; it serves {string.Join(", ", All.Select(r => r.ItemType.Name))}.",
                nameof(type));

    public static ApiResource? ForPath(string group, string version, string plural) =>
        ByPath.GetValueOrDefault((group, version, plural));

    public static bool IsKnownGroupVersion(string group, string version) =>
        All.Any(r => r.Group == group && r.Version == version);

    // The field selectors the real API server accepts for pods (pkg/registry/core/pod/strategy.go ToSelectableFields).
    private static string? PodField(V1Pod pod, string field) => field switch
    {
        "spec.nodeName" => pod.Spec?.NodeName ?? string.Empty,
        "spec.restartPolicy" => pod.Spec?.RestartPolicy ?? string.Empty,
        "spec.schedulerName" => pod.Spec?.SchedulerName ?? string.Empty,
        "spec.serviceAccountName" => pod.Spec?.ServiceAccountName ?? string.Empty,
        "spec.hostNetwork" => Bool(pod.Spec?.HostNetwork),
        "status.phase" => pod.Status?.Phase ?? string.Empty,
        "status.podIP" => pod.Status?.PodIP ?? string.Empty,
        "status.nominatedNodeName" => pod.Status?.NominatedNodeName ?? string.Empty,
        _ => null,
    };

    private static string? CoreEventField(Corev1Event e, string field) => field switch
    {
        "involvedObject.kind" => e.InvolvedObject?.Kind ?? string.Empty,
        "involvedObject.namespace" => e.InvolvedObject?.NamespaceProperty ?? string.Empty,
        "involvedObject.name" => e.InvolvedObject?.Name ?? string.Empty,
        "involvedObject.uid" => e.InvolvedObject?.Uid ?? string.Empty,
        "involvedObject.apiVersion" => e.InvolvedObject?.ApiVersion ?? string.Empty,
        "involvedObject.resourceVersion" => e.InvolvedObject?.ResourceVersion ?? string.Empty,
        "involvedObject.fieldPath" => e.InvolvedObject?.FieldPath ?? string.Empty,
        "reason" => e.Reason ?? string.Empty,
        "reportingComponent" => e.ReportingComponent ?? string.Empty,
        "source" => e.Source?.Component ?? string.Empty,
        "type" => e.Type ?? string.Empty,
        _ => null,
    };

    private static string Bool(bool? value) => value == true ? "true" : "false";
}

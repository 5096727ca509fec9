using k8s;
using k8s.Models;

namespace S3Supervisor.Supervisor.Recovery;

/// <summary>A pod an Event is about.</summary>
public sealed record PodIdentity(string Uid, string Name, string Namespace);

public interface IPodEventRecorder
{
    /// <summary>Records a Kubernetes Event on a pod. Never throws: a failed Event is logged, not fatal.</summary>
    Task RecordAsync(PodIdentity pod, bool warning, string reason, string message, CancellationToken cancellationToken);
}

/// <summary>core/v1 Events on the affected pods, so `kubectl describe pod` shows what happened to its volume. No API server: nothing.</summary>
public sealed partial class PodEventRecorder : IPodEventRecorder
{
    private readonly KubernetesAccess _access;
    private readonly string _nodeName;
    private readonly TimeProvider _time;
    private readonly ILogger<PodEventRecorder> _logger;

    public PodEventRecorder(KubernetesAccess access, string nodeName, TimeProvider time, ILogger<PodEventRecorder> logger)
    {
        _access = access;
        _nodeName = nodeName;
        _time = time;
        _logger = logger;
    }

    public async Task RecordAsync(PodIdentity pod, bool warning, string reason, string message, CancellationToken cancellationToken)
    {
        if (pod.Name.Length == 0 || pod.Namespace.Length == 0)
        {
            return;
        }
        var now = _time.GetUtcNow().UtcDateTime;
        var ev = new Corev1Event
        {
            Metadata = new V1ObjectMeta { GenerateName = pod.Name + ".", NamespaceProperty = pod.Namespace },
            InvolvedObject = new V1ObjectReference { ApiVersion = "v1", Kind = "Pod", Name = pod.Name, NamespaceProperty = pod.Namespace, Uid = pod.Uid },
            Reason = reason,
            Message = message.Length > 1000 ? message[..1000] : message,
            Type = warning ? "Warning" : "Normal",
            Source = new V1EventSource { Component = "s3supervisor", Host = _nodeName },
            ReportingComponent = "s3supervisor",
            ReportingInstance = _nodeName,
            FirstTimestamp = now,
            LastTimestamp = now,
            Count = 1,
        };
        try
        {
            // Inside the try: building the client can throw (a bad kubeconfig), and an Event is never fatal.
            if (_access.Client is not { } client)
            {
                return;
            }
            await client.CoreV1.CreateNamespacedEventAsync(ev, pod.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogEventFailed(pod.Namespace, pod.Name, reason, e.Message);
        }
    }

    [LoggerMessage(EventId = 1300, Level = LogLevel.Warning, Message = "Could not record Event {Reason} on pod {Namespace}/{Pod}: {Error}")]
    private partial void LogEventFailed(string @namespace, string pod, string reason, string error);
}

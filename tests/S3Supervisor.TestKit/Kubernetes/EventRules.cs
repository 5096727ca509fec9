using k8s.Models;

namespace S3Supervisor.TestKit.Kubernetes;

/// <summary>
/// The checks the real API server makes when an Event is created (pkg/apis/core/validation/events.go),
/// so that an Event the supervisor could not post in a cluster is refused here too (422 Invalid),
/// and the mapping of an events.k8s.io/v1 Event onto the core/v1 shape tests assert on.
/// </summary>
internal static class EventRules
{
    private const string Required = "Required value";

    /// <summary>core/v1: the legacy rules only.</summary>
    public static List<V1StatusCause> ValidateCore(Corev1Event e, string ns)
    {
        var causes = new List<V1StatusCause>();
        var involvedNamespace = e.InvolvedObject?.NamespaceProperty ?? string.Empty;
        if (e.EventTime is null)
        {
            var matches = involvedNamespace.Length == 0 ? ns is "" or "default" : involvedNamespace == ns;
            if (!matches)
            {
                causes.Add(Invalid("involvedObject.namespace", involvedNamespace, "does not match event.namespace"));
            }
        }
        else
        {
            if (involvedNamespace.Length == 0 && ns is not ("default" or "kube-system"))
            {
                causes.Add(Invalid("involvedObject.namespace", involvedNamespace, "does not match event.namespace"));
            }
            RequireNew(causes, e.ReportingComponent, "reportingComponent", e.ReportingInstance, e.Action, e.Reason, e.Message, "message");
        }
        return causes;
    }

    /// <summary>events.k8s.io/v1: the legacy rules plus the strict ones for the new API.</summary>
    public static List<V1StatusCause> ValidateEventsV1(Eventsv1Event e, string ns)
    {
        var causes = new List<V1StatusCause>();
        var regardingNamespace = e.Regarding?.NamespaceProperty ?? string.Empty;
        if (e.EventTime is null)
        {
            causes.Add(new V1StatusCause { Field = "eventTime", Message = Required, Reason = "FieldValueRequired" });
        }
        else if (regardingNamespace.Length == 0 && ns is not ("default" or "kube-system"))
        {
            causes.Add(Invalid("involvedObject.namespace", regardingNamespace, "does not match event.namespace"));
        }
        if (e.EventTime is not null)
        {
            RequireNew(causes, e.ReportingController, "reportingController", e.ReportingInstance, e.Action, e.Reason, e.Note, "note");
        }
        if (e.Type is not ("Normal" or "Warning"))
        {
            causes.Add(Invalid("type", e.Type ?? string.Empty, $"has invalid value: {e.Type}"));
        }
        if (e.DeprecatedFirstTimestamp is not null)
        {
            causes.Add(Invalid("deprecatedFirstTimestamp", string.Empty, "needs to be unset"));
        }
        if (e.DeprecatedLastTimestamp is not null)
        {
            causes.Add(Invalid("deprecatedLastTimestamp", string.Empty, "needs to be unset"));
        }
        if (e.DeprecatedCount is not null and not 0)
        {
            causes.Add(Invalid("deprecatedCount", string.Empty, "needs to be unset"));
        }
        if (!string.IsNullOrEmpty(e.DeprecatedSource?.Component) || !string.IsNullOrEmpty(e.DeprecatedSource?.Host))
        {
            causes.Add(Invalid("deprecatedSource", string.Empty, "needs to be unset"));
        }
        return causes;
    }

    /// <summary>
    /// The core/v1 view of an events.k8s.io/v1 Event (the API server stores both as one type). The
    /// apiVersion stays "events.k8s.io/v1" so a test can still tell which API the event came through.
    /// </summary>
    public static Corev1Event ToCore(Eventsv1Event e) => new()
    {
        ApiVersion = "events.k8s.io/v1",
        Kind = "Event",
        Metadata = e.Metadata,
        InvolvedObject = e.Regarding,
        Related = e.Related,
        Reason = e.Reason,
        Message = e.Note,
        Type = e.Type,
        Action = e.Action,
        EventTime = e.EventTime,
        ReportingComponent = e.ReportingController,
        ReportingInstance = e.ReportingInstance,
        Series = e.Series is null ? null : new Corev1EventSeries { Count = e.Series.Count, LastObservedTime = e.Series.LastObservedTime },
        Source = e.DeprecatedSource,
        Count = e.DeprecatedCount,
        FirstTimestamp = e.DeprecatedFirstTimestamp,
        LastTimestamp = e.DeprecatedLastTimestamp,
    };

    private static void RequireNew(List<V1StatusCause> causes, string? controller, string controllerField, string? instance, string? action, string? reason, string? note, string noteField)
    {
        if (string.IsNullOrEmpty(controller))
        {
            causes.Add(new V1StatusCause { Field = controllerField, Message = Required, Reason = "FieldValueRequired" });
        }
        if (string.IsNullOrEmpty(instance))
        {
            causes.Add(new V1StatusCause { Field = "reportingInstance", Message = Required, Reason = "FieldValueRequired" });
        }
        else if (instance.Length > 128)
        {
            causes.Add(Invalid("reportingInstance", string.Empty, "can have at most 128 characters"));
        }
        if (string.IsNullOrEmpty(action))
        {
            causes.Add(new V1StatusCause { Field = "action", Message = Required, Reason = "FieldValueRequired" });
        }
        else if (action.Length > 128)
        {
            causes.Add(Invalid("action", string.Empty, "can have at most 128 characters"));
        }
        if (string.IsNullOrEmpty(reason))
        {
            causes.Add(new V1StatusCause { Field = "reason", Message = Required, Reason = "FieldValueRequired" });
        }
        else if (reason.Length > 128)
        {
            causes.Add(Invalid("reason", string.Empty, "can have at most 128 characters"));
        }
        if (note is not null && note.Length > 1024)
        {
            causes.Add(Invalid(noteField, string.Empty, "can have at most 1024 characters"));
        }
    }

    private static V1StatusCause Invalid(string field, string value, string detail) =>
        new() { Field = field, Message = $"Invalid value: \"{value}\": {detail}", Reason = "FieldValueInvalid" };
}

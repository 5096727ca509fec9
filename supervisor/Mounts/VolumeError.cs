using S3Supervisor.Common;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>What went wrong with a volume operation, in the domain's words; Api/ chooses the status code for each.</summary>
public enum VolumeErrorKind
{
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    PermissionDenied,
    Unavailable,
    Aborted,
    Internal,
}

/// <summary>
/// The error Mounts/ and Recovery/ throw: a kind, the request field it concerns (empty when none
/// does) and a message. <see cref="Exception.Message"/> is the detail a client sees, "field: message",
/// so a caller that records it (the rebuild, a failed heal) records what a client would read.
/// </summary>
public sealed class VolumeException(VolumeErrorKind kind, string field, string message)
    : Exception(field.Length == 0 ? message : $"{field}: {message}")
{
    public VolumeErrorKind Kind { get; } = kind;

    public string Field { get; } = field;

    public static VolumeException Invalid(string field, string problem) => new(VolumeErrorKind.InvalidArgument, field, problem);

    /// <summary>
    /// Runs one of the shared request validators (common/, written for the API layers) from the domain:
    /// its failure becomes an InvalidArgument of ours with the same detail.
    /// </summary>
    public static T Checked<T>(Func<T> check)
    {
        try
        {
            return check();
        }
        catch (Exception e) when (Validate.IsInvalid(e, out var detail))
        {
            throw new VolumeException(VolumeErrorKind.InvalidArgument, string.Empty, detail);
        }
    }
}

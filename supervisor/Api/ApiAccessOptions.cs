namespace S3Supervisor.Supervisor.Api;

/// <summary>
/// Who may call the API. Bound from section "Supervisor" beside the supervisor's other settings
/// (Supervisor__AllowedUids__0, ...), so the keys operators know stay where they were.
/// </summary>
public sealed class ApiAccessOptions
{
    public const string Section = "Supervisor";

    /// <summary>Peers (by SO_PEERCRED uid) that may call the API. Empty: nobody.</summary>
    public List<uint> AllowedUids { get; set; } = [];
}

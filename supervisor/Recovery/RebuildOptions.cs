using Microsoft.Extensions.Options;

namespace S3Supervisor.Supervisor.Recovery;

/// <summary>
/// How the rebuild after a restart restores. Bound from section "Supervisor" beside the supervisor's
/// other settings (Supervisor__RestoreParallelism), so the key operators know stays where it was.
/// </summary>
public sealed class RebuildOptions
{
    public const string Section = "Supervisor";

    /// <summary>
    /// Upper bound of concurrent volume restores during a rebuild. A restore mostly waits (s3fs's FUSE
    /// init and its first request to S3), so this is sized for waiting, not for cores: 64 starts at once
    /// cost what 64 bare s3fs started at once cost.
    /// </summary>
    public int RestoreParallelism { get; set; } = 64;
}

internal sealed class RebuildOptionsValidator : IValidateOptions<RebuildOptions>
{
    public ValidateOptionsResult Validate(string? name, RebuildOptions options) =>
        options.RestoreParallelism is < 1 or > 256
            ? ValidateOptionsResult.Fail("Supervisor:RestoreParallelism must be between 1 and 256.")
            : ValidateOptionsResult.Success;
}

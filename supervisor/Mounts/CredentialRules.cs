using S3Supervisor.Api.V1;
using S3Supervisor.Common;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// What node credentials may be, in one place. Two moments check them: the API, before anything is
/// done for a request (<see cref="CheckLengths"/>), and the store, before a passwd file line is written
/// (<see cref="CheckStorable"/>), which also covers keys the rebuild read from a Secret.
/// </summary>
public static class CredentialRules
{
    public const int MaxAccessKeyIdLength = 256;
    public const int MaxSecretAccessKeyLength = 1024;
    public const int MaxSessionTokenLength = 8192;

    /// <summary>Lengths a request's credentials must keep.</summary>
    public static Credentials CheckLengths(Credentials credentials)
    {
        if (credentials.AccessKeyId.Length is 0 or > MaxAccessKeyIdLength)
        {
            throw VolumeException.Invalid("credentials.access_key_id", $"must be 1 to {MaxAccessKeyIdLength} characters");
        }
        if (credentials.SecretAccessKey.Length is 0 or > MaxSecretAccessKeyLength)
        {
            throw VolumeException.Invalid("credentials.secret_access_key", $"must be 1 to {MaxSecretAccessKeyLength} characters");
        }
        if (credentials.SessionToken.Length > MaxSessionTokenLength)
        {
            throw VolumeException.Invalid("credentials.session_token", $"is longer than {MaxSessionTokenLength} characters");
        }
        return credentials;
    }

    /// <summary>
    /// What an s3fs passwd file line ("key:secret") can hold. Session tokens are refused: s3fs 1.90
    /// reads them only from its environment or the invoking user's own ~/.aws/credentials (not from a
    /// passwd file, and not through $HOME), and secrets never go into a child's environment.
    /// </summary>
    public static void CheckStorable(Credentials credentials)
    {
        if (Validate.HasSpecialCharacters(credentials.AccessKeyId))
        {
            throw VolumeException.Invalid("credentials.access_key_id", Validate.SpecialCharactersProblem);
        }
        if (credentials.SecretAccessKey.Any(c => c is ':' or '\n' or '\r' || char.IsControl(c)))
        {
            throw VolumeException.Invalid("credentials.secret_access_key", "must not contain ':', newlines or control characters");
        }
        if (credentials.SessionToken.Length > 0)
        {
            throw VolumeException.Invalid("credentials.session_token", "is not supported: s3fs 1.90 takes a session token only from its environment, where no secret may go; use long-lived keys for this volume");
        }
    }
}

using S3Supervisor.Api.V1;
using S3Supervisor.Common;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// The supervisor's two moments of the one credential rule (<see cref="CredentialRules"/>), worded
/// with its proto field names: the API, before anything is done for a request (<see cref="Request"/>),
/// and the store, before a passwd file line is written (<see cref="CheckStorable"/>), which also covers
/// keys the rebuild read from a Secret.
/// </summary>
public static class CredentialChecks
{
    /// <summary>A request's credentials, or null when it carries none.</summary>
    /// <param name="sessionTokenSupported">True where the keys will not be used (a public bucket); a publish's keys are judged by the store.</param>
    public static Credentials? Request(Credentials? credentials, bool sessionTokenSupported)
    {
        if (credentials is null)
        {
            return null;
        }
        Check(credentials, sessionTokenSupported);
        return credentials.AccessKeyId.Length == 0 ? null : credentials;
    }

    /// <summary>What an s3fs passwd file line ("key:secret") can hold: never a session token.</summary>
    public static void CheckStorable(Credentials credentials) => Check(credentials, sessionTokenSupported: false);

    private static void Check(Credentials c, bool sessionTokenSupported)
    {
        if (CredentialRules.Check(c.AccessKeyId, c.SecretAccessKey, c.SessionToken, sessionTokenSupported) is not { } problem)
        {
            return;
        }
        var field = problem.Part switch
        {
            CredentialPart.AccessKeyId => "credentials.access_key_id",
            CredentialPart.SecretAccessKey => "credentials.secret_access_key",
            _ => "credentials.session_token",
        };
        var rule = CredentialRules.For(problem.Part);
        throw VolumeException.Invalid(field, problem.Fault switch
        {
            CredentialFault.Missing => $"must be 1 to {rule.MaxLength} characters",
            CredentialFault.TooLong when problem.Part == CredentialPart.SessionToken => $"is longer than {rule.MaxLength} characters",
            CredentialFault.TooLong => $"must be 1 to {rule.MaxLength} characters",
            CredentialFault.Forbidden => $"must not contain {rule.Forbidden}",
            CredentialFault.WithoutKeys => "needs access_key_id and secret_access_key",
            _ => "is not supported: s3fs 1.90 takes a session token only from its environment, where no secret may go; use long-lived keys for this volume",
        });
    }
}

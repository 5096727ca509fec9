namespace S3Supervisor.Common;

/// <summary>Which of a set of S3 credentials a <see cref="CredentialProblem"/> concerns.</summary>
public enum CredentialPart
{
    AccessKeyId,
    SecretAccessKey,
    SessionToken,
}

/// <summary>What is wrong with one part of a set of S3 credentials.</summary>
public enum CredentialFault
{
    /// <summary>A key is empty while the other one is set.</summary>
    Missing,
    /// <summary>Longer than the part's maximum.</summary>
    TooLong,
    /// <summary>Holds a character the part may not hold (<see cref="CredentialRules.PartRule.Forbidden"/>).</summary>
    Forbidden,
    /// <summary>A session token without the two keys.</summary>
    WithoutKeys,
    /// <summary>A session token where the caller cannot use one (an s3fs passwd file).</summary>
    Unsupported,
}

/// <summary>The first thing wrong with a set of credentials: which part, and how. Never the value.</summary>
public readonly record struct CredentialProblem(CredentialPart Part, CredentialFault Fault);

/// <summary>
/// What S3 credentials may be, for the plugin (CSI secrets) and the supervisor (its API, its passwd
/// files) alike. The characters refused are those that would change the meaning of an s3fs passwd
/// file line (<c>key:secret</c>, or <c>name=value</c>) or of an s3fs -o list. A session token is
/// accepted where the credentials go to the AWS SDK or are only passed on, and refused where they go
/// into a passwd file: s3fs 1.90 takes a token only from its environment, where no secret may go.
/// Each caller words a <see cref="CredentialProblem"/> with its own field names.
/// </summary>
public static class CredentialRules
{
    public const int MaxAccessKeyIdLength = 256;
    public const int MaxSecretAccessKeyLength = 1024;
    public const int MaxSessionTokenLength = 8192;

    /// <summary>One part's rule: how long it may be, and which characters it may not hold (and how a message lists them).</summary>
    public sealed record PartRule(int MaxLength, Func<char, bool> IsForbidden, string Forbidden);

    /// <summary>The access key stands before the passwd line's ':' and must not read as "name=value".</summary>
    public static readonly PartRule AccessKeyId = new(MaxAccessKeyIdLength, Validate.IsSpecialCharacter, Validate.SpecialCharacters);

    /// <summary>The secret key is the rest of the passwd line.</summary>
    public static readonly PartRule SecretAccessKey = new(MaxSecretAccessKeyLength, c => c == ':' || char.IsWhiteSpace(c) || char.IsControl(c), "':', whitespace or control characters");

    public static readonly PartRule SessionToken = new(MaxSessionTokenLength, c => char.IsWhiteSpace(c) || char.IsControl(c), "whitespace or control characters");

    public static PartRule For(CredentialPart part) => part switch
    {
        CredentialPart.AccessKeyId => AccessKeyId,
        CredentialPart.SecretAccessKey => SecretAccessKey,
        _ => SessionToken,
    };

    /// <summary>The first problem with these credentials, or null when they pass or none of the three is set.</summary>
    /// <param name="sessionTokenSupported">False where the credentials end in an s3fs passwd file.</param>
    public static CredentialProblem? Check(string accessKeyId, string secretAccessKey, string sessionToken, bool sessionTokenSupported)
    {
        if (accessKeyId.Length == 0 && secretAccessKey.Length == 0)
        {
            return sessionToken.Length > 0 ? new(CredentialPart.SessionToken, CredentialFault.WithoutKeys) : null;
        }
        return Part(CredentialPart.AccessKeyId, accessKeyId, required: true)
            ?? Part(CredentialPart.SecretAccessKey, secretAccessKey, required: true)
            ?? Part(CredentialPart.SessionToken, sessionToken, required: false)
            ?? (sessionToken.Length > 0 && !sessionTokenSupported ? new(CredentialPart.SessionToken, CredentialFault.Unsupported) : null);
    }

    private static CredentialProblem? Part(CredentialPart part, string value, bool required)
    {
        var rule = For(part);
        return value.Length == 0 ? (required ? new(part, CredentialFault.Missing) : null)
            : value.Length > rule.MaxLength ? new(part, CredentialFault.TooLong)
            : value.Any(rule.IsForbidden) ? new(part, CredentialFault.Forbidden)
            : null;
    }
}

using S3Supervisor.Api.V1;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Tests.Mounts;

/// <summary>The supervisor's wording of the common credential rule, at the API and at the store.</summary>
public sealed class CredentialChecksTests
{
    [Fact]
    public void Request_SessionTokenForAMount_RefusedBeforeAnythingIsDone()
    {
        var credentials = new Credentials { AccessKeyId = "AKID", SecretAccessKey = "SECRET", SessionToken = "token" };
        var e = Assert.Throws<VolumeException>(() => CredentialChecks.Request(credentials, sessionTokenSupported: false));
        Assert.Equal("credentials.session_token", e.Field);
        Assert.StartsWith("credentials.session_token: is not supported", e.Message, StringComparison.Ordinal);
        Assert.Same(credentials, CredentialChecks.Request(credentials, sessionTokenSupported: true));
    }

    [Fact]
    public void Request_NoneOrAllEmpty_Null()
    {
        Assert.Null(CredentialChecks.Request(null, sessionTokenSupported: false));
        Assert.Null(CredentialChecks.Request(new Credentials(), sessionTokenSupported: false));
    }

    [Theory]
    [InlineData("", "SECRET", "credentials.access_key_id: must be 1 to 256 characters")]
    [InlineData("KEY,other", "SECRET", "credentials.access_key_id: must not contain ',', '=', ':', '\\', whitespace or control characters")]
    [InlineData("AKID", "", "credentials.secret_access_key: must be 1 to 1024 characters")]
    [InlineData("AKID", "a\nroot:x", "credentials.secret_access_key: must not contain ':', whitespace or control characters")]
    public void CheckStorable_BadKeys_NamesTheField(string access, string secret, string message)
    {
        var e = Assert.Throws<VolumeException>(() => CredentialChecks.CheckStorable(new Credentials { AccessKeyId = access, SecretAccessKey = secret }));
        Assert.Equal(VolumeErrorKind.InvalidArgument, e.Kind);
        Assert.Equal(message, e.Message);
    }
}

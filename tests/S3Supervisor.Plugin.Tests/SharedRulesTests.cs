using Grpc.Core;
using S3Supervisor.Common;
using S3Supervisor.Plugin.Csi;

namespace S3Supervisor.Plugin.Tests;

/// <summary>The path and credential rules of common/, and the plugin's wording of them.</summary>
public sealed class SharedRulesTests
{
    [Theory]
    [InlineData(null, "is required")]
    [InlineData("", "is required")]
    [InlineData("relative/path", "must be an absolute path")]
    [InlineData("/a\nb", "must not contain control characters")]
    public void IsAbsolute_BadPath_SaysWhy(string? path, string problem)
    {
        Assert.False(PathRules.IsAbsolute(path, out var said));
        Assert.Equal(problem, said);
        var e = Assert.Throws<RpcException>(() => CsiValidation.Path(path, "target_path"));
        Assert.Equal($"target_path: {problem}", e.Status.Detail);
    }

    [Fact]
    public void IsAbsolute_TooLong_SaysTheLimit()
    {
        Assert.False(PathRules.IsAbsolute("/" + new string('a', Validate.MaxPathLength), out var problem));
        Assert.Equal("is longer than 4096 characters", problem);
        Assert.True(PathRules.IsAbsolute("/" + new string('a', Validate.MaxPathLength - 1), out _));
    }

    [Theory]
    [InlineData("AKID", "SECRET", "", false, null, null)]
    [InlineData("", "", "", false, null, null)]
    [InlineData("", "", "token", true, CredentialPart.SessionToken, CredentialFault.WithoutKeys)]
    [InlineData("", "SECRET", "", true, CredentialPart.AccessKeyId, CredentialFault.Missing)]
    [InlineData("AKID", "", "", true, CredentialPart.SecretAccessKey, CredentialFault.Missing)]
    [InlineData("AK=ID", "SECRET", "", true, CredentialPart.AccessKeyId, CredentialFault.Forbidden)]
    [InlineData("AK\\ID", "SECRET", "", true, CredentialPart.AccessKeyId, CredentialFault.Forbidden)]
    [InlineData("AKID", "SEC:RET", "", true, CredentialPart.SecretAccessKey, CredentialFault.Forbidden)]
    [InlineData("AKID", "SEC RET", "", true, CredentialPart.SecretAccessKey, CredentialFault.Forbidden)]
    [InlineData("AKID", "SECRET", "tok en", true, CredentialPart.SessionToken, CredentialFault.Forbidden)]
    [InlineData("AKID", "SECRET", "token", true, null, null)]
    [InlineData("AKID", "SECRET", "token", false, CredentialPart.SessionToken, CredentialFault.Unsupported)]
    public void Check_Credentials_FirstProblemOrNone(string access, string secret, string token, bool tokenSupported, CredentialPart? part, CredentialFault? fault)
    {
        var problem = CredentialRules.Check(access, secret, token, tokenSupported);
        Assert.Equal(part is null ? null : new CredentialProblem(part.Value, fault!.Value), problem);
    }

    [Fact]
    public void Check_TooLong_EachPartItsLimit()
    {
        Assert.Equal(CredentialFault.TooLong, CredentialRules.Check(new string('a', 257), "s", "", true)!.Value.Fault);
        Assert.Equal(CredentialFault.TooLong, CredentialRules.Check("a", new string('s', 1025), "", true)!.Value.Fault);
        Assert.Equal(CredentialFault.TooLong, CredentialRules.Check("a", "s", new string('t', 8193), true)!.Value.Fault);
        Assert.Null(CredentialRules.Check(new string('a', 256), new string('s', 1024), new string('t', 8192), true));
    }

    [Fact]
    public void Credentials_SecretWithColon_RefusedByThePluginAsBySupervisor()
    {
        var secrets = new Dictionary<string, string> { [SecretKeys.AccessKeyId] = "AKID", [SecretKeys.SecretAccessKey] = "a:b" };
        var e = Assert.Throws<RpcException>(() => CsiValidation.Credentials(secrets));
        Assert.Equal("secrets[secretAccessKey]: must be at most 1024 characters without ':', whitespace or control characters", e.Status.Detail);
    }
}

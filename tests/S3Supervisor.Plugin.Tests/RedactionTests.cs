using S3Supervisor.Common;

namespace S3Supervisor.Plugin.Tests;

public sealed class RedactionTests
{
    [Theory]
    [InlineData("endpoint http://AK:SECRET@127.0.0.1:7480 refused", "endpoint http://***@127.0.0.1:7480 refused")]
    [InlineData("HTTPS://AK:SECRET@host/x", "HTTPS://***@host/x")]
    [InlineData("s3://SECRET@bucket", "s3://***@bucket")]
    [InlineData("git+ssh://u:SECRET@h:22", "git+ssh://***@h:22")]
    [InlineData("a http://x:SECRET@h and ftp://y:SECRET@g", "a http://***@h and ftp://***@g")]
    [InlineData("{\"endpoint\":\"http:\\/\\/AK:SECRET@h:1\"}", "{\"endpoint\":\"http:\\/\\/***@h:1\"}")]
    [InlineData("http:\\u002F\\u002FAK:SECRET\\u0040h", "http:\\u002F\\u002F***\\u0040h")]
    [InlineData("{\\u0022e\\u0022: \\u0022http://AK:SE\\u002BCRET@h:1\\u0022}", "{\\u0022e\\u0022: \\u0022http://***@h:1\\u0022}")]
    [InlineData("http://AK:SEC@RET@h:1/p", "http://***@h:1/p")]
    public void UrlUserInfo_UserInfoAnywhere_Masked(string text, string expected)
    {
        var redacted = Redaction.UrlUserInfo(text);
        Assert.Equal(expected, redacted);
        Assert.DoesNotContain("SECRET", redacted);
        Assert.DoesNotContain("SE\\u002BCRET", redacted);
    }

    [Theory]
    [InlineData("http://127.0.0.1:7480/bucket")]
    [InlineData("http://host/path@not-userinfo")]
    [InlineData("http://host?q=a@b")]
    [InlineData("mailto:user@example.com")]
    [InlineData("plain text with an @ sign")]
    [InlineData("")]
    public void UrlUserInfo_NoUserInfo_Unchanged(string text) => Assert.Equal(text, Redaction.UrlUserInfo(text));

    [Fact]
    public void UrlUserInfo_HugeHostileText_FinishesAndHidesSecret()
    {
        var text = string.Concat(Enumerable.Repeat("a://", 50_000)) + "http://AK:SECRET@h";
        Assert.DoesNotContain("SECRET", Redaction.UrlUserInfo(text));
    }

    [Fact]
    public void ErrorReference_New_EightLowerHexCharacters()
    {
        var reference = ErrorReference.New();
        Assert.Matches("^[0-9a-f]{8}$", reference);
        Assert.NotEqual(reference, ErrorReference.New());
        Assert.Equal($"internal error (ref {reference}); see the plugin log", ErrorReference.Detail(reference, "plugin"));
    }
}

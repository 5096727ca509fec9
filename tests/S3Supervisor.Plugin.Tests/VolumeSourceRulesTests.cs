using Grpc.Core;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;

namespace S3Supervisor.Plugin.Tests;

/// <summary>The shared source rules (common/), as the supervisor applies them to typed requests.</summary>
public sealed class VolumeSourceRulesTests
{
    [Theory]
    [InlineData("HTTP://127.0.0.1:7480", "http://127.0.0.1:7480")]
    [InlineData("Https://S3.Example.COM/Path", "https://S3.Example.COM/Path")]
    [InlineData("http://127.0.0.1:7480", "http://127.0.0.1:7480")]
    public void Check_UpperCaseScheme_SchemeLowerCasedRestAsWritten(string endpoint, string expected)
    {
        var source = VolumeSourceRules.Check(new VolumeSource { Bucket = "data-bucket", Endpoint = endpoint });
        Assert.Equal(expected, source.Endpoint);
    }

    [Theory]
    [InlineData("umask", "02\\n")]
    [InlineData("storage_class", "STANDARD\\u0000")]
    [InlineData("dbglevel", "info\\r")]
    public void Options_ControlCharacterInStringOption_InvalidArgumentNamingIt(string option, string value)
    {
        var options = new MountOptions();
        var field = MountOptions.Descriptor.FindFieldByName(option);
        field.Accessor.SetValue(options, System.Text.RegularExpressions.Regex.Unescape(value));

        var e = Assert.Throws<RpcException>(() => VolumeSourceRules.Options(options, "source.options"));

        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains($"source.options.{option}", e.Status.Detail);
        Assert.Contains("control characters", e.Status.Detail);
    }
}

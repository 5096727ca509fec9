using System.Diagnostics;
using Csi.V1;
using Grpc.Core;
using S3Supervisor.Common;
using S3Supervisor.TestKit;

namespace S3Supervisor.IntegrationTests.Plugin;

/// <summary>Inputs that are legal but were mishandled, through the real plugin, supervisor, s3fs and RGW.</summary>
[Collection(RgwFixture.Collection)]
public sealed class PluginInputTests : PluginTestBase
{
    public PluginInputTests(RgwFixture rgw)
        : base(rgw)
    {
    }

    /// <summary>RFC 3986 schemes are case-insensitive; s3fs only takes lower case, so the rules lower-case the scheme.</summary>
    [SkippableFact]
    public async Task NodeStageVolume_UpperCaseSchemeEndpoint_StagesAndReads()
    {
        const string id = "upper-scheme";
        await S3.PutObjectTextAsync(Bucket, "upper/hello.txt", "read through HTTP://");
        var context = StaticContext("upper");
        Assert.StartsWith("http://", S3.Endpoint, StringComparison.Ordinal);
        context[VolumeContext.Endpoint] = "HTTP://" + S3.Endpoint["http://".Length..];

        var staging = await StageAsync(id, context);

        Assert.Equal("read through HTTP://", await EventuallyAsync(() => File.ReadAllTextAsync(Path.Combine(staging, "hello.txt"))));
        Assert.StartsWith("http://", (await SupervisorVolumeAsync(id)).Source.Endpoint, StringComparison.Ordinal);
        await UnstageAsync(id);
        Assert.Empty(MountsUnder(Layout.KubeletRoot));
    }

    [SkippableFact]
    public async Task NodeStageVolume_EndpointWithUserInfo_SecretInNeitherLogNorDetail()
    {
        const string secret = "UrlS3cretNeverLogged";
        var context = StaticContext("userinfo");
        context[VolumeContext.Endpoint] = $"http://{S3.AccessKey}:{secret}@{new Uri(S3.Endpoint).Authority}";

        var error = await Assert.ThrowsAsync<RpcException>(() => StageAsync("userinfo", context));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("endpoint", error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, error.Status.Detail, StringComparison.Ordinal);
        // The request line and the failure line are both written before the answer; wait for the failure line anyway.
        var stopwatch = Stopwatch.StartNew();
        while (!Plugin.Output.Contains("failed with InvalidArgument", StringComparison.Ordinal))
        {
            Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(15), Plugin.Output);
            await Task.Delay(50);
        }
        Assert.Contains("NodeStageVolume", Plugin.Output, StringComparison.Ordinal);
        Assert.Contains("***@", Plugin.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, Plugin.Output, StringComparison.Ordinal);
        Assert.Empty(MountsUnder(Layout.KubeletRoot));
    }
}

using System.Net;
using Amazon.S3;
using S3Supervisor.TestKit;
using Xunit.Abstractions;

namespace S3Supervisor.IntegrationTests.TestKit;

[Collection(RgwFixture.Collection)]
public sealed class RgwServerTests(RgwFixture rgw, ITestOutputHelper output)
{
    [SkippableFact]
    public async Task PutObject_ThenGetObject_ReturnsSameText()
    {
        var server = rgw.RequireServer();
        output.WriteLine($"RGW at {server.Endpoint} started in {server.StartupTime.TotalSeconds:0.000} s");
        await server.CreateBucketAsync("roundtrip");

        using var client = server.CreateClient();
        await client.PutObjectAsync(new() { BucketName = "roundtrip", Key = "dir/hello.txt", ContentBody = "hello from the SDK" });

        Assert.Equal("hello from the SDK", await server.GetObjectTextAsync("roundtrip", "dir/hello.txt"));
        Assert.Equal(["dir/hello.txt"], await server.ListKeysAsync("roundtrip"));
        Assert.False(await server.ObjectExistsAsync("roundtrip", "missing.txt"));
    }

    [SkippableFact]
    public async Task ListBuckets_WrongSecretKey_IsRejectedWith403()
    {
        var server = rgw.RequireServer();
        using var client = server.CreateClient(secretKey: server.SecretKey + "-wrong");

        var e = await Assert.ThrowsAsync<AmazonS3Exception>(() => client.ListBucketsAsync());

        Assert.Equal(HttpStatusCode.Forbidden, e.StatusCode);
        Assert.Equal("SignatureDoesNotMatch", e.ErrorCode);
    }

    [SkippableFact]
    public async Task PutObject_UnknownAccessKey_IsRejectedWith403()
    {
        var server = rgw.RequireServer();
        await server.CreateBucketAsync("unknown-key");
        using var client = server.CreateClient(accessKey: "NOSUCHKEY", secretKey: "whatever");

        var e = await Assert.ThrowsAsync<AmazonS3Exception>(() => client.PutObjectAsync(new() { BucketName = "unknown-key", Key = "x", ContentBody = "x" }));

        Assert.Equal(HttpStatusCode.Forbidden, e.StatusCode);
        Assert.Equal("InvalidAccessKeyId", e.ErrorCode);
    }

    [SkippableFact]
    public async Task GetObject_OtherUsersKeys_AreDenied()
    {
        var server = rgw.RequireServer();
        await server.CreateBucketAsync("private-bucket");
        await server.PutObjectTextAsync("private-bucket", "secret.txt", "mine");
        await server.CreateUserAsync("other", "OTHERKEY", "OTHERSECRET");
        using var other = server.CreateClient("OTHERKEY", "OTHERSECRET");

        var e = await Assert.ThrowsAsync<AmazonS3Exception>(() => other.GetObjectAsync("private-bucket", "secret.txt"));

        Assert.Equal(HttpStatusCode.Forbidden, e.StatusCode);
    }
}

using Xunit;

namespace S3Supervisor.TestKit;

/// <summary>
/// One <see cref="RgwServer"/> for a test collection. xunit only finds collection definitions in
/// the test assembly itself, so each test project declares (once):
/// <code>
/// [CollectionDefinition(RgwFixture.Collection)]
/// public sealed class RgwCollection : ICollectionFixture&lt;RgwFixture&gt;;
/// </code>
/// and each test class takes the fixture in its constructor, marks itself
/// <c>[Collection(RgwFixture.Collection)]</c>, and starts each test with
/// <see cref="SkipIfUnavailable"/> (tests must be <c>[SkippableFact]</c>).
/// When this machine cannot run RGW and s3fs (not root, tools or /dev/fuse missing) or the start
/// fails, <see cref="SkipReason"/> says why (with the tail of the Ceph logs) and every test skips,
/// or fails if <see cref="Requires.StrictVariable"/> is 1.
/// </summary>
public sealed class RgwFixture : IAsyncLifetime
{
    public const string Collection = "RGW";

    /// <summary>The running server, or null when <see cref="SkipReason"/> is set.</summary>
    public RgwServer? Server { get; private set; }

    public string? SkipReason { get; private set; }

    /// <summary>Skips (or in strict mode fails) the calling test when the server is not available.</summary>
    public void SkipIfUnavailable() => Requires.Check(SkipReason);

    /// <summary><see cref="SkipIfUnavailable"/>, then the server.</summary>
    public RgwServer RequireServer()
    {
        SkipIfUnavailable();
        return Server ?? throw new InvalidOperationException("RGW is not running");
    }

    public async Task InitializeAsync()
    {
        SkipReason = Prerequisites.RgwAndS3fsMissing();
        if (SkipReason is not null)
        {
            return;
        }

        try
        {
            Server = await RgwServer.StartAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            SkipReason = e.Message;
        }
    }

    public async Task DisposeAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync().ConfigureAwait(false);
            Server = null;
        }
    }
}

using S3Supervisor.TestKit;
using Xunit.Abstractions;

namespace S3Supervisor.IntegrationTests.TestKit;

/// <summary>Servers of its own (not the collection's): two at once must not collide, and dispose must leave nothing.</summary>
public sealed class RgwServerLifecycleTests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task StartAsync_TwoServersAtOnce_BothServe_AndDisposeLeavesNothing()
    {
        Requires.Root();
        Requires.Radosgw();

        var servers = await Task.WhenAll(
            RgwServer.StartAsync(new RgwOptions { Buckets = ["one"], AccessKey = "KEYONE", SecretKey = "SECRETONE" }),
            RgwServer.StartAsync(new RgwOptions { Buckets = ["two"], AccessKey = "KEYTWO", SecretKey = "SECRETTWO" }));
        var pids = servers.SelectMany(s => s.ProcessIds).ToList();
        var directories = servers.Select(s => s.Directory).ToList();
        try
        {
            foreach (var server in servers)
            {
                output.WriteLine($"{server.Endpoint}: ready in {server.StartupTime.TotalSeconds:0.000} s (two starting at once on {Environment.ProcessorCount} cores)");
            }

            Assert.NotEqual(servers[0].Endpoint, servers[1].Endpoint);
            await servers[0].PutObjectTextAsync("one", "k", "1");
            await servers[1].PutObjectTextAsync("two", "k", "2");
            Assert.Equal("1", await servers[0].GetObjectTextAsync("one", "k"));
            Assert.Equal("2", await servers[1].GetObjectTextAsync("two", "k"));
            Assert.Equal(6, pids.Count);
            Assert.All(pids, pid => Assert.True(ProcessInfo.IsRunning(pid)));
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }
        }

        Assert.All(pids, pid => Assert.False(ProcessInfo.IsRunning(pid)));
        Assert.All(directories, d => Assert.False(Directory.Exists(d)));
    }
}

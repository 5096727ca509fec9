using System.Diagnostics;
using Csi.V1;
using Grpc.Core;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;
using Xunit.Abstractions;

namespace S3Supervisor.IntegrationTests.Plugin;

/// <summary>The Node service through the plugin's socket: stage, read-write and read-only publish, stats and the volume condition.</summary>
[Collection(RgwFixture.Collection)]
public sealed class PluginNodeTests : PluginTestBase
{
    private readonly ITestOutputHelper _output;

    public PluginNodeTests(RgwFixture rgw, ITestOutputHelper output)
        : base(rgw)
    {
        _output = output;
    }

    [SkippableFact]
    public async Task Node_StagePublishReadOnly_VolumeStatsAndCondition()
    {
        const string id = "node-stats";
        var context = StaticContext("node/stats");
        Assert.True((await Plugin.Identity.ProbeAsync(new ProbeRequest())).Ready);
        Assert.Equal(NodeName, (await Plugin.Node.NodeGetInfoAsync(new NodeGetInfoRequest())).NodeId);

        var staging = await StageAsync(id, context);
        var rw = await PublishAsync(id, "pod-rw", context);
        var ro = await PublishAsync(id, "pod-ro", context, readOnly: true);
        // Every call is idempotent, as kubelet (requiresRepublish) repeats them.
        await StageAsync(id, context);
        await Plugin.Node.NodePublishVolumeAsync(PublishRequest(id, "pod-ro", ro, context, readOnly: true));

        await File.WriteAllTextAsync(Path.Combine(rw, "hello.txt"), "through the read-write target");
        Assert.Equal("through the read-write target", await S3.GetObjectTextAsync(Bucket, "node/stats/hello.txt"));
        Assert.Equal("through the read-write target", await File.ReadAllTextAsync(Path.Combine(ro, "hello.txt")));
        AssertReadOnly(ro);

        // Healthy: normal on the staging path and on both targets.
        foreach (var path in new[] { staging, rw, ro })
        {
            var condition = await ConditionAsync(id, path);
            Assert.False(condition.Abnormal, condition.Message);
        }
        var unknownPath = await Assert.ThrowsAsync<RpcException>(() => ConditionAsync(id, Layout.TargetPath("pod-other", "pv-x")));
        Assert.Equal(StatusCode.NotFound, unknownPath.StatusCode);
        var unknownVolume = await Assert.ThrowsAsync<RpcException>(() => ConditionAsync("no-such-volume", staging));
        Assert.Equal(StatusCode.NotFound, unknownVolume.StatusCode);

        // kill -9 of the volume's s3fs: the condition may turn abnormal for a moment (with a message), then normal after the heal.
        var before = await SupervisorVolumeAsync(id);
        ProcessTree.Signal(before.Pid, 9);
        var abnormal = new List<string>();
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            var condition = await ConditionAsync(id, rw);
            if (condition.Abnormal)
            {
                Assert.False(string.IsNullOrWhiteSpace(condition.Message));
                abnormal.Add(condition.Message);
            }
            else
            {
                var volume = await SupervisorVolumeAsync(id);
                if (volume.RestartCount >= 1 && volume.Pid != before.Pid)
                {
                    break;
                }
            }
            Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(30), $"the volume did not heal; conditions seen: {string.Join(" | ", abnormal)}\n{Supervisor.Output}");
            await Task.Delay(20);
        }
        _output.WriteLine($"healed after {stopwatch.ElapsedMilliseconds} ms; {abnormal.Count} abnormal condition(s) seen: {abnormal.FirstOrDefault()}");
        foreach (var path in new[] { staging, rw, ro })
        {
            var condition = await ConditionAsync(id, path);
            Assert.False(condition.Abnormal, condition.Message);
        }

        // Both targets work again, and the read-only one is still read-only after the re-bind.
        Assert.Equal("through the read-write target", await EventuallyAsync(() => File.ReadAllTextAsync(Path.Combine(rw, "hello.txt"))));
        await File.WriteAllTextAsync(Path.Combine(rw, "after.txt"), "after the heal");
        Assert.Equal("after the heal", await EventuallyAsync(() => File.ReadAllTextAsync(Path.Combine(ro, "after.txt"))));
        AssertReadOnly(ro);
        Assert.Equal("after the heal", await S3.GetObjectTextAsync(Bucket, "node/stats/after.txt"));
    }

    private static void AssertReadOnly(string target)
    {
        var error = Assert.ThrowsAny<IOException>(() => File.WriteAllText(Path.Combine(target, "nope.txt"), "must not be written"));
        Assert.Contains("Read-only file system", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(target, "nope.txt")));
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;
using Csi.V1;
using Grpc.Core;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;
using Xunit.Abstractions;
using Sv = S3Supervisor.Api.V1;

namespace S3Supervisor.IntegrationTests.Plugin;

/// <summary>
/// The plugin holds no state and mounts nothing: killing it with SIGKILL, any number of times,
/// changes nothing for a published volume, and a new instance finishes what the old one began.
/// </summary>
[Collection(RgwFixture.Collection)]
public sealed class PluginRestartTests : PluginTestBase
{
    private const int Restarts = 10;
    private readonly ITestOutputHelper _output;

    public PluginRestartTests(RgwFixture rgw, ITestOutputHelper output)
        : base(rgw)
    {
        _output = output;
    }

    [SkippableFact]
    public async Task PluginKilled_TenTimesDuringIo_ZeroFailedOperations()
    {
        const string id = "kill-loop";
        var context = StaticContext("kill-loop");
        await StageAsync(id, context);
        var target = await PublishAsync(id, "pod-io", context);
        var stable = Path.Combine(target, "stable.txt");
        await File.WriteAllTextAsync(stable, "written before the first kill");
        var before = await SupervisorVolumeAsync(id);
        Assert.Equal(0, before.RestartCount);

        var io = new IoLoop(target, stable, "written before the first kill");
        var stopwatch = Stopwatch.StartNew();
        var runner = Task.Factory.StartNew(io.Run, TaskCreationOptions.LongRunning);
        try
        {
            var windows = new List<(long Total, long WhileDown, TimeSpan Down)>();
            for (var i = 0; i < Restarts; i++)
            {
                // Let I/O run against a live plugin first, then kill it in the middle of it.
                await WaitForOperationsAsync(io, 2, "I/O against a live plugin");
                var atKill = io.Operations;
                var down = Stopwatch.StartNew();
                await Plugin.KillAsync();
                // kubelet restarts a crashed container after a back-off; stay dead while some I/O completes.
                await WaitForOperationsAsync(io, 2, "I/O while the plugin is down");
                var plugin = await StartPluginAsync();
                down.Stop();
                var whileDown = io.Operations - atKill;

                // The new instance answers kubelet's periodic calls for the volume it never saw staged.
                Assert.True((await plugin.Identity.ProbeAsync(new ProbeRequest())).Ready);
                var condition = await ConditionAsync(id, target);
                Assert.False(condition.Abnormal, condition.Message);
                await plugin.Node.NodePublishVolumeAsync(PublishRequest(id, "pod-io", target, context));
                windows.Add((io.Operations - atKill, whileDown, down.Elapsed));
            }
            await WaitForOperationsAsync(io, 2, "I/O after the last restart");
            io.Stop();
            await runner.WaitAsync(TimeSpan.FromSeconds(30));
            stopwatch.Stop();

            _output.WriteLine($"{Restarts} kill -9 + restart cycles in {stopwatch.Elapsed.TotalSeconds:0.0} s: {io.Operations} operations (write+read+verify, each one checked), {io.Failures.Count} failed");
            foreach (var (w, index) in windows.Select((w, index) => (w, index)))
            {
                _output.WriteLine($"  cycle {index + 1}: plugin down {w.Down.TotalMilliseconds:0} ms, {w.WhileDown} ops while down, {w.Total} ops in the cycle");
            }
            Assert.True(io.Failures.IsEmpty, $"{io.Failures.Count} of {io.Operations} operations failed: {string.Join(" | ", io.Failures.Take(5))}");
            Assert.All(windows, w => Assert.True(w.WhileDown > 0, $"no I/O completed while the plugin was down ({w.Down.TotalMilliseconds:0} ms)"));
            Assert.True(io.Operations >= Restarts * 5, $"only {io.Operations} operations");
        }
        finally
        {
            io.Stop();
            await runner.WaitAsync(TimeSpan.FromSeconds(30));
        }

        // A plugin restart never needs recovery: same s3fs, same FUSE connection, no restart.
        var after = await SupervisorVolumeAsync(id);
        Assert.Equal(before.Pid, after.Pid);
        Assert.Equal(before.Device, after.Device);
        Assert.Equal(0, after.RestartCount);
        Assert.Equal(Sv.VolumeState.Ready, after.State);
        Assert.Single(after.Targets);
        Assert.Equal(Restarts + 1, PluginStarts);
        Assert.Equal("written before the first kill", await S3.GetObjectTextAsync(Bucket, "kill-loop/stable.txt"));
    }

    [SkippableFact]
    public async Task PluginRestart_UnpublishUnstageOfOldInstanceVolumes_Work()
    {
        var first = Plugin;
        var context = StaticContext("old-instance");
        await StageAsync("old-a", context, first);
        var targetA = await PublishAsync("old-a", "pod-a", context, plugin: first);
        var targetB = await PublishAsync("old-a", "pod-b", context, readOnly: true, plugin: first);
        await StageAsync("old-b", StaticContext("old-instance-b"), first);
        await File.WriteAllTextAsync(Path.Combine(targetA, "kept.txt"), "survives the unstage");
        var pidA = (await SupervisorVolumeAsync("old-a")).Pid;
        var pidB = (await SupervisorVolumeAsync("old-b")).Pid;

        await first.KillAsync();
        var second = await StartPluginAsync();

        await UnpublishAsync("old-a", targetA, second);
        await UnpublishAsync("old-a", targetB, second);
        await UnstageAsync("old-a", second);
        await UnstageAsync("old-b", second);

        Assert.Empty(MountsUnder(Layout.KubeletRoot));
        Assert.Empty(Supervisor.Children());
        Assert.False(ProcessTree.Alive(pidA));
        Assert.False(ProcessTree.Alive(pidB));
        Assert.Empty((await Supervisor.Client.ListVolumesAsync(new Sv.ListVolumesRequest())).Volumes);
        var gone = await Assert.ThrowsAsync<RpcException>(() => ConditionAsync("old-a", targetA, second));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        // Idempotent, as kubelet retries them.
        await UnpublishAsync("old-a", targetA, second);
        await UnstageAsync("old-a", second);
        Assert.Equal("survives the unstage", await S3.GetObjectTextAsync(Bucket, "old-instance/kept.txt"));
    }

    /// <summary>Waits until the loop has completed <paramref name="count"/> more operations (or one failed: the test then says which).</summary>
    private static Task WaitForOperationsAsync(IoLoop io, int count, string describe)
    {
        var from = io.Operations;
        return Eventually.WaitAsync(() => io.Operations >= from + count || !io.Failures.IsEmpty, Eventually.DefaultTimeout, $"{count} operations: {describe}", () => $"{io.Operations - from} done, failures: {string.Join(" | ", io.Failures)}");
    }

    /// <summary>Writes, reads back and verifies files through a published target, in a loop, counting every failure.</summary>
    private sealed class IoLoop(string directory, string stableFile, string stableContent)
    {
        private long _operations;
        private volatile bool _stop;

        public long Operations => Interlocked.Read(ref _operations);

        public ConcurrentQueue<string> Failures { get; } = new();

        public void Stop() => _stop = true;

        public void Run()
        {
            for (var i = 0; !_stop; i++)
            {
                var path = Path.Combine(directory, $"file-{i % 8}.txt");
                var content = $"operation {i} {Guid.NewGuid():N}";
                try
                {
                    File.WriteAllText(path, content);
                    var read = File.ReadAllText(path);
                    if (read != content)
                    {
                        Failures.Enqueue($"op {i}: read back \"{read}\" instead of \"{content}\"");
                    }
                    var stable = File.ReadAllText(stableFile);
                    if (stable != stableContent)
                    {
                        Failures.Enqueue($"op {i}: {stableFile} holds \"{stable}\"");
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Failures.Enqueue($"op {i}: {e.GetType().Name}: {e.Message}");
                }
                Interlocked.Increment(ref _operations);
            }
        }
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;
using Xunit.Abstractions;

namespace S3Supervisor.IntegrationTests.Supervisor;

/// <summary>
/// The promise of issue 9: a supervisor restart costs nothing. The supervisor runs in a stand-in
/// container's cgroup and is killed the way a runtime kills a container (SIGKILL to every process in
/// that cgroup), or stopped with SIGTERM for an upgrade; its s3fs children live in their volumes' own
/// cgroups outside it. Twenty volumes, published into four stand-in app containers that read and
/// write all the while.
/// </summary>
[Collection(RgwFixture.Collection)]
public sealed class ZeroGapRestartTests : SupervisorTestBase
{
    private const int Volumes = 20;
    private const int Containers = 4;

    private readonly ITestOutputHelper _output;

    public ZeroGapRestartTests(RgwFixture rgw, ITestOutputHelper output)
        : base(rgw)
    {
        _output = output;
    }

    protected override bool SupervisorInOwnCgroup => true;

    public override async Task InitializeAsync()
    {
        Requires.Cgroups();
        Requires.MountNamespaces();
        await base.InitializeAsync();
    }

    [SkippableTheory]
    [InlineData("container killed")]
    [InlineData("SIGTERM (upgrade)")]
    public async Task SupervisorRestart_TwentyVolumesUnderIo_ZeroFailedOperationsSamePidsOpenFileWorksAllReadyAtFirstAnswer(string how)
    {
        var ids = Enumerable.Range(0, Volumes).Select(i => $"vol-gap-{i:00}").ToArray();
        var targets = new string[Volumes];
        var before = new Dictionary<string, int>();
        foreach (var (id, i) in ids.Select((id, i) => (id, i)))
        {
            before[id] = (await StageAsync(id, prefix: id)).Pid;
            targets[i] = await PublishAsync(id, $"pod-gap-{i % Containers}");
        }
        var containers = new List<StandInContainer>();
        // Declared before the first start: a container that started is disposed even if a later one fails to.
        await using var cleanup = new ContainerSet(containers);
        for (var c = 0; c < Containers; c++)
        {
            containers.Add(await StandInContainer.StartAsync($"gap-{c}", Enumerable.Range(0, Volumes).Where(i => i % Containers == c).Select(i => new VolumeMountSpec(targets[i], $"/data/v{i:00}"))));
        }
        await using var held = new FileStream(Path.Combine(targets[0], "held-open.txt"), FileMode.Create, FileAccess.ReadWrite, FileShare.ReadWrite);
        held.Write("before "u8);
        held.Flush();
        var io = new ContainerIo(containers);
        var loops = io.Start();
        long atDown = 0;
        long during;
        SupervisorProcess next;
        TimeSpan firstAnswer;
        try
        {
            await io.WaitForSuccessesAsync(Volumes * 2, "before the restart");

            // From the moment the supervisor is gone until the next one starts: its children live on,
            // and the containers' I/O succeeds (waited for while it lasts, not counted afterwards).
            async Task WhileDown()
            {
                atDown = io.Successes;
                Assert.All(before.Values, pid => Assert.True(ProcessTree.Alive(pid), $"s3fs pid {pid} died with the supervisor ({how})"));
                await io.WaitForSuccessesAsync(Volumes * 2, "while the node has no supervisor");
            }
            if (how == "container killed")
            {
                await Supervisor.KillCgroupAndWaitLikeARuntimeAsync(whileDown: WhileDown);
            }
            else
            {
                Assert.Equal(0, await Supervisor.StopAndWaitLikeARuntimeAsync(whileDown: WhileDown));
            }
            during = io.Successes - atDown;
            var spawned = Stopwatch.StartNew();
            next = await StartSupervisorAsync();
            firstAnswer = spawned.Elapsed;
            await io.WaitForSuccessesAsync(Volumes * 2, "after the restart");
        }
        finally
        {
            io.Stop();
            await loops;
        }

        Assert.True(io.Failures.IsEmpty, $"{io.Failures.Count} of {io.Operations} operations failed ({how}): {string.Join("; ", io.Failures.Take(5))}");
        Assert.True(during > 0, "no operation succeeded while the node had no supervisor");
        // The reply the start waited for, not a later call: Ready and adopted at the first answer.
        var first = next.FirstListVolumes;
        Assert.NotNull(first);
        Assert.Equal(ids, first.Volumes.Select(v => v.VolumeId).Order(StringComparer.Ordinal));
        Assert.All(first.Volumes, v =>
        {
            Assert.Equal(VolumeState.Ready, v.State);
            Assert.True(v.Adopted, $"{v.VolumeId} not adopted");
            Assert.Equal(before[v.VolumeId], v.Pid);
        });
        held.Write("after"u8);
        held.Flush();
        held.Seek(0, SeekOrigin.Begin);
        var buffer = new byte[64];
        Assert.Equal("before after", System.Text.Encoding.UTF8.GetString(buffer, 0, held.Read(buffer)));
        await Eventually.WaitAsync(() => next.Output.Contains($"Adopted {Volumes} of {Volumes} s3fs processes", StringComparison.Ordinal), Eventually.DefaultTimeout, $"the new supervisor logs that it adopted all {Volumes}", () => next.Output);
        _output.WriteLine($"{how}: {io.Successes} operations succeeded, 0 failed, {during} of them while no supervisor ran; first ListVolumes answered {firstAnswer.TotalMilliseconds:0} ms after the new supervisor was spawned, all {Volumes} Ready and adopted");
    }

    /// <summary>One shell per container writes and reads a file in each of its volumes, over and over; every failed step counts, and only what succeeded counts as done.</summary>
    private sealed class ContainerIo(IReadOnlyList<StandInContainer> containers)
    {
        private long _operations;
        private long _successes;
        private volatile bool _stop;

        /// <summary>Volume operations tried (a failed exec counts every volume of its container).</summary>
        public long Operations => Interlocked.Read(ref _operations);

        /// <summary>Volume operations that succeeded (written, read back, the same).</summary>
        public long Successes => Interlocked.Read(ref _successes);

        public ConcurrentQueue<string> Failures { get; } = new();

        public void Stop() => _stop = true;

        public Task Start() => Task.WhenAll(containers.Select(c => Task.Run(() => RunAsync(c))));

        public Task WaitForSuccessesAsync(long count, string describe)
        {
            var from = Successes;
            return Eventually.WaitAsync(() => Successes >= from + count, TimeSpan.FromSeconds(60), $"{count} successful operations {describe}", () => $"{Successes - from} succeeded, {Failures.Count} failed");
        }

        private async Task RunAsync(StandInContainer container)
        {
            var volumes = container.Mounts.Select(m => m.ContainerPath).ToArray();
            for (var i = 0; !_stop; i++)
            {
                // One exec covers every volume of the container: write, read back, compare.
                var script = string.Join(" && ", volumes.Select(v => $"echo {i} > {v}/io.txt && [ \"$(cat {v}/io.txt)\" = {i} ]"));
                try
                {
                    var (code, _, stderr) = await container.ExecAsync("/bin/sh", "-c", script);
                    if (code == 0)
                    {
                        Interlocked.Add(ref _successes, volumes.Length);
                    }
                    else
                    {
                        Failures.Enqueue($"{container.Name} round {i}: exit {code}: {stderr.Trim()}");
                    }
                }
                catch (Exception e) when (e is ContainerExecException or IOException or TimeoutException)
                {
                    Failures.Enqueue($"{container.Name} round {i}: {e.Message}");
                }
                Interlocked.Add(ref _operations, volumes.Length);
            }
        }
    }

    private sealed class ContainerSet(List<StandInContainer> containers) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            foreach (var container in containers)
            {
                await container.DisposeAsync();
            }
        }
    }
}

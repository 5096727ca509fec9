using System.Diagnostics;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.IntegrationTests.Supervisor;

/// <summary>
/// A supervisor that restarts while its s3fs children live on (a SIGTERM for an upgrade, or a death
/// that spares children outside its container's cgroup): the next one adopts every child as it is.
/// Same pids, mounts never touched, a file held open across the restart keeps working.
/// </summary>
[Collection(RgwFixture.Collection)]
public sealed class ChildAdoptionTests : SupervisorTestBase
{
    public ChildAdoptionTests(RgwFixture rgw)
        : base(rgw)
    {
    }

    [SkippableFact]
    public async Task SigtermAndRestart_ChildrenAdoptedReadyAtFirstAnswerSamePidsOpenFileStillWorks()
    {
        var volumes = new[] { "vol-adopt-a", "vol-adopt-b", "vol-adopt-c" };
        var before = new Dictionary<string, Volume>();
        foreach (var id in volumes)
        {
            before[id] = await StageAsync(id, prefix: id);
        }
        var target = await PublishAsync("vol-adopt-a", "pod-adopt");
        await using var held = new FileStream(Path.Combine(target, "held-open.txt"), FileMode.Create, FileAccess.ReadWrite, FileShare.ReadWrite);
        held.Write("before "u8);
        held.Flush();

        await Supervisor.StopAndWaitLikeARuntimeAsync();
        var next = await StartSupervisorAsync();
        // The reply the start waited for, not a later call: Ready and adopted at the first answer.
        var first = next.FirstListVolumes;

        Assert.NotNull(first);
        Assert.True(first.Volumes.Count == volumes.Length, $"first ListVolumes: {first}\n{next.Output}");
        Assert.Equal(volumes, first.Volumes.Select(v => v.VolumeId).Order(StringComparer.Ordinal));
        foreach (var volume in first.Volumes)
        {
            Assert.Equal(VolumeState.Ready, volume.State);
            Assert.True(volume.Adopted, $"{volume.VolumeId} was not adopted: {volume}");
            Assert.Equal(before[volume.VolumeId].Pid, volume.Pid);
            Assert.Equal(before[volume.VolumeId].Device, volume.Device);
        }
        Assert.Single(first.Volumes.Single(v => v.VolumeId == "vol-adopt-a").Targets);
        // The descriptor opened before the restart still reads and writes through the same connection.
        held.Write("after"u8);
        held.Flush();
        held.Seek(0, SeekOrigin.Begin);
        var buffer = new byte[64];
        var read = held.Read(buffer);
        Assert.Equal("before after", System.Text.Encoding.UTF8.GetString(buffer, 0, read));
        await Eventually.WaitAsync(() => next.Output.Contains("Adopted 3 of 3 s3fs processes", StringComparison.Ordinal), Eventually.DefaultTimeout, "the new supervisor logs that it adopted all 3", () => next.Output);
    }

    [SkippableFact]
    public async Task SupervisorKilledAlone_AdoptedChildKilledLater_HealedByTheNewSupervisor()
    {
        var staged = await StageAsync("vol-adopt-heal");
        var target = await PublishAsync("vol-adopt-heal", "pod-heal");
        await Supervisor.KillSupervisorOnlyAndWaitAsync();
        var next = await StartSupervisorAsync();
        var adopted = await next.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = "vol-adopt-heal" });
        Assert.True(adopted.Adopted);
        Assert.Equal(staged.Pid, adopted.Pid);

        // Not our child any more: its exit is seen through its pidfd.
        ProcessTree.Signal(staged.Pid, 9);
        var healed = await next.WaitForStateAsync("vol-adopt-heal", VolumeState.Ready, TimeSpan.FromSeconds(60), v => v.Pid != staged.Pid && v.Pid != 0);

        Assert.False(healed.Adopted);
        Assert.Equal(1, healed.RestartCount);
        await EventuallyAsync(() =>
        {
            File.WriteAllText(Path.Combine(target, "after-heal.txt"), "ok");
            return true;
        }, TimeSpan.FromSeconds(15));
        Assert.True(await S3.ObjectExistsAsync(Bucket, "after-heal.txt"));
        // The journal names the new child, so a second restart adopts it in turn.
        var journal = await File.ReadAllTextAsync(Path.Combine(Layout.StateDirectory, "journal.json"));
        Assert.Contains($"\"pid\": {healed.Pid}", journal, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Restart_AdoptedVolumeUnstaged_ItsS3fsStopsAndNothingIsLeft()
    {
        var staged = await StageAsync("vol-adopt-unstage");
        await Supervisor.StopAndWaitLikeARuntimeAsync();
        var next = await StartSupervisorAsync();

        await next.Client.UnstageVolumeAsync(new UnstageVolumeRequest { VolumeId = "vol-adopt-unstage", StagingPath = Layout.StagingPath("vol-adopt-unstage") });

        await ProcessTree.WaitGoneAsync([staged.Pid], TimeSpan.FromSeconds(30));
        Assert.False(ProcessTree.Alive(staged.Pid));
        Assert.DoesNotContain(MountsUnder(Layout.Root), m => !m.StartsWith(Layout.SecretsDirectory, StringComparison.Ordinal));
        Assert.Empty((await next.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes);
    }

    [SkippableFact]
    public async Task Restart_ChildDiedMeanwhile_NotAdoptedAndReportedForTheRebuild()
    {
        var staged = await StageAsync("vol-adopt-dead");
        await Supervisor.StopAsync();
        ProcessTree.Signal(staged.Pid, 9);
        await ProcessTree.WaitGoneAsync([staged.Pid], TimeSpan.FromSeconds(10));
        await SupervisorProcess.RestartGapAsync();

        var next = await StartSupervisorAsync();

        await Eventually.WaitAsync(() => next.Output.Contains("not adopted: the process has exited", StringComparison.Ordinal), Eventually.DefaultTimeout, "the new supervisor says why it did not adopt the dead child", () => next.Output);
        // It went to the rebuild, which (this supervisor is not told kubelet's root) drops it, and says so.
        await Eventually.WaitAsync(() => next.Output.Contains("vol-adopt-dead dropped", StringComparison.Ordinal), TimeSpan.FromSeconds(30), "the rebuild reports what it did with the volume", () => next.Output);
        Assert.DoesNotContain((await next.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes, v => v.VolumeId == "vol-adopt-dead");
    }

    [SkippableFact]
    public async Task SupervisorRestart_LongLivedClientChannelFailedMeanwhile_FirstCallAfterRestartSucceeds()
    {
        await StageAsync("vol-channel");
        // The plugin's kind of channel: one for its whole life, which saw the supervisor go away.
        using var channel = S3Supervisor.Common.UnixSocketChannel.Create(Layout.SocketPath, TimeSpan.FromSeconds(2));
        var client = new S3Supervisor.Api.V1.Supervisor.SupervisorClient(channel);
        await client.ListVolumesAsync(new ListVolumesRequest());
        await Supervisor.KillSupervisorOnlyAsync();
        var failed = 0;
        var down = Stopwatch.StartNew();
        while (down.Elapsed < SupervisorProcess.RestartDelay)
        {
            try
            {
                await client.ListVolumesAsync(new ListVolumesRequest(), deadline: DateTime.UtcNow.AddSeconds(1));
            }
            catch (Grpc.Core.RpcException e) when (e.StatusCode is Grpc.Core.StatusCode.Unavailable or Grpc.Core.StatusCode.DeadlineExceeded)
            {
                failed++;
            }
            await Task.Delay(100);
        }
        Assert.True(failed > 0, "no call failed while the supervisor was down");

        await StartSupervisorAsync();

        // Not retried: a channel left in a grown reconnect back-off would answer UNAVAILABLE here.
        var list = await client.ListVolumesAsync(new ListVolumesRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
        Assert.Single(list.Volumes);
    }

    [SkippableFact]
    public async Task Start_JournalUnreadable_ServesAnywayAndSaysSo()
    {
        await Supervisor.StopAsync();
        await File.WriteAllTextAsync(Path.Combine(Layout.StateDirectory, "journal.json"), "{ this is not a journal");

        var next = await StartSupervisorAsync();

        Assert.Empty((await next.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes);
        await Eventually.WaitAsync(() => next.Output.Contains("The journal cannot be read", StringComparison.Ordinal), Eventually.DefaultTimeout, "the supervisor says the journal cannot be read", () => next.Output);
    }
}

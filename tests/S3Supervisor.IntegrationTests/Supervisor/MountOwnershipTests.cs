using System.Diagnostics;
using Grpc.Core;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Interop;

namespace S3Supervisor.IntegrationTests.Supervisor;

/// <summary>
/// Data safety around who owns a mount: publish binds only the live FUSE mount of its own volume,
/// only the volume that owns a mount may remove it, a heal never loses files found on the node's
/// disk, and a target never lies inside another volume's files.
/// </summary>
[Collection(RgwFixture.Collection)]
public sealed class MountOwnershipTests : SupervisorTestBase
{
    public MountOwnershipTests(RgwFixture rgw)
        : base(rgw)
    {
    }

    [SkippableFact]
    public async Task PublishVolume_StagingMountGoneBeforeHealthCheck_NeverBindsTheBareDirectory()
    {
        // A health check far away: only the publish itself can notice the missing staging mount.
        await RestartWithSettingsAsync(new Dictionary<string, string> { ["Supervisor__HealthCheckInterval"] = "00:10:00" });
        var staged = await StageAsync("vol-bare", prefix: "bare");
        Assert.Equal(0, Native.UnmountDetach(staged.StagingPath));
        var target = Layout.TargetPath("pod-bare", "pv-bare");

        var first = await Record(() => Supervisor.Client.PublishVolumeAsync(new PublishVolumeRequest { VolumeId = "vol-bare", TargetPath = target }).ResponseAsync);

        // Either refused as transient, or (if the heal already ran) bound to a FUSE mount: never the node's disk.
        if (first is not null)
        {
            Assert.Equal(StatusCode.Unavailable, first.StatusCode);
            Assert.Contains("volume_id", first.Status.Detail, StringComparison.Ordinal);
            Assert.Null(MountTable.Find(target));
        }
        var healed = await Supervisor.WaitForStateAsync("vol-bare", VolumeState.Ready, TimeSpan.FromSeconds(60), v => v.RestartCount >= 1);
        await EventuallyPublishAsync("vol-bare", target);
        var mount = MountTable.Find(target);
        Assert.NotNull(mount);
        Assert.StartsWith("fuse", mount.FileSystemType, StringComparison.Ordinal);
        Assert.Equal(healed.Device, mount.Device);
        await File.WriteAllTextAsync(Path.Combine(target, "through-target.txt"), "to S3");
        Assert.Equal("to S3", await S3.GetObjectTextAsync(Bucket, "bare/through-target.txt"));
    }

    [SkippableFact]
    public async Task Heal_StrayFilesInTheUnmountedStagingDirectory_MovedAsideReportedAndHealed()
    {
        var staged = await StageAsync("vol-stray", prefix: "stray");
        await PublishAsync("vol-stray", "pod-stray");
        var events = Supervisor.Client.WatchVolumes(new WatchVolumesRequest { VolumeId = "vol-stray" });
        var reasons = CollectReasons(events);
        Assert.Equal(0, Native.UnmountDetach(staged.StagingPath));
        // Something wrote to the node's disk while no mount covered the staging directory.
        await File.WriteAllTextAsync(Path.Combine(staged.StagingPath, "lost.txt"), "written to the node's disk");

        var healed = await Supervisor.WaitForStateAsync("vol-stray", VolumeState.Ready, TimeSpan.FromSeconds(60), v => v.RestartCount >= 1);

        Assert.NotEqual(staged.Device, healed.Device);
        var stray = Directory.GetFiles(Path.Combine(Layout.StateDirectory, "stray"), "lost.txt", SearchOption.AllDirectories);
        Assert.Equal("written to the node's disk", await File.ReadAllTextAsync(Assert.Single(stray)));
        await WaitUntilAsync(() => reasons.Contains("StrayFilesMovedAside"), TimeSpan.FromSeconds(15), "a StrayFilesMovedAside event");
        Assert.Contains("moved to", Supervisor.Output, StringComparison.Ordinal);
        Assert.False(await S3.ObjectExistsAsync(Bucket, "stray/lost.txt"));
        await File.WriteAllTextAsync(Path.Combine(staged.StagingPath, "after.txt"), "healed");
        Assert.Equal("healed", await S3.GetObjectTextAsync(Bucket, "stray/after.txt"));
        events.Dispose();
    }

    [SkippableFact]
    public async Task UnpublishVolume_UnknownIdOnAnotherVolumesTarget_FailedPreconditionNamingTheOwnerTargetKept()
    {
        await StageAsync("vol-own", prefix: "own");
        var target = await PublishAsync("vol-own", "pod-own");

        var error = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.UnpublishVolumeAsync(new UnpublishVolumeRequest { VolumeId = "someone-else", TargetPath = target }).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("target_path", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("vol-own", error.Status.Detail, StringComparison.Ordinal);
        Assert.NotNull(MountTable.Find(target));
        await File.WriteAllTextAsync(Path.Combine(target, "still.txt"), "still mounted");
        Assert.Equal("still mounted", await S3.GetObjectTextAsync(Bucket, "own/still.txt"));
    }

    [SkippableFact]
    public async Task UnstageVolume_UnknownIdOnAnotherVolumesStagingPath_FailedPreconditionStagingKept()
    {
        var staged = await StageAsync("vol-own2", prefix: "own2");

        var error = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.UnstageVolumeAsync(new UnstageVolumeRequest { VolumeId = "someone-else", StagingPath = staged.StagingPath }).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("staging_path", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("vol-own2", error.Status.Detail, StringComparison.Ordinal);
        Assert.NotNull(MountTable.Find(staged.StagingPath));
        var volume = await Supervisor.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = "vol-own2" });
        Assert.Equal(VolumeState.Ready, volume.State);
        Assert.Equal(staged.Pid, volume.Pid);
    }

    [SkippableFact]
    public async Task UnpublishVolume_StagingPathGivenAsTarget_FailedPreconditionStagingKept()
    {
        var staged = await StageAsync("vol-own3", prefix: "own3");

        var error = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.UnpublishVolumeAsync(new UnpublishVolumeRequest { VolumeId = "vol-own3", TargetPath = staged.StagingPath }).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("target_path", error.Status.Detail, StringComparison.Ordinal);
        Assert.NotNull(MountTable.Find(staged.StagingPath));
        await File.WriteAllTextAsync(Path.Combine(staged.StagingPath, "ok.txt"), "staging still serves");
        Assert.Equal("staging still serves", await S3.GetObjectTextAsync(Bucket, "own3/ok.txt"));
    }

    [SkippableFact]
    public async Task UnpublishAndUnstage_UnknownIdNothingMounted_IdempotentOk()
    {
        var target = Layout.TargetPath("pod-none", "pv-none");
        Directory.CreateDirectory(target);

        await Supervisor.Client.UnpublishVolumeAsync(new UnpublishVolumeRequest { VolumeId = "never", TargetPath = target });
        await Supervisor.Client.UnpublishVolumeAsync(new UnpublishVolumeRequest { VolumeId = "never", TargetPath = target });
        await Supervisor.Client.UnstageVolumeAsync(new UnstageVolumeRequest { VolumeId = "never", StagingPath = Layout.StagingPath("never") });

        Assert.False(Directory.Exists(target));
        Assert.Empty(MountsUnder(Layout.KubeletRoot));
    }

    [SkippableFact]
    public async Task UnpublishVolume_Published_DeletesTheTargetDirectoryItCreated()
    {
        await StageAsync("vol-rm", prefix: "rm");
        var target = await PublishAsync("vol-rm", "pod-rm");
        Assert.True(Directory.Exists(target));

        await Supervisor.Client.UnpublishVolumeAsync(new UnpublishVolumeRequest { VolumeId = "vol-rm", TargetPath = target });

        Assert.False(Directory.Exists(target));
        Assert.True(Directory.Exists(Path.GetDirectoryName(target)), "the parent is kubelet's, not ours to remove");
        // A retry after success stays OK.
        await Supervisor.Client.UnpublishVolumeAsync(new UnpublishVolumeRequest { VolumeId = "vol-rm", TargetPath = target });
    }

    [SkippableFact]
    public async Task PublishVolume_TargetInsideAnotherVolumesFuseMount_PermissionDeniedNothingCreatedInS3()
    {
        var host = await StageAsync("vol-host", prefix: "host");
        await StageAsync("vol-guest", prefix: "guest");
        var inside = Path.Combine(host.StagingPath, "inner", "mount");
        var existing = Path.Combine(host.StagingPath, "existing");
        Directory.CreateDirectory(existing);

        foreach (var target in new[] { inside, existing })
        {
            var error = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.PublishVolumeAsync(new PublishVolumeRequest { VolumeId = "vol-guest", TargetPath = target }).ResponseAsync);
            Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
            Assert.Contains("target_path", error.Status.Detail, StringComparison.Ordinal);
            Assert.Contains("FUSE", error.Status.Detail, StringComparison.Ordinal);
        }

        Assert.False(Directory.Exists(Path.Combine(host.StagingPath, "inner")));
        Assert.DoesNotContain(await S3.ListKeysAsync(Bucket, "host/"), k => k.StartsWith("host/inner", StringComparison.Ordinal));
        Assert.Equal(2, MountsUnder(Layout.KubeletRoot).Count);
    }

    private async Task RestartWithSettingsAsync(IDictionary<string, string> settings)
    {
        await Supervisor.DisposeAsync();
        await StartSupervisorAsync(settings);
    }

    private async Task EventuallyPublishAsync(string volumeId, string target)
    {
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await Supervisor.Client.PublishVolumeAsync(new PublishVolumeRequest { VolumeId = volumeId, TargetPath = target });
                return;
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.Aborted && stopwatch.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(100);
            }
        }
    }

    private static async Task<RpcException?> Record(Func<Task> call)
    {
        try
        {
            await call();
            return null;
        }
        catch (RpcException e)
        {
            return e;
        }
    }

    private static System.Collections.Concurrent.ConcurrentBag<string> CollectReasons(AsyncServerStreamingCall<VolumeEvent> call)
    {
        var reasons = new System.Collections.Concurrent.ConcurrentBag<string>();
        _ = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in call.ResponseStream.ReadAllAsync())
                {
                    reasons.Add(e.Reason);
                }
            }
            catch (RpcException)
            {
            }
        });
        return reasons;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            if (condition())
            {
                return;
            }
            if (stopwatch.Elapsed > timeout)
            {
                throw new TimeoutException($"waited {timeout} for {what}");
            }
            await Task.Delay(50);
        }
    }
}

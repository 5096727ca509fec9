using System.Diagnostics;
using System.Globalization;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.IntegrationTests.Supervisor;

/// <summary>
/// Each volume's s3fs runs in a cgroup of its own with a memory limit: over it, the kernel kills that
/// s3fs alone, the supervisor says so and heals it, and every other volume keeps its s3fs.
/// </summary>
[Collection(RgwFixture.Collection)]
public sealed class ChildMemoryLimitTests : SupervisorTestBase
{
    private const ulong Limit = 48UL * 1024 * 1024;

    public ChildMemoryLimitTests(RgwFixture rgw)
        : base(rgw)
    {
    }

    public override async Task InitializeAsync()
    {
        Requires.Cgroups();
        await base.InitializeAsync();
    }

    [SkippableFact]
    public async Task VolumeOverItsMemoryLimit_OomKilledAloneReportedAndHealed_OtherVolumeKeepsItsPid()
    {
        // The hierarchy that limits memory, found as the supervisor should find it: v1 memory, else cgroup2 with memory.
        var hierarchy = TestCgroup.MemoryMountPoint();
        Requires.Check(hierarchy is null ? $"no cgroup hierarchy at or under {TestCgroup.Root} offers the memory controller (see /proc/self/mountinfo)" : null);
        var v2 = hierarchy == TestCgroup.UnifiedMountPoint();
        var (limitFile, oomFile) = v2 ? ("memory.max", "memory.events") : ("memory.limit_in_bytes", "memory.oom_control");
        var memory = Path.Combine(hierarchy!, SupervisorProcess.ChildCgroupParent(Layout));
        var hungry = await StageWithLimitAsync("vol-oom");
        var other = await StageWithLimitAsync("vol-oom-other");
        Assert.Equal(Limit.ToString(CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(memory, hungry.Cgroup, limitFile)).Trim());

        // Something in s3fs's cgroup eats memory (a stand-in for a runaway s3fs: no s3fs request makes it
        // grow on demand). s3fs is made the kernel's first choice so that the victim is known.
        File.WriteAllText($"/proc/{hungry.Pid}/oom_score_adj", "1000");
        using var hog = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", $"echo $$ > {Path.Combine(memory, hungry.Cgroup, "cgroup.procs")} && exec tail /dev/zero"]) { UseShellExecute = false })!;
        try
        {
            await ProcessTree.WaitGoneAsync([hungry.Pid], TimeSpan.FromSeconds(60));
            Assert.False(ProcessTree.Alive(hungry.Pid), $"s3fs pid {hungry.Pid} outlived its memory limit");
        }
        finally
        {
            hog.Kill();
            await hog.WaitForExitAsync();
        }

        var healed = await Supervisor.WaitForStateAsync("vol-oom", VolumeState.Ready, TimeSpan.FromSeconds(60), v => v.Pid != hungry.Pid && v.Pid != 0);
        Assert.Equal(1, healed.RestartCount);
        Assert.Equal(hungry.Cgroup, healed.Cgroup);
        Assert.Contains(healed.Pid.ToString(CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(memory, healed.Cgroup, "cgroup.procs")).Split('\n'));
        Assert.True(long.Parse(File.ReadAllLines(Path.Combine(memory, hungry.Cgroup, oomFile)).Single(l => l.StartsWith("oom_kill ", StringComparison.Ordinal))[9..], CultureInfo.InvariantCulture) >= 1);
        await Eventually.WaitAsync(() => Supervisor.Output.Contains("exceeding its memory limit (48 MiB)", StringComparison.Ordinal), Eventually.DefaultTimeout, "the supervisor says the s3fs exceeded its memory limit", () => Supervisor.Output);
        var after = await Supervisor.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = "vol-oom-other" });
        Assert.Equal(other.Pid, after.Pid);
        Assert.Equal(0, after.RestartCount);
    }

    private async Task<Volume> StageWithLimitAsync(string volumeId)
    {
        var source = Source(prefix: volumeId);
        source.Options.MemoryLimitBytes = Limit;
        var response = await Supervisor.Client.StageVolumeAsync(new StageVolumeRequest
        {
            VolumeId = volumeId,
            StagingPath = Layout.StagingPath(volumeId),
            Source = source,
            Credentials = Credentials(),
        });
        return response.Volume;
    }
}

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
        var memory = Path.Combine("/sys/fs/cgroup/memory", SupervisorProcess.ChildCgroupParent(Layout));
        Skip.IfNot(Directory.Exists("/sys/fs/cgroup/memory"), "no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory (the v2 path is covered by ChildCgroups' own tests)");
        var hungry = await StageWithLimitAsync("vol-oom");
        var other = await StageWithLimitAsync("vol-oom-other");
        Assert.Equal(Limit.ToString(CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(memory, hungry.Cgroup, "memory.limit_in_bytes")).Trim());

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
        Assert.True(long.Parse(File.ReadAllLines(Path.Combine(memory, hungry.Cgroup, "memory.oom_control")).Single(l => l.StartsWith("oom_kill ", StringComparison.Ordinal))[9..], CultureInfo.InvariantCulture) >= 1);
        Assert.Contains("exceeding its memory limit (48 MiB)", Supervisor.Output, StringComparison.Ordinal);
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

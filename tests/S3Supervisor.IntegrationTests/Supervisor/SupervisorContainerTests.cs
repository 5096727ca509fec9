using System.Diagnostics;
using S3Supervisor.Supervisor.Mounts;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.IntegrationTests.Supervisor;

/// <summary>
/// The stand-in "supervisor container": a supervisor started in a cgroup of its own and killed the
/// way a runtime kills a container (SIGKILL to everything in its cgroup). What this proves for
/// issue 9: a process that <see cref="ChildCgroups"/> moved out of the container's cgroups survives
/// that kill, and one left inside dies with the supervisor. Two sleep processes stand in for s3fs
/// children, so that one can be left inside: the kill follows cgroups, not parentage.
/// </summary>
public sealed class SupervisorContainerTests : IAsyncLifetime
{
    private readonly SupervisorLayout _layout = new(Directory.CreateTempSubdirectory("s3sv-ctr-").FullName);

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => SupervisorProcess.CleanUpAsync(_layout);

    [SkippableFact]
    public async Task KillCgroupLikeARuntimeAsync_ChildMovedOutByChildCgroups_SurvivesAndOneLeftInsideDies()
    {
        Requires.Cgroups();
        await using var children = await TestCgroup.TrackAsync("children");
        await using var supervisor = await SupervisorProcess.StartAsync(_layout, ownCgroup: true);
        var container = supervisor.Cgroup!;
        Assert.Contains(supervisor.Pid, container.Pids());
        using var inside = StartSleep();
        using var outside = StartSleep();
        try
        {
            container.Join(inside.Id);
            container.Join(outside.Id);
            var cgroups = new ChildCgroups(new ChildCgroupSettings(TestCgroup.Root, children.Name));

            await cgroups.PlaceAsync("vol-a", outside.Id, memoryMaxBytes: null);
            Assert.Equal(new[] { supervisor.Pid, inside.Id }.Order(), container.Pids());
            await supervisor.KillCgroupLikeARuntimeAsync();

            Assert.True(supervisor.HasExited);
            await inside.WaitForExitAsync().WaitAsync(Eventually.DefaultTimeout);
            Assert.Equal(128 + 9, inside.ExitCode);
            Assert.True(ProcessInfo.IsRunning(outside.Id), "the child moved out of the container's cgroups must survive");
            Assert.True(await cgroups.ContainsAsync("vol-a", outside.Id));
            Assert.True(container.IsGone, "the runtime removes the container's cgroup");

            outside.Kill();
            await outside.WaitForExitAsync();
            await cgroups.RemoveAsync("vol-a");
        }
        finally
        {
            // Whatever failed above, no sleep outlives the test (one moved out of every test cgroup would).
            foreach (var sleep in new[] { inside, outside }.Where(p => !p.HasExited))
            {
                sleep.Kill();
                await sleep.WaitForExitAsync();
            }
        }
    }

    [SkippableFact]
    public async Task KillCgroupLikeARuntimeAsync_WithoutOwnCgroup_Refuses()
    {
        Requires.Root();
        await using var supervisor = await SupervisorProcess.StartAsync(_layout);

        await Assert.ThrowsAsync<InvalidOperationException>(supervisor.KillCgroupLikeARuntimeAsync);
        Assert.False(supervisor.HasExited);
    }

    private static Process StartSleep() =>
        Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false }) ?? throw new InvalidOperationException("could not start sleep");
}

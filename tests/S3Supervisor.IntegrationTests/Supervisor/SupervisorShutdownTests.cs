using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.IntegrationTests.Supervisor;

/// <summary>
/// What a supervisor leaves behind when it is stopped. SIGTERM (kubelet stopping its container for a
/// restart or an upgrade) leaves every s3fs and every mount as they are; a drain (the Drain call, or
/// StopChildrenOnShutdown) stops them and takes its tmpfs away.
/// </summary>
[Collection(RgwFixture.Collection)]
public sealed class SupervisorShutdownTests : SupervisorTestBase
{
    public SupervisorShutdownTests(RgwFixture rgw)
        : base(rgw)
    {
    }

    [SkippableFact]
    public async Task Sigterm_Default_ChildrenKeepRunningAndMountsKeepAnswering()
    {
        var staged = await StageAsync("vol-stay");
        var target = await PublishAsync("vol-stay", "pod-stay");
        await File.WriteAllTextAsync(Path.Combine(target, "before.txt"), "written before SIGTERM");

        var code = await Supervisor.StopAsync();

        Assert.Equal(0, code);
        Assert.True(ProcessTree.Alive(staged.Pid), $"s3fs pid {staged.Pid} must outlive a SIGTERM of the supervisor");
        Assert.Equal("written before SIGTERM", await File.ReadAllTextAsync(Path.Combine(target, "before.txt")));
        await File.WriteAllTextAsync(Path.Combine(target, "after.txt"), "written with no supervisor running");
        Assert.True(await S3.ObjectExistsAsync(Bucket, "after.txt"));
        Assert.Contains("keep running and keep their mounts", Supervisor.Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Drain_StopsEveryChildUnmountsStagingKeepsTheJournalAndExits()
    {
        var first = await StageAsync("vol-drain-a");
        var second = await StageAsync("vol-drain-b");
        var target = await PublishAsync("vol-drain-a", "pod-drain");
        await File.WriteAllTextAsync(Path.Combine(target, "flushed.txt"), "flushed by the drain");

        var stopped = await Supervisor.DrainAsync();

        Assert.Equal(2, stopped);
        Assert.True(Supervisor.HasExited);
        await ProcessTree.WaitGoneAsync([first.Pid, second.Pid], TimeSpan.FromSeconds(30));
        Assert.False(ProcessTree.Alive(first.Pid));
        Assert.False(ProcessTree.Alive(second.Pid));
        Assert.Null(MountTable.Find(Layout.StagingPath("vol-drain-a")));
        Assert.Null(MountTable.Find(Layout.StagingPath("vol-drain-b")));
        Assert.True(await S3.ObjectExistsAsync(Bucket, "flushed.txt"));
        // Every volume stays in the journal, without a child: the next supervisor rebuilds them.
        var journal = await File.ReadAllTextAsync(Path.Combine(Layout.StateDirectory, "journal.json"));
        Assert.Contains("vol-drain-a", journal, StringComparison.Ordinal);
        Assert.Contains("vol-drain-b", journal, StringComparison.Ordinal);
        Assert.DoesNotContain("\"child\"", journal, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Sigterm_StopChildrenOnShutdown_ChildrenStoppedThenSecretsTmpfsUnmounted()
    {
        // The supervisor mounts a tmpfs of its own only where the secrets directory is not on one already.
        Skip.If(MountTable.HolderOf(Path.GetDirectoryName(Layout.SecretsDirectory)!)?.FileSystemType == "tmpfs", "the test root is on tmpfs: the supervisor mounts no tmpfs of its own there");
        await Supervisor.DisposeAsync();
        await StartSupervisorAsync(new Dictionary<string, string> { ["Supervisor__StopChildrenOnShutdown"] = "true" });
        var mounted = MountTable.Find(Layout.SecretsDirectory);
        Assert.True(mounted is { FileSystemType: "tmpfs" }, $"at start: {mounted?.FileSystemType ?? "no mount"} at {Layout.SecretsDirectory}");
        var staged = await StageAsync("vol-stop");

        var code = await Supervisor.StopAsync();

        Assert.Equal(0, code);
        // The children are stopped first, then the tmpfs goes.
        Assert.False(ProcessTree.Alive(staged.Pid));
        Assert.Null(MountTable.Find(Layout.SecretsDirectory));
        Assert.Contains("Unmounted the private tmpfs on the secrets directory", Supervisor.Output, StringComparison.Ordinal);
    }
}

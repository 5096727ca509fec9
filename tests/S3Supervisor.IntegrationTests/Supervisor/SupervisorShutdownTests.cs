using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.IntegrationTests.Supervisor;

/// <summary>What a supervisor leaves behind when it is stopped (SIGTERM, as kubelet stops its container).</summary>
[Collection(RgwFixture.Collection)]
public sealed class SupervisorShutdownTests : SupervisorTestBase
{
    public SupervisorShutdownTests(RgwFixture rgw)
        : base(rgw)
    {
    }

    [SkippableFact]
    public async Task Sigterm_SecretsTmpfsMountedAtStart_UnmountedAfterExit()
    {
        // The supervisor mounts a tmpfs of its own only where the secrets directory is not on one already.
        Skip.If(HolderOf(Path.GetDirectoryName(Layout.SecretsDirectory)!)?.FileSystemType == "tmpfs", "the test root is on tmpfs: the supervisor mounts no tmpfs of its own there");
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

    /// <summary>The mount that holds a path: the longest mount point above it (topmost layer).</summary>
    private static MountEntry? HolderOf(string path) =>
        MountTable.Read()
            .Where(m => path == m.MountPoint || path.StartsWith(m.MountPoint.TrimEnd('/') + "/", StringComparison.Ordinal))
            .OrderBy(m => m.MountPoint.Length)
            .LastOrDefault();
}

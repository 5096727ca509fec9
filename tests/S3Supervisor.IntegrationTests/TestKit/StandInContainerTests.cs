using S3Supervisor.TestKit;

namespace S3Supervisor.IntegrationTests.TestKit;

/// <summary>The stand-in container against plain host directories (no S3 needed).</summary>
public sealed class StandInContainerTests : IAsyncLifetime
{
    private ScratchDirectory? host;

    public async Task InitializeAsync()
    {
        if (Prerequisites.RootMissing() is null)
        {
            host = await ScratchDirectory.CreateAsync("standin-host");
        }
    }

    public async Task DisposeAsync()
    {
        if (host is not null)
        {
            await host.DisposeAsync();
        }
    }

    [SkippableFact]
    public async Task StartAsync_ReadWriteBind_WritesReachTheHost()
    {
        Requires.MountNamespaces();
        var volume = HostDirectory("rw", ("seed.txt", "from host"));
        await using var container = await StandInContainer.StartAsync("rw", [new VolumeMountSpec(volume, "/data")]);

        Assert.Equal("from host", await container.ReadFileAsync("/data/seed.txt"));
        await container.WriteFileAsync("/data/out.txt", "from container");

        Assert.Equal("from container", await File.ReadAllTextAsync(Path.Combine(volume, "out.txt")));
        Assert.Equal(["out.txt", "seed.txt"], await container.ListAsync("/data"));
    }

    [SkippableFact]
    public async Task StartAsync_ReadOnlyBind_RejectsWrites()
    {
        Requires.MountNamespaces();
        var volume = HostDirectory("ro", ("seed.txt", "read me"));
        await using var container = await StandInContainer.StartAsync("ro", [new VolumeMountSpec(volume, "/config", ReadOnly: true)]);

        Assert.Equal("read me", await container.ReadFileAsync("/config/seed.txt"));
        var e = await Assert.ThrowsAsync<ContainerExecException>(() => container.WriteFileAsync("/config/new.txt", "x"));

        Assert.Contains("Read-only file system", e.Stderr);
        Assert.True(container.ReadMountTable().Single(m => m.MountPoint == "/config").IsReadOnly);
        Assert.False(File.Exists(Path.Combine(volume, "new.txt")));
    }

    [SkippableFact]
    public async Task StartAsync_SubPath_ShowsOnlyThatSubdirectory()
    {
        Requires.MountNamespaces();
        var volume = HostDirectory("subpath", ("top.txt", "top"), ("tenant-a/a.txt", "a"));
        await using var container = await StandInContainer.StartAsync(
            "subpath",
            [new VolumeMountSpec(volume, "/work", SubPath: "tenant-a"), new VolumeMountSpec(volume, "/all", ReadOnly: true)]);

        Assert.Equal(["a.txt"], await container.ListAsync("/work"));
        Assert.Equal(["tenant-a", "top.txt"], await container.ListAsync("/all"));
        Assert.Equal("/tenant-a", container.ReadMountTable().Single(m => m.MountPoint == "/work").Root[^9..]);
    }

    [SkippableFact]
    public async Task StartAsync_OwnRootFileSystem_HoldsNoCopyOfHostMounts()
    {
        Requires.MountNamespaces();
        var volume = HostDirectory("isolated", ("f", "x"));
        await using var container = await StandInContainer.StartAsync("isolated", [new VolumeMountSpec(volume, "/data")]);

        var mountPoints = container.ReadMountTable().Select(m => m.MountPoint).ToList();

        Assert.Contains("/data", mountPoints);
        Assert.DoesNotContain(mountPoints, m => m.StartsWith(ScratchDirectory.Root, StringComparison.Ordinal));
        Assert.Equal(0, (await container.ExecAsync("test", "-d", "/usr/bin")).ExitCode);
    }

    [SkippableFact]
    public async Task DisposeAsync_KillsTheProcess_AndItsNamespaceGoesWithIt()
    {
        Requires.MountNamespaces();
        var volume = HostDirectory("dispose", ("f", "x"));
        var container = await StandInContainer.StartAsync("dispose", [new VolumeMountSpec(volume, "/data")]);
        var pid = container.Pid;
        Assert.True(container.IsRunning);

        await container.DisposeAsync();

        Assert.False(ProcessInfo.IsRunning(pid));
        Assert.False(Directory.Exists(container.RootPath));
        Assert.Equal("x", await File.ReadAllTextAsync(Path.Combine(volume, "f")));
    }

    private string HostDirectory(string name, params (string Path, string Content)[] files)
    {
        var dir = host!.CreateSubdirectory(name);
        foreach (var (path, content) in files)
        {
            var full = Path.Combine(dir, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, content);
        }

        return dir;
    }
}

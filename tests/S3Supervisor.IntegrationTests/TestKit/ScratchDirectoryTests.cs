using System.Diagnostics;
using System.Globalization;
using S3Supervisor.TestKit;

namespace S3Supervisor.IntegrationTests.TestKit;

/// <summary>Crash safety: what a dead test process leaves behind is killed, unmounted and deleted, never deleted through a mount.</summary>
public sealed class ScratchDirectoryTests : IAsyncLifetime
{
    private string? root;
    private ScratchDirectory? host;

    public async Task InitializeAsync()
    {
        if (Prerequisites.RootMissing() is null)
        {
            host = await ScratchDirectory.CreateAsync("sweep-host");
            // a private root, so that these tests never sweep anything of a real test run
            root = Path.Combine(Path.GetTempPath(), $"s3sup-sweep-test-{Guid.NewGuid():N}");
            Directory.CreateDirectory(root);
        }
    }

    public async Task DisposeAsync()
    {
        if (root is not null && Directory.Exists(root))
        {
            foreach (var mount in MountTable.Under(root).OrderByDescending(m => m.MountPoint.Length))
            {
                await ProcessRunner.RunAsync("umount", "-l", mount.MountPoint);
            }

            if (MountTable.Under(root).Count == 0)
            {
                Directory.Delete(root, recursive: true);
            }
        }

        if (host is not null)
        {
            await host.DisposeAsync();
        }
    }

    [SkippableFact]
    public async Task SweepStale_DeadOwner_KillsProcessesUnmountsThenDeletes()
    {
        Requires.Root();
        var (stale, keep) = await StaleDirectoryAsync("1 0\n"); // pid 1 never has start time 0
        var process = StartReferencing(stale);

        await ScratchDirectory.SweepStaleAsync(root);

        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(5)));
        Assert.Empty(MountTable.Under(stale));
        Assert.False(Directory.Exists(stale));
        Assert.Equal("keep", await File.ReadAllTextAsync(keep));
    }

    [SkippableFact]
    public async Task SweepStale_LiveOwner_LeavesDirectoryAlone()
    {
        Requires.Root();
        var (live, _) = await StaleDirectoryAsync(ScratchDirectory.OwnerLine);
        try
        {
            await ScratchDirectory.SweepStaleAsync(root);

            Assert.True(Directory.Exists(live));
            Assert.NotEmpty(MountTable.Under(live));
        }
        finally
        {
            await ProcessRunner.RunCheckedAsync("umount", ["-l", Path.Combine(live, "bind")]);
            await ProcessRunner.RunCheckedAsync("umount", ["-l", Path.Combine(live, "tmp")]);
        }
    }

    [SkippableFact]
    public async Task Watchdog_OwnerKilled_CleansUpWithinSeconds()
    {
        Requires.Root();
        using var owner = Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false })!;
        var start = ProcessInfo.StartTime(owner.Id)!.Value;
        var (stale, keep) = await StaleDirectoryAsync(string.Create(CultureInfo.InvariantCulture, $"{owner.Id} {start}\n"));
        using var watchdog = Process.Start(new ProcessStartInfo("/bin/bash")
        {
            ArgumentList = { await ScratchDirectory.ScriptPathAsync(), "watch", owner.Id.ToString(CultureInfo.InvariantCulture), start.ToString(CultureInfo.InvariantCulture), root! },
            UseShellExecute = false,
            RedirectStandardError = true,
        })!;
        var log = watchdog.StandardError.ReadToEndAsync();
        // The watchdog has checked the owner at least once (and is sleeping until the next check)
        // before we look: only then does "the directory is still there" mean it spared a live owner.
        await Eventually.WaitAsync(
            () => S3Supervisor.TestKit.Supervisor.ProcessTree.Descendants(watchdog.Id).Any(pid => ProcessInfo.CommandLine(pid) is ["sleep", ..]),
            Eventually.DefaultTimeout,
            "the watchdog's first owner check (its sleep between checks)");
        Assert.True(Directory.Exists(stale));

        owner.Kill();

        Assert.True(watchdog.WaitForExit(TimeSpan.FromSeconds(10)));
        Assert.Contains($"owner pid {owner.Id} is gone", await log);
        Assert.False(Directory.Exists(stale));
        Assert.Empty(MountTable.Under(stale));
        Assert.Equal("keep", await File.ReadAllTextAsync(keep));
    }

    [SkippableFact]
    public async Task DisposeAsync_BindMountInside_UnmountsBeforeDeleting()
    {
        Requires.Root();
        var source = host!.CreateSubdirectory("dispose-source");
        var keep = Path.Combine(source, "keep.txt");
        await File.WriteAllTextAsync(keep, "keep");
        var scratch = await ScratchDirectory.CreateAsync("dispose-test");
        var target = scratch.CreateSubdirectory("bind");
        await ProcessRunner.RunCheckedAsync("mount", ["--bind", source, target]);

        await scratch.DisposeAsync();

        Assert.False(Directory.Exists(scratch.FullPath));
        Assert.Equal("keep", await File.ReadAllTextAsync(keep));
    }

    // ROOT/stale-<id>/ with an owner line, a bind of a host directory holding a file that must
    // survive, and a tmpfs; returns the directory and the host file.
    private async Task<(string Dir, string Keep)> StaleDirectoryAsync(string owner)
    {
        var dir = Path.Combine(root!, $"stale-{Guid.NewGuid().ToString("N")[..12]}");
        Directory.CreateDirectory(Path.Combine(dir, "bind"));
        Directory.CreateDirectory(Path.Combine(dir, "tmp"));
        await File.WriteAllTextAsync(Path.Combine(dir, ".owner"), owner);
        var source = host!.CreateSubdirectory($"source-{Path.GetFileName(dir)}");
        var keep = Path.Combine(source, "keep.txt");
        await File.WriteAllTextAsync(keep, "keep");
        await ProcessRunner.RunCheckedAsync("mount", ["--bind", source, Path.Combine(dir, "bind")]);
        await ProcessRunner.RunCheckedAsync("mount", ["-t", "tmpfs", "sweep-test", Path.Combine(dir, "tmp")]);
        return (dir, keep);
    }

    // A process that ignores SIGTERM and names the directory on its command line, like a stuck s3fs.
    private static Process StartReferencing(string dir) =>
        Process.Start(new ProcessStartInfo("/bin/sh")
        {
            ArgumentList = { "-c", "trap '' TERM; while :; do sleep 0.1; done", "sh", $"passwd_file={dir}/passwd" },
            UseShellExecute = false,
        })!;
}

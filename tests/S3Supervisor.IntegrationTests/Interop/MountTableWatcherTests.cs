using S3Supervisor.Supervisor.Interop;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.IntegrationTests.Interop;

/// <summary>
/// <see cref="Libc.MountTableWatcher"/> against the kernel: a change taken before a mount completes
/// when the mount is made, and again for the unmount; a change taken afterwards waits for the next one.
/// </summary>
public sealed class MountTableWatcherTests
{
    [SkippableFact]
    public async Task Mount_Unmount_EachCompletesTheChangeTakenBeforeIt()
    {
        Requires.Root();
        await using var scratch = await ScratchDirectory.CreateAsync("mount-table-watcher");
        var target = scratch.Combine("tmpfs");
        Directory.CreateDirectory(target);
        using var watcher = new Libc.MountTableWatcher();

        var beforeMount = watcher.NextChange;
        Assert.False(beforeMount.IsCompleted, "a change was reported before anything changed");
        Libc.Mount("tmpfs", target, "tmpfs", Libc.MS_NOSUID | Libc.MS_NODEV, "size=1m");
        try
        {
            // Generous: the watcher thread only has to be scheduled (2 cores under load).
            Assert.Same(beforeMount, await Task.WhenAny(beforeMount, Task.Delay(TimeSpan.FromSeconds(30))));
            var beforeUnmount = watcher.NextChange;
            Assert.NotSame(beforeMount, beforeUnmount);
            Assert.False(beforeUnmount.IsCompleted, "the mount's change was reported twice");
            Libc.Unmount(target, detach: true);
            Assert.Same(beforeUnmount, await Task.WhenAny(beforeUnmount, Task.Delay(TimeSpan.FromSeconds(30))));
        }
        finally
        {
            MountCleaner.UnmountUnder(target);
        }
    }
}

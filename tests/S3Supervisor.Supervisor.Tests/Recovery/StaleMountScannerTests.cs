using S3Supervisor.Supervisor.Mounts;
using S3Supervisor.Supervisor.Recovery;

namespace S3Supervisor.Supervisor.Tests.Recovery;

public sealed class StaleMountScannerTests : IDisposable
{
    private const string Root = "1 0 254:0 / / rw,relatime - ext4 /dev/vda rw";
    private const string Proc = "2 1 0:21 / /proc rw,relatime - proc proc rw";
    private const string Dead = "0:50";

    private readonly FakeProc _proc = new();

    public void Dispose() => _proc.Dispose();

    [Fact]
    public void Scan_DeviceMatch_FindsOnlyTheDeadDevice()
    {
        _proc.AddProcess(1, "host", Root).SetSelf(1)
            .AddProcess(100, "c1", Root,
                "10 1 0:50 / /data rw,nosuid,nodev,relatime - fuse.s3fs s3fs rw,user_id=0,group_id=0",
                "11 1 0:51 / /other rw,nosuid,nodev,relatime - fuse.s3fs s3fs rw,user_id=0,group_id=0",
                "12 1 0:500 / /similar rw,nosuid,nodev,relatime - fuse.s3fs s3fs rw,user_id=0,group_id=0",
                "13 1 10:50 / /block rw,relatime - ext4 /dev/x rw");

        var found = StaleMountScanner.Scan(_proc.Root, Dead);

        var ns = Assert.Single(found);
        Assert.Equal(_proc.InodeOf("c1"), ns.MountNamespaceInode);
        Assert.Equal([100], ns.Pids);
        var stale = Assert.Single(ns.Mounts);
        Assert.Equal("/data", stale.Entry.MountPoint);
        Assert.Null(stale.EnclosingMountId);
    }

    [Fact]
    public void Scan_SubPathAndReadOnly_KeepsRootAndFlags()
    {
        _proc.AddProcess(1, "host", Root).SetSelf(1)
            .AddProcess(100, "c1", Root,
                @"10 1 0:50 /team\040a/logs /var/log/app ro,nosuid,nodev,noexec,relatime - fuse.s3fs s3fs rw",
                "11 1 0:50 / /data rw,nosuid,relatime master:7 - fuse.s3fs s3fs rw");

        var mounts = Assert.Single(StaleMountScanner.Scan(_proc.Root, Dead)).Mounts;

        Assert.Equal(2, mounts.Count);
        Assert.Equal("/team a/logs", mounts[0].Entry.Root);
        Assert.True(mounts[0].Entry.ReadOnly);
        Assert.Contains("noexec", mounts[0].Entry.Options);
        Assert.Equal("/", mounts[1].Entry.Root);
        Assert.False(mounts[1].Entry.ReadOnly);
        Assert.Equal(["master:7"], mounts[1].Entry.OptionalFields);
    }

    [Fact]
    public void Scan_OwnNamespace_IsSkipped()
    {
        _proc.AddProcess(1, "host", Root, "10 1 0:50 / /var/lib/kubelet/staging rw,nosuid,nodev - fuse.s3fs s3fs rw")
            .AddProcess(42, "supervisor", Root, "10 1 0:50 / /var/lib/kubelet/staging rw,nosuid,nodev - fuse.s3fs s3fs rw")
            .AddProcess(43, "supervisor", Root, "10 1 0:50 / /var/lib/kubelet/staging rw,nosuid,nodev - fuse.s3fs s3fs rw")
            .SetSelf(42);

        var found = StaleMountScanner.Scan(_proc.Root, Dead);

        var ns = Assert.Single(found);
        Assert.Equal(_proc.InodeOf("host"), ns.MountNamespaceInode);
    }

    [Fact]
    public void Scan_ManyProcessesInOneNamespace_DedupedWithEveryPid()
    {
        const string Line = "10 1 0:50 / /data rw,nosuid,nodev - fuse.s3fs s3fs rw";
        _proc.AddProcess(1, "host", Root).SetSelf(1)
            .AddProcess(100, "c1", Root, Line)
            .AddProcess(101, "c1", Root, Line)
            .AddProcess(102, "c1", Root, Line)
            .AddProcess(200, "c2", Root, Proc, Line);

        var found = StaleMountScanner.Scan(_proc.Root, Dead).OrderBy(n => n.Pids[0]).ToList();

        Assert.Equal(2, found.Count);
        Assert.Equal([100, 101, 102], found[0].Pids.Order());
        Assert.Single(found[0].Mounts);
        Assert.Equal([200], found[1].Pids);
    }

    [Fact]
    public void Scan_VanishedProcessesAndOtherEntries_AreSkipped()
    {
        _proc.AddProcess(1, "host", Root).SetSelf(1)
            .AddVanished(300)
            .AddProcess(100, "c1", Root, "10 1 0:50 / /data rw - fuse.s3fs s3fs rw");
        Directory.CreateDirectory(Path.Combine(_proc.Root, "sys"));
        File.WriteAllText(Path.Combine(_proc.Root, "mounts"), "not a pid");

        var ns = Assert.Single(StaleMountScanner.Scan(_proc.Root, Dead));

        Assert.Equal([100], ns.Pids);
    }

    [Fact]
    public void Scan_NoMatch_ReturnsNothing()
    {
        _proc.AddProcess(1, "host", Root).SetSelf(1)
            .AddProcess(100, "c1", Root, "10 1 0:51 / /data rw - fuse.s3fs s3fs rw");

        Assert.Empty(StaleMountScanner.Scan(_proc.Root, Dead));
    }

    [Fact]
    public void FindIn_NestedStaleMount_IsOrderedAfterItsEnclosingMount()
    {
        var table = MountInfo.Parse(string.Join('\n',
            Root,
            "21 10 0:50 /sub /data/nested rw - fuse.s3fs s3fs rw",
            "10 1 0:50 / /data rw - fuse.s3fs s3fs rw",
            "20 1 0:50 /sub /other rw - fuse.s3fs s3fs rw"));

        var (mounts, buried) = StaleMountScanner.FindIn(table, Dead);

        // Listed before its parent (as after a move), it is still repaired after it.
        Assert.Equal(["/data", "/other", "/data/nested"], mounts.Select(m => m.Entry.MountPoint));
        Assert.Equal(10, mounts[2].EnclosingMountId);
        Assert.Equal(1, mounts[2].Depth);
        Assert.Empty(buried);
    }

    [Fact]
    public void FindIn_HealthyMountInsideStaleOne_IsReportedAsBuried()
    {
        var table = MountInfo.Parse(string.Join('\n',
            Root,
            "10 1 0:50 / /data rw - fuse.s3fs s3fs rw",
            "11 10 0:60 / /data/config ro - tmpfs tmpfs rw",
            "12 1 0:61 / /elsewhere rw - tmpfs tmpfs rw"));

        var (mounts, buried) = StaleMountScanner.FindIn(table, Dead);

        Assert.Single(mounts);
        Assert.Equal("/data/config", Assert.Single(buried).MountPoint);
    }

    [Fact]
    public void FindIn_StaleMountCoveredByAnother_IsSkipped()
    {
        var table = MountInfo.Parse(string.Join('\n',
            Root,
            "10 1 0:50 / /data rw - fuse.s3fs s3fs rw",
            "11 10 0:70 / /data rw - fuse.s3fs s3fs rw",
            "12 10 0:50 /x /data/x rw - fuse.s3fs s3fs rw",
            "13 1 0:50 / /stacked rw - fuse.s3fs s3fs rw",
            "14 13 0:50 / /stacked ro - fuse.s3fs s3fs rw"));

        var (mounts, _) = StaleMountScanner.FindIn(table, Dead);

        // /data is hidden under a live mount (and so is /data/x inside it); of the two stacked
        // dead mounts only the top one is reachable.
        var only = Assert.Single(mounts);
        Assert.Equal(14, only.Entry.MountId);
    }
}

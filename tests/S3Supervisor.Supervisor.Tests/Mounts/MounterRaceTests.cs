using S3Supervisor.Supervisor.Interop;
using S3Supervisor.Supervisor.Mounts;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.Supervisor.Tests.Mounts;

/// <summary>
/// The check-then-mount race against the real kernel (root, real mounts in throwaway directories):
/// a checked directory is swapped for a symlink to a directory outside the root, either between the
/// path check and the mount call, or (through the mount layer's test hook) after the mount layer
/// resolved it. Nothing may ever be mounted, created or unmounted outside the root.
/// </summary>
[Collection(RealMountCollection.Name)]
public sealed class MounterRaceTests : IDisposable
{
    private readonly string _root;
    private readonly string _outside;
    private readonly string _source;

    public MounterRaceTests()
    {
        _root = Libc.RealPath(Directory.CreateTempSubdirectory("s3sv-race-root-").FullName);
        _outside = Libc.RealPath(Directory.CreateTempSubdirectory("s3sv-race-outside-").FullName);
        _source = Path.Combine(_root, "src");
    }

    public void Dispose()
    {
        Mounter.BeforeAttachForTests = null;
        MountCleaner.UnmountUnder(_root);
        MountCleaner.UnmountUnder(_outside);
        Directory.Delete(_root, recursive: true);
        Directory.Delete(_outside, recursive: true);
    }

    [SkippableFact]
    public void Bind_TargetSwappedForSymlinkAfterCheck_RefusedAndNothingMountedOutside()
    {
        var (guard, mounter) = Prepare();
        var target = guard.Check(Path.Combine(_root, "a", "t"), "target_path");
        Directory.CreateDirectory(target);
        Directory.CreateDirectory(Path.Combine(_outside, "t"));
        SwapForSymlink(Path.Combine(_root, "a"));

        Assert.Throws<PathRefusedException>(() => mounter.Bind(_source, target, readOnly: false));

        Assert.Empty(MountTable.Under(_outside));
        Assert.Equal([_source], MountTable.Under(_root).Select(m => m.MountPoint));
    }

    [SkippableFact]
    public void Bind_TargetSwappedAfterResolution_MountLandsOnTheCheckedDirectoryNotOutside()
    {
        var (guard, mounter) = Prepare();
        var target = guard.Check(Path.Combine(_root, "a", "t"), "target_path");
        Directory.CreateDirectory(target);
        Directory.CreateDirectory(Path.Combine(_outside, "t"));
        Mounter.BeforeAttachForTests = _ => SwapForSymlink(Path.Combine(_root, "a"));

        mounter.Bind(_source, target, readOnly: true);

        Assert.Empty(MountTable.Under(_outside));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_outside, "t")));
        var bound = Assert.Single(MountTable.Under(_root), m => m.MountPoint != _source);
        Assert.Equal(Path.Combine(_root, "a.checked", "t"), bound.MountPoint);
        Assert.True(bound.IsReadOnly);
        Assert.True(File.Exists(Path.Combine(_root, "a.checked", "t", "marker")));
    }

    [SkippableFact]
    public void CreateDirectory_ParentSwappedForSymlink_RefusedAndNothingCreatedOutside()
    {
        var (guard, mounter) = Prepare();
        Directory.CreateDirectory(Path.Combine(_root, "b"));
        var target = guard.Check(Path.Combine(_root, "b", "c", "d"), "target_path");
        SwapForSymlink(Path.Combine(_root, "b"));

        Assert.Throws<PathRefusedException>(() => mounter.CreateDirectory(target));

        Assert.Empty(Directory.EnumerateFileSystemEntries(_outside));
    }

    [SkippableFact]
    public void UnmountLazy_ParentSwappedForSymlink_LeavesTheMountOutsideAlone()
    {
        var (guard, mounter) = Prepare();
        var inside = Path.Combine(_root, "u", "m");
        var outsideMount = Path.Combine(_outside, "m");
        Directory.CreateDirectory(inside);
        Directory.CreateDirectory(outsideMount);
        Libc.Mount("tmpfs", outsideMount, "tmpfs", 0, "size=1m");
        var checkedPath = guard.Check(inside, "target_path");
        SwapForSymlink(Path.Combine(_root, "u"));

        Assert.Throws<PathRefusedException>(() => mounter.UnmountLazy(checkedPath));

        Assert.NotNull(MountTable.Find(outsideMount));
    }

    [SkippableFact]
    public void Bind_SourceIsNotTheExpectedMount_RefusedNothingBound()
    {
        var (guard, mounter) = Prepare();
        var target = guard.Check(Path.Combine(_root, "e", "t"), "target_path");
        mounter.CreateDirectory(target);

        Assert.Throws<MountSourceException>(() => mounter.Bind(_source, target, readOnly: false, expectedSourceDevice: "0:99999"));

        Assert.Null(MountTable.Find(target));
    }

    [SkippableFact]
    public void RemoveDirectory_EmptyGoesNonEmptyStays()
    {
        var (_, mounter) = Prepare();
        var empty = Path.Combine(_root, "r", "empty");
        var full = Path.Combine(_root, "r", "full");
        Directory.CreateDirectory(empty);
        Directory.CreateDirectory(full);
        File.WriteAllText(Path.Combine(full, "keep"), "x");

        Assert.True(mounter.RemoveDirectory(empty));
        Assert.False(mounter.RemoveDirectory(full));

        Assert.False(Directory.Exists(empty));
        Assert.True(File.Exists(Path.Combine(full, "keep")));
    }

    private (PathGuard Guard, Mounter Mounter) Prepare()
    {
        Requires.Root();
        Directory.CreateDirectory(_source);
        Libc.Mount("tmpfs", _source, "tmpfs", 0, "size=1m");
        File.WriteAllText(Path.Combine(_source, "marker"), "the source mount");
        return (new PathGuard([_root]), new Mounter([_root]));
    }

    /// <summary>What an attacker with write access under the root does: the checked directory moves away and a symlink to the outside takes its name.</summary>
    private void SwapForSymlink(string directory)
    {
        Directory.Move(directory, directory + ".checked");
        File.CreateSymbolicLink(directory, _outside);
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RealMountCollection
{
    public const string Name = "real mounts";
}

using Grpc.Core;
using S3Supervisor.Supervisor.Api;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Tests.Mounts;

public sealed class PathGuardTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("s3sv-guard-").FullName;
    private readonly string _outside = Directory.CreateTempSubdirectory("s3sv-out-").FullName;

    public void Dispose()
    {
        Directory.Delete(_root, true);
        Directory.Delete(_outside, true);
    }

    [Fact]
    public void Check_PathUnderRoot_ReturnsCanonical()
    {
        var guard = new PathGuard([_root]);
        Directory.CreateDirectory(Path.Combine(_root, "pods"));
        Assert.Equal(Path.Combine(_root, "pods", "mount"), guard.Check(Path.Combine(_root, "pods", "mount") + "/", "target_path"));
    }

    [Fact]
    public void Check_MissingParents_JudgedLexically()
    {
        var guard = new PathGuard([_root]);
        Assert.Equal(Path.Combine(_root, "a", "b", "c"), guard.Check(Path.Combine(_root, "a", "b", "c"), "target_path"));
    }

    [Fact]
    public void Check_SymlinkedParentLeadingOut_PermissionDenied()
    {
        var guard = new PathGuard([_root]);
        File.CreateSymbolicLink(Path.Combine(_root, "evil"), _outside);
        var error = VolumeErrorMapping.ToRpc(Assert.Throws<VolumeException>(() => guard.Check(Path.Combine(_root, "evil", "x", "mount"), "target_path")));
        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.StartsWith("target_path", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_SymlinkInsideRoot_FinalComponentRejected()
    {
        var guard = new PathGuard([_root]);
        Directory.CreateDirectory(Path.Combine(_root, "real"));
        File.CreateSymbolicLink(Path.Combine(_root, "alias"), Path.Combine(_root, "real"));
        var error = VolumeErrorMapping.ToRpc(Assert.Throws<VolumeException>(() => guard.Check(Path.Combine(_root, "alias"), "staging_path")));
        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
    }

    [Fact]
    public void Check_PrefixSiblingOfRoot_PermissionDenied()
    {
        var guard = new PathGuard([_root]);
        var error = VolumeErrorMapping.ToRpc(Assert.Throws<VolumeException>(() => guard.Check(_root + "-sibling/x", "staging_path")));
        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
    }

    [Theory]
    [InlineData("")]
    [InlineData("relative/x")]
    [InlineData("/a/../b")]
    [InlineData("/a/./b")]
    [InlineData("/a//b")]
    public void Check_Malformed_InvalidArgument(string path)
    {
        var guard = new PathGuard([_root]);
        var error = VolumeErrorMapping.ToRpc(Assert.Throws<VolumeException>(() => guard.Check(path, "staging_path")));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
    }
}

using System.Globalization;

namespace S3Supervisor.Supervisor.Tests.Recovery;

/// <summary>
/// A fake procfs: &lt;pid&gt;/mountinfo and &lt;pid&gt;/ns/mnt, where ns/mnt is a symlink to one file per
/// namespace so that stat (which follows it, as it follows the real magic link) gives every
/// process of a namespace the same inode. "self" points at the supervisor's own process.
/// </summary>
internal sealed class FakeProc : IDisposable
{
    public FakeProc()
    {
        Root = Path.Combine(Path.GetTempPath(), "s3sup-fakeproc-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path.Combine(Root, ".ns"));
    }

    public string Root { get; }

    public FakeProc AddProcess(int pid, string mountNamespace, params string[] mountinfoLines)
    {
        var dir = PidDir(pid);
        Directory.CreateDirectory(Path.Combine(dir, "ns"));
        var nsFile = Path.Combine(Root, ".ns", mountNamespace);
        if (!File.Exists(nsFile))
        {
            File.WriteAllText(nsFile, mountNamespace);
        }
        File.CreateSymbolicLink(Path.Combine(dir, "ns", "mnt"), nsFile);
        File.WriteAllText(Path.Combine(dir, "mountinfo"), string.Join('\n', mountinfoLines) + "\n");
        return this;
    }

    /// <summary>A process whose directory exists but has already exited (its files are gone).</summary>
    public FakeProc AddVanished(int pid)
    {
        Directory.CreateDirectory(PidDir(pid));
        return this;
    }

    public FakeProc SetSelf(int pid)
    {
        Directory.CreateSymbolicLink(Path.Combine(Root, "self"), PidDir(pid));
        return this;
    }

    public ulong InodeOf(string mountNamespace) =>
        S3Supervisor.Supervisor.Interop.Libc.StatIdentity(Path.Combine(Root, ".ns", mountNamespace), out _, out var inode) == 0
            ? inode
            : throw new InvalidOperationException("no such namespace " + mountNamespace);

    public void Dispose() => Directory.Delete(Root, recursive: true);

    private string PidDir(int pid) => Path.Combine(Root, pid.ToString(CultureInfo.InvariantCulture));
}

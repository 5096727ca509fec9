using Xunit;

namespace S3Supervisor.TestKit;

/// <summary>
/// Guards for tests that need real privileges and tools. Each one skips the test (use
/// <c>[SkippableFact]</c>) with a reason that says what to install or how to run, unless
/// <see cref="StrictVariable"/> is set to 1: then a missing prerequisite fails the test instead
/// (for CI, where a silently skipped integration suite would hide a broken machine).
/// </summary>
public static class Requires
{
    /// <summary>Set to 1 to turn every skip for a missing prerequisite into a failure.</summary>
    public const string StrictVariable = "S3SUPERVISOR_TESTS_STRICT";

    public static bool Strict => System.Environment.GetEnvironmentVariable(StrictVariable) == "1";

    /// <summary>Mounting, mount namespaces and the Ceph daemons need root.</summary>
    public static void Root() => Check(Prerequisites.RootMissing());

    /// <summary>/dev/fuse must exist.</summary>
    public static void Fuse() => Check(Prerequisites.FuseMissing());

    /// <summary>The s3fs binary must be installed.</summary>
    public static void S3fs() => Check(Prerequisites.S3fsMissing());

    /// <summary>The Ceph binaries for <see cref="RgwServer"/> must be installed.</summary>
    public static void Radosgw() => Check(Prerequisites.RadosgwMissing());

    /// <summary>unshare and nsenter (util-linux) for <see cref="StandInContainer"/>, and root.</summary>
    public static void MountNamespaces() => Check(Prerequisites.RootMissing() ?? Prerequisites.MountNamespacesMissing());

    /// <summary>Root and at least one cgroup hierarchy mounted under /sys/fs/cgroup, for <see cref="TestCgroup"/> and the per-volume cgroups.</summary>
    public static void Cgroups() => Check(Prerequisites.RootMissing() ?? Prerequisites.CgroupsMissing());

    /// <summary>Skips (or, in strict mode, fails) with <paramref name="reason"/> when it is not null.</summary>
    public static void Check(string? reason)
    {
        if (reason is null)
        {
            return;
        }

        if (Strict)
        {
            throw new InvalidOperationException($"{reason} ({StrictVariable}=1 turns this skip into a failure)");
        }

        Skip.If(true, reason);
    }
}

/// <summary>What is missing on this machine, as a sentence, or null.</summary>
public static class Prerequisites
{
    private const string Install = "run scripts/install-deps.sh as root";

    public static string? RootMissing() =>
        Interop.Native.IsRoot ? null : "needs root (mounts, mount namespaces and the Ceph daemons); run the tests with sudo or as root";

    public static string? FuseMissing() =>
        File.Exists("/dev/fuse") ? null : "/dev/fuse is missing (modprobe fuse; in a container run with --device /dev/fuse --cap-add SYS_ADMIN)";

    public static string? S3fsMissing() => Missing(["s3fs"]);

    public static string? RadosgwMissing() =>
        Missing(["ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph", "setsid"]);

    public static string? CgroupsMissing() =>
        TestCgroup.MountPoints().Count > 0 ? null : $"no cgroup hierarchy is mounted at or under {TestCgroup.Root} (see /proc/self/mountinfo)";

    public static string? MountNamespacesMissing() => Missing(["unshare", "nsenter", "mount", "umount"]);

    /// <summary>Everything <see cref="RgwFixture"/>-based tests need, or the first thing missing.</summary>
    public static string? RgwAndS3fsMissing() =>
        RootMissing() ?? RadosgwMissing() ?? S3fsMissing() ?? FuseMissing();

    /// <summary>Full path of <paramref name="name"/> on PATH (plus the sbin directories), or null.</summary>
    public static string? Which(string name)
    {
        var path = System.Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static string? Missing(string[] tools)
    {
        var missing = tools.Where(t => Which(t) is null).ToList();
        return missing.Count == 0 ? null : $"missing {string.Join(", ", missing)} ({Install})";
    }
}

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// Where <see cref="ChildCgroups"/> works: the directory the host's cgroup hierarchies are mounted
/// under (<c>/sys/fs/cgroup</c> on the node; in a pod the host's <c>/sys/fs/cgroup</c> as a hostPath,
/// e.g. <c>/host/sys/fs/cgroup</c>) and the parent, relative to each hierarchy's root, that holds one
/// cgroup per volume (<c>s3supervisor</c> gives <c>/sys/fs/cgroup/memory/s3supervisor/&lt;volume&gt;</c>).
/// </summary>
public sealed record ChildCgroupSettings
{
    public const string DefaultRoot = "/sys/fs/cgroup";

    public const string DefaultParent = "s3supervisor";

    public ChildCgroupSettings(string cgroupRoot = DefaultRoot, string parent = DefaultParent)
    {
        if (RootProblem(cgroupRoot) is { } rootProblem)
        {
            throw new ArgumentException(rootProblem, nameof(cgroupRoot));
        }
        if (ParentProblem(parent) is { } parentProblem)
        {
            throw new ArgumentException(parentProblem, nameof(parent));
        }
        CgroupRoot = cgroupRoot.Length > 1 ? cgroupRoot.TrimEnd('/') : cgroupRoot;
        Parent = parent;
    }

    public string CgroupRoot { get; }

    public string Parent { get; }

    /// <summary>procfs (tests point it at a fake): self/mountinfo, cgroups, &lt;pid&gt;/cgroup, self/ns/cgroup and 1/ns/cgroup (the host's cgroup namespace with hostPID).</summary>
    internal string ProcRoot { get; init; } = "/proc";

    /// <summary>How long <see cref="ChildCgroups.RemoveAsync"/> waits for processes that are on their way out before it reports the cgroup busy.</summary>
    internal TimeSpan RemoveWait { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Why <paramref name="root"/> cannot be the cgroup root, or null.</summary>
    public static string? RootProblem(string? root) =>
        string.IsNullOrEmpty(root) || !Path.IsPathFullyQualified(root) || root.Split('/').Any(s => s is "." or "..")
            ? $"'{root}' must be an absolute path without '.' or '..' segments (the host's /sys/fs/cgroup)"
            : null;

    /// <summary>Why <paramref name="parent"/> cannot be the parent cgroup, or null: a relative path of plain names, no '.' or '..'.</summary>
    public static string? ParentProblem(string? parent)
    {
        if (string.IsNullOrEmpty(parent) || parent.StartsWith('/') || parent.EndsWith('/'))
        {
            return $"'{parent}' must be a relative path such as s3supervisor or kubepods-s3/children, without a leading or trailing '/'";
        }
        foreach (var segment in parent.Split('/'))
        {
            if (!IsPlainName(segment))
            {
                return $"'{parent}' has the segment '{segment}': each one must be 1 to 255 of A-Z a-z 0-9 . _ - and not '.' or '..'";
            }
        }
        return null;
    }

    /// <summary>One cgroup directory name of ours: 1 to 255 of A-Z a-z 0-9 . _ - (a volume's <see cref="CredentialStore.FileName"/> is one), not '.' or '..'.</summary>
    public static bool IsPlainName(string name) =>
        name.Length is > 0 and <= 255 && name is not "." and not ".."
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');
}

using System.Globalization;
using S3Supervisor.Supervisor.Interop;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Recovery;

/// <summary>A mount of the dead device in one namespace.</summary>
/// <param name="EnclosingMountId">
/// The mount id of the nearest stale mount this one sits inside (a subPath bind made inside a
/// whole-volume mount of the same volume), or null when its parent is healthy.
/// </param>
/// <param name="Depth">How many stale mounts enclose it; repairs go outermost first.</param>
internal sealed record StaleMount(MountEntry Entry, int? EnclosingMountId, int Depth);

/// <summary>One mount namespace that still holds the dead device.</summary>
/// <param name="Pids">Processes in that namespace, in /proc order; any of them can be used to enter it.</param>
/// <param name="Buried">Healthy mounts stacked inside a stale one. The repair cannot keep them (see <see cref="ContainerRepairer"/>).</param>
internal sealed record StaleNamespace(
    ulong MountNamespaceInode,
    IReadOnlyList<int> Pids,
    IReadOnlyList<StaleMount> Mounts,
    IReadOnlyList<MountEntry> Buried);

/// <summary>
/// Finds, from procfs alone, every other mount namespace whose mount table still shows a device.
/// Nothing here touches a mount; confirming that a match is really dead is the caller's job,
/// because FUSE device numbers are reused once the old superblock is gone.
/// </summary>
internal static class StaleMountScanner
{
    public static IReadOnlyList<StaleNamespace> Scan(string procRoot, string deadDevice)
    {
        // The supervisor's own namespace is left out: its host-side mounts are re-bound by the
        // volume manager. /proc/self names the thread group leader, whose namespace is the
        // process's, even when called from a thread that has entered another one.
        var own = Libc.StatIdentity(Path.Combine(procRoot, "self", "ns", "mnt"), out _, out var ownInode) == 0 ? ownInode : (ulong?)null;

        var byNamespace = new Dictionary<ulong, (List<int> Pids, List<StaleMount> Mounts, List<MountEntry> Buried)>();
        foreach (var pid in ListPids(procRoot))
        {
            var pidDir = Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture));
            if (Libc.StatIdentity(Path.Combine(pidDir, "ns", "mnt"), out _, out var inode) != 0 || inode == own)
            {
                continue; // gone, a zombie, or our own namespace
            }
            if (byNamespace.TryGetValue(inode, out var seen))
            {
                seen.Pids.Add(pid);
                continue;
            }
            string text;
            try
            {
                text = File.ReadAllText(Path.Combine(pidDir, "mountinfo"));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue; // exited between the two reads (ESRCH reads as an IOException); another pid of this namespace may follow
            }
            var (mounts, buried) = FindIn(MountInfo.Parse(text), deadDevice);
            byNamespace[inode] = ([pid], mounts, buried);
        }

        var result = new List<StaleNamespace>();
        foreach (var (inode, found) in byNamespace)
        {
            if (found.Mounts.Count > 0)
            {
                result.Add(new StaleNamespace(inode, found.Pids, found.Mounts, found.Buried));
            }
        }
        return result;
    }

    /// <summary>
    /// The visible mounts of <paramref name="deadDevice"/> in one table, outermost first, and the
    /// healthy mounts buried inside them. A mount hidden under another one at the same mount point
    /// (or inside such a mount) is skipped: nobody can reach it, and umount2 on its path would hit
    /// the mount on top.
    /// </summary>
    internal static (List<StaleMount> Mounts, List<MountEntry> Buried) FindIn(IReadOnlyList<MountEntry> table, string deadDevice)
    {
        var byId = new Dictionary<int, MountEntry>();
        var coveredBy = new Dictionary<int, int>(); // mount id -> the mount stacked on it at the same mount point
        foreach (var entry in table)
        {
            byId[entry.MountId] = entry;
        }
        foreach (var entry in table)
        {
            if (byId.TryGetValue(entry.ParentId, out var parent) && parent.MountPoint == entry.MountPoint && entry.MountId != entry.ParentId)
            {
                coveredBy[parent.MountId] = entry.MountId;
            }
        }

        var mounts = new List<StaleMount>();
        var buried = new List<MountEntry>();
        foreach (var entry in table)
        {
            var isDead = entry.Device == deadDevice;
            int? enclosing = null;
            var depth = 0;
            var hidden = coveredBy.ContainsKey(entry.MountId);
            var seen = new HashSet<int> { entry.MountId };
            var below = entry.MountId;
            for (var id = entry.ParentId; byId.TryGetValue(id, out var ancestor) && seen.Add(id); below = id, id = ancestor.ParentId)
            {
                // An ancestor covered by something other than the next mount of this chain hides
                // the whole chain; covered by that next mount, it is just the stack we sit on.
                hidden |= coveredBy.TryGetValue(id, out var top) && top != below;
                if (ancestor.Device == deadDevice)
                {
                    enclosing ??= id;
                    depth++;
                }
            }
            if (hidden)
            {
                continue;
            }
            if (isDead)
            {
                mounts.Add(new StaleMount(entry, enclosing, depth));
            }
            else if (enclosing is not null)
            {
                buried.Add(entry);
            }
        }
        // Stable: mountinfo order already lists parents first; this only guards against moves.
        return ([.. mounts.OrderBy(m => m.Depth)], buried);
    }

    private static IEnumerable<int> ListPids(string procRoot)
    {
        foreach (var dir in Directory.EnumerateDirectories(procRoot))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                yield return pid;
            }
        }
    }
}

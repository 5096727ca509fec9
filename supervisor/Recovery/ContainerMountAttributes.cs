using S3Supervisor.Supervisor.Interop;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Recovery;

/// <summary>What a repaired container mount keeps of the stale one it replaces: its flags and its propagation.</summary>
internal static class ContainerMountAttributes
{
    public static ulong FlagsOf(MountEntry entry)
    {
        // Only set, never cleared: the clone starts with the live staging mount's flags, and a
        // repair must not make a container's view more permissive than the host's.
        ulong flags = 0;
        foreach (var option in entry.Options)
        {
            flags |= option switch
            {
                "ro" => Libc.MOUNT_ATTR_RDONLY,
                "nosuid" => Libc.MOUNT_ATTR_NOSUID,
                "nodev" => Libc.MOUNT_ATTR_NODEV,
                "noexec" => Libc.MOUNT_ATTR_NOEXEC,
                "nosymfollow" => Libc.MOUNT_ATTR_NOSYMFOLLOW,
                _ => 0,
            };
        }
        return flags;
    }

    public static ulong PropagationOf(MountEntry entry)
    {
        // The clone of a shared staging mount would join its peer group. Keep what the container
        // had: a peer (Bidirectional) stays in the group, a slave (HostToContainer) becomes a
        // slave of it, and the usual private bind becomes private again.
        var shared = entry.OptionalFields.Any(f => f.StartsWith("shared:", StringComparison.Ordinal));
        var slave = entry.OptionalFields.Any(f => f.StartsWith("master:", StringComparison.Ordinal));
        return shared ? 0 : slave ? Libc.MS_SLAVE : Libc.MS_PRIVATE;
    }
}

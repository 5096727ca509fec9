namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// Places each s3fs in its volume's cgroup (<see cref="ChildCgroups"/>): outside the supervisor
/// container's cgroups, with the volume's memory limit. The calls are file writes in cgroupfs (a
/// namespace thread only where the supervisor runs in a private cgroup namespace), so they are waited
/// for where they are made: the launcher's start is synchronous, and placement belongs to it.
/// </summary>
public sealed class CgroupPlacement(ChildCgroups cgroups) : IChildPlacement
{
    public string Place(string name, int pid, long? memoryLimitBytes)
    {
        cgroups.PlaceAsync(name, pid, memoryLimitBytes).GetAwaiter().GetResult();
        return name;
    }

    public bool Contains(string cgroup, int pid) =>
        cgroup.Length == 0 || cgroups.ContainsAsync(cgroup, pid).GetAwaiter().GetResult();

    public long OomKills(string cgroup) => cgroup.Length == 0 ? 0 : cgroups.ReadOomKills(cgroup);

    public void Remove(string cgroup)
    {
        if (cgroup.Length > 0)
        {
            cgroups.RemoveAsync(cgroup).GetAwaiter().GetResult();
        }
    }
}

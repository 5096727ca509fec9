using System.Text.Json;

namespace S3Supervisor.Supervisor.Recovery;

/// <summary>A staging directory of our driver that kubelet made: plugins/kubernetes.io/csi/&lt;driver&gt;/&lt;hash&gt;/globalmount.</summary>
public sealed record KubeletStaging(string VolumeHandle, string StagingPath);

/// <summary>A pod's volume directory: pods/&lt;uid&gt;/volumes/kubernetes.io~csi/&lt;pv&gt;/mount.</summary>
public sealed record KubeletTarget(string VolumeHandle, string PodUid, string PersistentVolumeName, string TargetPath);

public sealed record KubeletView(IReadOnlyList<KubeletStaging> Stagings, IReadOnlyList<KubeletTarget> Targets);

/// <summary>
/// Reads what kubelet believes is mounted for our driver, from its own directories and the
/// vol_data.json it writes beside each (driverName, volumeHandle, specVolID). Nothing here is
/// trusted for paths outside the kubelet root: every path is built from the root and directory names.
/// </summary>
public static class KubeletVolumes
{
    public static KubeletView Scan(string kubeletRoot, string driverName)
    {
        var stagings = new List<KubeletStaging>();
        var driverDir = Path.Combine(kubeletRoot, "plugins", "kubernetes.io", "csi", driverName);
        if (Directory.Exists(driverDir))
        {
            foreach (var dir in SafeDirectories(driverDir))
            {
                var data = ReadVolData(Path.Combine(dir, "vol_data.json"));
                if (data is not null && data.Value.Driver == driverName && data.Value.Handle.Length > 0)
                {
                    stagings.Add(new KubeletStaging(data.Value.Handle, Path.Combine(dir, "globalmount")));
                }
            }
        }
        var targets = new List<KubeletTarget>();
        var podsDir = Path.Combine(kubeletRoot, "pods");
        if (Directory.Exists(podsDir))
        {
            foreach (var podDir in SafeDirectories(podsDir))
            {
                var csiDir = Path.Combine(podDir, "volumes", "kubernetes.io~csi");
                if (!Directory.Exists(csiDir))
                {
                    continue;
                }
                foreach (var volumeDir in SafeDirectories(csiDir))
                {
                    var data = ReadVolData(Path.Combine(volumeDir, "vol_data.json"));
                    if (data is not null && data.Value.Driver == driverName && data.Value.Handle.Length > 0)
                    {
                        targets.Add(new KubeletTarget(data.Value.Handle, Path.GetFileName(podDir), data.Value.SpecVolumeId ?? Path.GetFileName(volumeDir), Path.Combine(volumeDir, "mount")));
                    }
                }
            }
        }
        return new KubeletView(stagings, targets);
    }

    /// <summary>kubelet's staging path for a handle (the directory name is the SHA-256 of the handle).</summary>
    public static string StagingPathFor(string kubeletRoot, string driverName, string volumeHandle) =>
        Path.Combine(kubeletRoot, "plugins", "kubernetes.io", "csi", driverName,
            Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(volumeHandle))), "globalmount");

    private static string[] SafeDirectories(string path)
    {
        try
        {
            // Symlinked entries are skipped: kubelet makes real directories.
            return new DirectoryInfo(path).EnumerateDirectories().Where(d => d.LinkTarget is null).Select(d => d.FullName).ToArray();
        }
        catch (IOException)
        {
            return [];
        }
        catch (UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static (string Driver, string Handle, string? SpecVolumeId)? ReadVolData(string path)
    {
        try
        {
            if (!File.Exists(path) || new FileInfo(path).Length > 64 * 1024)
            {
                return null;
            }
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            string? Get(string key) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            return (Get("driverName") ?? string.Empty, Get("volumeHandle") ?? string.Empty, Get("specVolID"));
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}

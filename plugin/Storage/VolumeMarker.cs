using System.Globalization;

namespace S3Supervisor.Plugin.Storage;

/// <summary>
/// What CreateVolume records next to a volume so that a repeated call can tell "mine, same request"
/// from "mine, other capacity" and from "not mine": a hash of the CSI name and the capacity. Kept as
/// bucket tags (bucket per volume) or as a small object outside the volume's prefix (shared bucket),
/// so it is never visible inside the mounted file system. DeleteVolume deletes only what carries one.
/// </summary>
public sealed record VolumeMarker(string NameSha256, long CapacityBytes)
{
    public const string NameTag = "s3supervisor.io/volume-name-sha256";
    public const string CapacityTag = "s3supervisor.io/capacity-bytes";
    /// <summary>Marker objects of prefix volumes live under this key prefix of the shared bucket.</summary>
    public const string ObjectKeyPrefix = ".s3supervisor/volumes/";

    public static VolumeMarker For(string volumeName, long capacityBytes) => new(ResourceNames.Sha256Hex(volumeName), capacityBytes);

    public static string ObjectKey(string prefix) => ObjectKeyPrefix + prefix;

    public bool IsFor(string volumeName) => NameSha256 == ResourceNames.Sha256Hex(volumeName);

    public IReadOnlyDictionary<string, string> ToTags() => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [NameTag] = NameSha256,
        [CapacityTag] = CapacityBytes.ToString(CultureInfo.InvariantCulture),
    };

    public string ToText() => $"{NameTag}={NameSha256}\n{CapacityTag}={CapacityBytes.ToString(CultureInfo.InvariantCulture)}\n";

    public static VolumeMarker? FromTags(IReadOnlyDictionary<string, string> tags) =>
        tags.TryGetValue(NameTag, out var name) && tags.TryGetValue(CapacityTag, out var capacity) ? Create(name, capacity) : null;

    public static VolumeMarker? FromText(string? text)
    {
        if (text is null)
        {
            return null;
        }
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                values[line[..eq]] = line[(eq + 1)..];
            }
        }
        return FromTags(values);
    }

    private static VolumeMarker? Create(string name, string capacity) =>
        name.Length == 64 && long.TryParse(capacity, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes) ? new VolumeMarker(name, bytes) : null;
}

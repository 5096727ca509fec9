using S3Supervisor.Api.V1;

namespace S3Supervisor.Common;

/// <summary>
/// The keys of a CSI volume context (a PV's <c>spec.csi.volumeAttributes</c>, or what CreateVolume
/// returns) and their mapping onto a <see cref="VolumeSource"/>. The plugin uses it for
/// NodeStageVolume; the supervisor uses the same mapping to rebuild a volume from its PV after a restart.
/// </summary>
public static class VolumeContext
{
    public const string Bucket = "bucket";
    public const string Prefix = "prefix";
    public const string Endpoint = "endpoint";
    public const string Region = "region";
    /// <summary>Comma-separated s3fs-style options, e.g. "uid=1000,gid=1000,allow_other,stat_cache_expire=60".</summary>
    public const string Options = "options";

    /// <summary>Keys kubelet adds when the CSIDriver has podInfoOnMount: true.</summary>
    public const string PodName = "csi.storage.k8s.io/pod.name";
    public const string PodNamespace = "csi.storage.k8s.io/pod.namespace";
    public const string PodUid = "csi.storage.k8s.io/pod.uid";
    public const string ServiceAccountName = "csi.storage.k8s.io/serviceAccount.name";
    public const string Ephemeral = "csi.storage.k8s.io/ephemeral";

    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        Bucket, Prefix, Endpoint, Region, Options, PodName, PodNamespace, PodUid, ServiceAccountName, Ephemeral,
        "storage.kubernetes.io/csiProvisionerIdentity",
    };

    /// <summary>Parses and validates a volume context. Unknown keys are rejected so that a typo is never silently ignored.</summary>
    public static VolumeSource Parse(IReadOnlyDictionary<string, string> context, string field = "volume_context")
    {
        foreach (var key in context.Keys)
        {
            if (!Known.Contains(key))
            {
                throw Validate.Invalid($"{field}[{Sanitize(key)}]", $"is not a known key (known: {Bucket}, {Prefix}, {Endpoint}, {Region}, {Options})");
            }
        }
        RefuseEphemeral(context, field);
        var source = new VolumeSource
        {
            Bucket = context.GetValueOrDefault(Bucket, string.Empty),
            Prefix = context.GetValueOrDefault(Prefix, string.Empty),
            Endpoint = context.GetValueOrDefault(Endpoint, string.Empty),
            Region = context.GetValueOrDefault(Region, string.Empty),
            Options = ParseOptions(context.GetValueOrDefault(Options, string.Empty), $"{field}[{Options}]"),
        };
        if (source.Bucket.Length == 0)
        {
            throw Validate.Invalid($"{field}[{Bucket}]", "is required");
        }
        if (source.Endpoint.Length == 0)
        {
            throw Validate.Invalid($"{field}[{Endpoint}]", "is required");
        }
        // The options were checked as they were parsed: only the rest of the source is checked here.
        return VolumeSourceRules.CheckLocation(source, field);
    }

    /// <summary>
    /// The source NodeStageVolume mounts: the volume context, with the PV's mountOptions (CSI
    /// mount_flags, each possibly a comma list) added and overriding, and the whole mount read-only
    /// for a reader-only access mode. The plugin and the supervisor's rebuild both call this, so a
    /// volume restored after a restart is identical to the one kubelet staged.
    /// </summary>
    public static VolumeSource ParseForStage(IReadOnlyDictionary<string, string> context, IEnumerable<string> mountFlags, bool readerOnly, string field = "volume_context")
    {
        var source = Parse(context, field);
        var flags = mountFlags.ToArray();
        for (var i = 0; i < flags.Length; i++)
        {
            // Checked one by one: joined, a "\n" would only be trimmed away and a NUL ignored by number parsing.
            Validate.NoControlCharacters(flags[i], $"volume_capability.mount.mount_flags[{i}]");
        }
        if (flags.Length > 0)
        {
            source.Options.MergeFrom(ParseOptions(string.Join(',', flags), "volume_capability.mount.mount_flags"));
        }
        if (readerOnly)
        {
            source.Options.ReadOnly = true;
        }
        // Each value was checked once, in the text it came from; a rule is about one option, so the
        // merged set needs no second look.
        return source;
    }

    /// <summary>
    /// Inline ephemeral volumes (kubelet sets <c>csi.storage.k8s.io/ephemeral: "true"</c>) are not
    /// supported: any value but "false" (what kubelet sends for a PersistentVolume) is refused.
    /// </summary>
    public static void RefuseEphemeral(IReadOnlyDictionary<string, string> context, string field = "volume_context")
    {
        if (context.TryGetValue(Ephemeral, out var value) && !string.Equals(value, "false", StringComparison.Ordinal))
        {
            throw Validate.Invalid($"{field}[{Ephemeral}]", "inline ephemeral volumes are not supported; use a PersistentVolume");
        }
    }

    /// <summary>Writes a source back as a volume context (what CreateVolume returns).</summary>
    public static Dictionary<string, string> Format(VolumeSource source)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal) { [Bucket] = source.Bucket, [Endpoint] = source.Endpoint };
        if (source.Prefix.Length > 0)
        {
            result[Prefix] = source.Prefix;
        }
        if (source.Region.Length > 0)
        {
            result[Region] = source.Region;
        }
        var options = FormatOptions(source.Options);
        if (options.Length > 0)
        {
            result[Options] = options;
        }
        return result;
    }

    /// <summary>
    /// Parses "uid=1000,allow_other,ro" into typed options and checks them, once. A flag alone means
    /// true; flags also take true/false. Names and values are those of <see cref="MountOptionTable"/>;
    /// any other name is rejected (the allow-list).
    /// </summary>
    public static MountOptions ParseOptions(string? text, string field = "options")
    {
        var o = new MountOptions();
        if (string.IsNullOrEmpty(text))
        {
            return o;
        }
        // Before anything is split or trimmed: TrimEntries would drop a trailing "\r" or "\n" and
        // uint parsing ignores trailing NULs, so "uid=1000\0" would otherwise pass as uid=1000.
        Validate.NoControlCharacters(text, field);
        if (string.IsNullOrWhiteSpace(text))
        {
            return o;
        }
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = raw.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? raw : raw[..eq];
            var value = eq < 0 ? null : raw[(eq + 1)..];
            var f = $"{field}.{Sanitize(name)}";
            if (value is not null && value.Contains('=', StringComparison.Ordinal))
            {
                throw Validate.Invalid(f, "value must not contain '='");
            }
            var option = MountOptionTable.Find(name)
                ?? throw Validate.Invalid(f, $"is not an allowed mount option (allowed: {MountOptionTable.AllowedNames})");
            option.Parse(o, value, f);
        }
        // After every entry is read: a later entry overrides an earlier one, and only the last value counts.
        MountOptionTable.Check(o, field);
        return o;
    }

    /// <summary>Writes typed options back as an options text, in table order.</summary>
    public static string FormatOptions(MountOptions? o) =>
        o is null ? string.Empty : string.Join(',', MountOptionTable.All.Where(option => option.IsSet(o)).Select(option => option.Format(o)));

    /// <summary>Keeps user-supplied names printable and short before they go into an error message.</summary>
    private static string Sanitize(string name)
    {
        var cut = name.Length > 64 ? name[..64] : name;
        return new string(cut.Select(c => char.IsControl(c) ? '?' : c).ToArray());
    }
}

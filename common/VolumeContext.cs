using System.Globalization;
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
        return VolumeSourceRules.Check(source, field);
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
        source.Options = VolumeSourceRules.Options(source.Options, $"{field}[{Options}]");
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
    /// Parses "uid=1000,allow_other,ro" into typed options. A flag alone means true; flags also take
    /// true/false. Unknown names are rejected (the allow-list), values are typed.
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
            switch (name)
            {
                case "uid": o.Uid = UInt(value, f); break;
                case "gid": o.Gid = UInt(value, f); break;
                case "umask": o.Umask = Str(value, f); break;
                case "allow_other": o.AllowOther = Flag(value, f); break;
                case "use_path_request_style": o.UsePathRequestStyle = Flag(value, f); break;
                case "stat_cache_expire": o.StatCacheExpireSeconds = UInt(value, f); break;
                case "max_stat_cache_size": o.MaxStatCacheSize = UInt(value, f); break;
                case "multipart_size": o.MultipartSizeMb = UInt(value, f); break;
                case "parallel_count": o.ParallelCount = UInt(value, f); break;
                case "multireq_max": o.MultireqMax = UInt(value, f); break;
                case "storage_class": o.StorageClass = Str(value, f); break;
                case "sse": o.SseS3 = Str(value, f) switch { "s3" or "true" => true, "false" or "none" => false, _ => throw Validate.Invalid(f, "must be s3 or none") }; break;
                case "enable_noobj_cache": o.EnableNoobjCache = Flag(value, f); break;
                case "insecure_skip_tls_verify": o.InsecureSkipTlsVerify = Flag(value, f); break;
                case "connect_timeout": o.ConnectTimeoutSeconds = UInt(value, f); break;
                case "readwrite_timeout": o.ReadwriteTimeoutSeconds = UInt(value, f); break;
                case "retries": o.Retries = UInt(value, f); break;
                case "public_bucket": o.PublicBucket = Flag(value, f); break;
                case "use_cache": o.UseCache = Flag(value, f); break;
                case "enable_content_md5": o.EnableContentMd5 = Flag(value, f); break;
                case "ro": o.ReadOnly = Flag(value, f); break;
                case "dbglevel": o.Dbglevel = Str(value, f); break;
                default:
                    throw Validate.Invalid(f, "is not an allowed mount option (allowed: uid, gid, umask, allow_other, use_path_request_style, stat_cache_expire, max_stat_cache_size, multipart_size, parallel_count, multireq_max, storage_class, sse, enable_noobj_cache, insecure_skip_tls_verify, connect_timeout, readwrite_timeout, retries, public_bucket, use_cache, enable_content_md5, ro, dbglevel)");
            }
        }
        return VolumeSourceRules.Options(o, field);
    }

    public static string FormatOptions(MountOptions? o)
    {
        if (o is null)
        {
            return string.Empty;
        }
        var parts = new List<string>();
        void Add(bool has, string name, object value) { if (has) { parts.Add(string.Create(CultureInfo.InvariantCulture, $"{name}={value}")); } }
        void AddFlag(bool has, string name, bool value) { if (has) { parts.Add(value ? name : $"{name}=false"); } }
        Add(o.HasUid, "uid", o.Uid);
        Add(o.HasGid, "gid", o.Gid);
        Add(o.HasUmask, "umask", o.Umask);
        AddFlag(o.HasAllowOther, "allow_other", o.AllowOther);
        AddFlag(o.HasUsePathRequestStyle, "use_path_request_style", o.UsePathRequestStyle);
        Add(o.HasStatCacheExpireSeconds, "stat_cache_expire", o.StatCacheExpireSeconds);
        Add(o.HasMaxStatCacheSize, "max_stat_cache_size", o.MaxStatCacheSize);
        Add(o.HasMultipartSizeMb, "multipart_size", o.MultipartSizeMb);
        Add(o.HasParallelCount, "parallel_count", o.ParallelCount);
        Add(o.HasMultireqMax, "multireq_max", o.MultireqMax);
        Add(o.HasStorageClass, "storage_class", o.StorageClass);
        if (o.HasSseS3) { parts.Add(o.SseS3 ? "sse=s3" : "sse=none"); }
        AddFlag(o.HasEnableNoobjCache, "enable_noobj_cache", o.EnableNoobjCache);
        AddFlag(o.HasInsecureSkipTlsVerify, "insecure_skip_tls_verify", o.InsecureSkipTlsVerify);
        Add(o.HasConnectTimeoutSeconds, "connect_timeout", o.ConnectTimeoutSeconds);
        Add(o.HasReadwriteTimeoutSeconds, "readwrite_timeout", o.ReadwriteTimeoutSeconds);
        Add(o.HasRetries, "retries", o.Retries);
        AddFlag(o.HasPublicBucket, "public_bucket", o.PublicBucket);
        AddFlag(o.HasUseCache, "use_cache", o.UseCache);
        AddFlag(o.HasEnableContentMd5, "enable_content_md5", o.EnableContentMd5);
        AddFlag(o.HasReadOnly, "ro", o.ReadOnly);
        Add(o.HasDbglevel, "dbglevel", o.Dbglevel);
        return string.Join(',', parts);
    }

    private static uint UInt(string? value, string field) =>
        uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : throw Validate.Invalid(field, "must be a non-negative whole number");

    private static bool Flag(string? value, string field) => value switch
    {
        null or "true" or "1" => true,
        "false" or "0" => false,
        _ => throw Validate.Invalid(field, "must be true or false"),
    };

    private static string Str(string? value, string field)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw Validate.Invalid(field, "needs a value");
        }
        Validate.NoSpecialCharacters(value, field);
        return value;
    }

    /// <summary>Keeps user-supplied names printable and short before they go into an error message.</summary>
    private static string Sanitize(string name)
    {
        var cut = name.Length > 64 ? name[..64] : name;
        return new string(cut.Select(c => char.IsControl(c) ? '?' : c).ToArray());
    }
}

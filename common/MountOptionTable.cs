using System.Globalization;
using S3Supervisor.Api.V1;

namespace S3Supervisor.Common;

/// <summary>
/// One s3fs option a volume may set, everything about it in one row: its name in an options text
/// ("uid=1000,allow_other"), how its value is read, the rule the typed value keeps, how it is written
/// back into a volume context, and what s3fs is told for it. The rows are <see cref="MountOptionTable"/>.
/// </summary>
public sealed class MountOption
{
    private readonly Func<MountOptions, bool> _isSet;
    private readonly Action<MountOptions, string?, string> _parse;
    private readonly Func<MountOptions, string?> _problem;
    private readonly Func<MountOptions, string> _format;
    private readonly Func<MountOptions, string?, IEnumerable<string>> _s3fs;

    internal MountOption(
        string name,
        int fieldNumber,
        Func<MountOptions, bool> isSet,
        Action<MountOptions, string?, string> parse,
        Func<MountOptions, string?> problem,
        Func<MountOptions, string> format,
        Func<MountOptions, string?, IEnumerable<string>> s3fs)
    {
        Name = name;
        FieldNumber = fieldNumber;
        _isSet = isSet;
        _parse = parse;
        _problem = problem;
        _format = format;
        _s3fs = s3fs;
    }

    /// <summary>The option's name in an options text; a parse error names it.</summary>
    public string Name { get; }

    /// <summary>The <see cref="MountOptions"/> field it sets.</summary>
    public int FieldNumber { get; }

    /// <summary>The proto field's name; a rule's error names it (it is what a typed request carries).</summary>
    public string FieldName => MountOptions.Descriptor.FindFieldByNumber(FieldNumber).Name;

    public bool IsSet(MountOptions options) => _isSet(options);

    /// <summary>Reads <paramref name="value"/> (null for a bare flag) into <paramref name="options"/>; throws InvalidArgument naming <paramref name="field"/>.</summary>
    public void Parse(MountOptions options, string? value, string field) => _parse(options, value, field);

    /// <summary>What is wrong with the option's value in <paramref name="options"/>, or null (also when it is not set).</summary>
    public string? Problem(MountOptions options) => IsSet(options) ? _problem(options) : null;

    /// <summary>The option as an options text writes it; only for a set option.</summary>
    public string Format(MountOptions options) => _format(options);

    /// <summary>The s3fs <c>-o</c> entries for it (none, one or more), defaults included.</summary>
    /// <param name="cacheDirectory">The per-volume cache directory the supervisor chose, or null.</param>
    public IEnumerable<string> S3fsArguments(MountOptions options, string? cacheDirectory) => _s3fs(options, cacheDirectory);
}

/// <summary>
/// The s3fs options a volume may set, one row each (an allow-list: anything else, passwd_file and url
/// above all, is refused). The order of the rows is the order an options text is written in and the
/// order the allowed names are listed in. Parsing (<see cref="VolumeContext.ParseOptions"/>), the rules
/// (<see cref="VolumeSourceRules.Options"/>) and the supervisor's s3fs argument list all read these rows.
/// </summary>
public static class MountOptionTable
{
    private static readonly HashSet<string> StorageClasses = new(StringComparer.Ordinal)
    {
        "STANDARD", "STANDARD_IA", "ONEZONE_IA", "REDUCED_REDUNDANCY", "INTELLIGENT_TIERING", "GLACIER_IR",
    };

    private static readonly string[] DebugLevels = ["crit", "err", "warn", "info", "debug"];

    public static readonly MountOption Uid = Number("uid", MountOptions.UidFieldNumber, o => o.HasUid, o => o.Uid, (o, v) => o.Uid = v);
    public static readonly MountOption Gid = Number("gid", MountOptions.GidFieldNumber, o => o.HasGid, o => o.Gid, (o, v) => o.Gid = v);
    public static readonly MountOption Umask = Text("umask", MountOptions.UmaskFieldNumber, o => o.HasUmask, o => o.Umask, (o, v) => o.Umask = v,
        v => v.Length is 0 or > 4 || v.Any(c => c is < '0' or > '7') ? "must be an octal number such as 022" : null);
    /// <summary>On unless switched off: app pods rarely run as root.</summary>
    public static readonly MountOption AllowOther = Flag("allow_other", MountOptions.AllowOtherFieldNumber, o => o.HasAllowOther, o => o.AllowOther, (o, v) => o.AllowOther = v,
        o => !o.HasAllowOther || o.AllowOther ? ["allow_other"] : []);
    /// <summary>On unless switched off: MinIO, Ceph RGW and OBS want the bucket in the path.</summary>
    public static readonly MountOption UsePathRequestStyle = Flag("use_path_request_style", MountOptions.UsePathRequestStyleFieldNumber, o => o.HasUsePathRequestStyle, o => o.UsePathRequestStyle, (o, v) => o.UsePathRequestStyle = v,
        o => !o.HasUsePathRequestStyle || o.UsePathRequestStyle ? ["use_path_request_style"] : []);
    public static readonly MountOption StatCacheExpire = Number("stat_cache_expire", MountOptions.StatCacheExpireSecondsFieldNumber, o => o.HasStatCacheExpireSeconds, o => o.StatCacheExpireSeconds, (o, v) => o.StatCacheExpireSeconds = v, 0, 86400);
    public static readonly MountOption MaxStatCacheSize = Number("max_stat_cache_size", MountOptions.MaxStatCacheSizeFieldNumber, o => o.HasMaxStatCacheSize, o => o.MaxStatCacheSize, (o, v) => o.MaxStatCacheSize = v, 0, 10_000_000);
    public static readonly MountOption MultipartSize = Number("multipart_size", MountOptions.MultipartSizeMbFieldNumber, o => o.HasMultipartSizeMb, o => o.MultipartSizeMb, (o, v) => o.MultipartSizeMb = v, 5, 5 * 1024);
    public static readonly MountOption ParallelCount = Number("parallel_count", MountOptions.ParallelCountFieldNumber, o => o.HasParallelCount, o => o.ParallelCount, (o, v) => o.ParallelCount = v, 1, 128);
    public static readonly MountOption MultireqMax = Number("multireq_max", MountOptions.MultireqMaxFieldNumber, o => o.HasMultireqMax, o => o.MultireqMax, (o, v) => o.MultireqMax = v, 1, 128);
    /// <summary>Written upper case (S3's names), given to s3fs in lower case (its spelling).</summary>
    public static readonly MountOption StorageClass = Text("storage_class", MountOptions.StorageClassFieldNumber, o => o.HasStorageClass, o => o.StorageClass, (o, v) => o.StorageClass = v,
        v => StorageClasses.Contains(v) ? null : $"must be one of {string.Join(", ", StorageClasses.Order(StringComparer.Ordinal))}", v => v.ToLowerInvariant());
    /// <summary>Server-side encryption with S3-managed keys: "sse=s3" or "sse=none" in a text, use_sse=1 for s3fs.</summary>
    public static readonly MountOption Sse = new("sse", MountOptions.SseS3FieldNumber, o => o.HasSseS3,
        (o, v, f) => o.SseS3 = TextValue(v, f) switch { "s3" or "true" => true, "false" or "none" => false, _ => throw Validate.Invalid(f, "must be s3 or none") },
        _ => null,
        o => o.SseS3 ? "sse=s3" : "sse=none",
        (o, _) => o.SseS3 ? ["use_sse=1"] : []);
    public static readonly MountOption EnableNoobjCache = Flag("enable_noobj_cache", MountOptions.EnableNoobjCacheFieldNumber, o => o.HasEnableNoobjCache, o => o.EnableNoobjCache, (o, v) => o.EnableNoobjCache = v);
    /// <summary>Self-signed on-premise endpoints: s3fs checks neither the certificate nor the host name.</summary>
    public static readonly MountOption InsecureSkipTlsVerify = Flag("insecure_skip_tls_verify", MountOptions.InsecureSkipTlsVerifyFieldNumber, o => o.HasInsecureSkipTlsVerify, o => o.InsecureSkipTlsVerify, (o, v) => o.InsecureSkipTlsVerify = v,
        o => o.InsecureSkipTlsVerify ? ["no_check_certificate", "ssl_verify_hostname=0"] : []);
    public static readonly MountOption ConnectTimeout = Number("connect_timeout", MountOptions.ConnectTimeoutSecondsFieldNumber, o => o.HasConnectTimeoutSeconds, o => o.ConnectTimeoutSeconds, (o, v) => o.ConnectTimeoutSeconds = v, 1, 3600);
    public static readonly MountOption ReadwriteTimeout = Number("readwrite_timeout", MountOptions.ReadwriteTimeoutSecondsFieldNumber, o => o.HasReadwriteTimeoutSeconds, o => o.ReadwriteTimeoutSeconds, (o, v) => o.ReadwriteTimeoutSeconds = v, 1, 3600);
    public static readonly MountOption Retries = Number("retries", MountOptions.RetriesFieldNumber, o => o.HasRetries, o => o.Retries, (o, v) => o.Retries = v, 0, 100);
    /// <summary>Readable without credentials: no passwd file is written, and s3fs signs nothing.</summary>
    public static readonly MountOption PublicBucket = Flag("public_bucket", MountOptions.PublicBucketFieldNumber, o => o.HasPublicBucket, o => o.PublicBucket, (o, v) => o.PublicBucket = v,
        o => o.PublicBucket ? ["public_bucket=1"] : []);
    /// <summary>A flag in a text; s3fs gets the directory the supervisor chose, never one a caller names.</summary>
    public static readonly MountOption UseCache = new("use_cache", MountOptions.UseCacheFieldNumber, o => o.HasUseCache,
        (o, v, f) => o.UseCache = FlagValue(v, f),
        _ => null,
        o => FormatFlag("use_cache", o.UseCache),
        (o, cacheDirectory) => o.UseCache && cacheDirectory is not null ? [$"use_cache={cacheDirectory}"] : []);
    public static readonly MountOption EnableContentMd5 = Flag("enable_content_md5", MountOptions.EnableContentMd5FieldNumber, o => o.HasEnableContentMd5, o => o.EnableContentMd5, (o, v) => o.EnableContentMd5 = v);
    /// <summary>The whole mount read-only.</summary>
    public static readonly MountOption ReadOnly = Flag("ro", MountOptions.ReadOnlyFieldNumber, o => o.HasReadOnly, o => o.ReadOnly, (o, v) => o.ReadOnly = v);
    /// <summary>s3fs's own debug level.</summary>
    public static readonly MountOption Dbglevel = Text("dbglevel", MountOptions.DbglevelFieldNumber, o => o.HasDbglevel, o => o.Dbglevel, (o, v) => o.Dbglevel = v,
        v => DebugLevels.Contains(v) ? null : $"must be one of {string.Join(", ", DebugLevels)}");

    /// <summary>
    /// Not an s3fs option: the memory limit of the volume's own cgroup ("memory_limit=256Mi", a
    /// Kubernetes quantity), which the supervisor sets; s3fs is told nothing.
    /// </summary>
    public static readonly MountOption MemoryLimit = new("memory_limit", MountOptions.MemoryLimitBytesFieldNumber, o => o.HasMemoryLimitBytes,
        (o, v, f) => o.MemoryLimitBytes = MemoryQuantity.TryParseBytes(TextValue(v, f), out var bytes, out var problem) ? (ulong)bytes : throw Validate.Invalid(f, problem),
        o => MemoryQuantity.ChildLimitProblem(o.MemoryLimitBytes),
        o => string.Create(CultureInfo.InvariantCulture, $"memory_limit={o.MemoryLimitBytes}"),
        (_, _) => []);

    /// <summary>Every row, in the order an options text is written.</summary>
    public static readonly IReadOnlyList<MountOption> All =
    [
        Uid, Gid, Umask, AllowOther, UsePathRequestStyle, StatCacheExpire, MaxStatCacheSize, MultipartSize, ParallelCount, MultireqMax,
        StorageClass, Sse, EnableNoobjCache, InsecureSkipTlsVerify, ConnectTimeout, ReadwriteTimeout, Retries, PublicBucket, UseCache,
        EnableContentMd5, ReadOnly, Dbglevel, MemoryLimit,
    ];

    private static readonly Dictionary<string, MountOption> ByName = All.ToDictionary(o => o.Name, StringComparer.Ordinal);

    /// <summary>The names an options text may use, as an error lists them.</summary>
    public static string AllowedNames => string.Join(", ", All.Select(o => o.Name));

    public static MountOption? Find(string name) => ByName.GetValueOrDefault(name);

    /// <summary>Every set option's rule, in table order: throws InvalidArgument naming <c>field.proto_field</c> at the first one broken.</summary>
    public static void Check(MountOptions options, string field)
    {
        foreach (var option in All)
        {
            if (option.Problem(options) is { } problem)
            {
                throw Validate.Invalid($"{field}.{option.FieldName}", problem);
            }
        }
    }

    private static MountOption Number(string name, int fieldNumber, Func<MountOptions, bool> isSet, Func<MountOptions, uint> get, Action<MountOptions, uint> set, uint min = 0, uint max = uint.MaxValue) =>
        new(name, fieldNumber, isSet,
            (o, v, f) => set(o, uint.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw Validate.Invalid(f, "must be a non-negative whole number")),
            o => get(o) >= min && get(o) <= max ? null : string.Create(CultureInfo.InvariantCulture, $"must be between {min} and {max}"),
            o => string.Create(CultureInfo.InvariantCulture, $"{name}={get(o)}"),
            (o, _) => isSet(o) ? [string.Create(CultureInfo.InvariantCulture, $"{name}={get(o)}")] : []);

    /// <summary>A flag: alone or "=true"/"=1" sets it, "=false"/"=0" clears it; s3fs gets its name when it is on, unless <paramref name="s3fs"/> says otherwise.</summary>
    private static MountOption Flag(string name, int fieldNumber, Func<MountOptions, bool> isSet, Func<MountOptions, bool> get, Action<MountOptions, bool> set, Func<MountOptions, IEnumerable<string>>? s3fs = null) =>
        new(name, fieldNumber, isSet,
            (o, v, f) => set(o, FlagValue(v, f)),
            _ => null,
            o => FormatFlag(name, get(o)),
            (o, _) => s3fs?.Invoke(o) ?? (get(o) ? [name] : []));

    /// <summary>A string: never a control character (a typed request may carry any), then its own rule; s3fs gets <c>name=value</c>, <paramref name="forS3fs"/> applied.</summary>
    private static MountOption Text(string name, int fieldNumber, Func<MountOptions, bool> isSet, Func<MountOptions, string> get, Action<MountOptions, string> set, Func<string, string?> problem, Func<string, string>? forS3fs = null) =>
        new(name, fieldNumber, isSet,
            (o, v, f) => set(o, TextValue(v, f)),
            o => get(o).Any(char.IsControl) ? "must not contain control characters" : problem(get(o)),
            o => $"{name}={get(o)}",
            (o, _) => isSet(o) ? [$"{name}={(forS3fs is null ? get(o) : forS3fs(get(o)))}"] : []);

    private static bool FlagValue(string? value, string field) => value switch
    {
        null or "true" or "1" => true,
        "false" or "0" => false,
        _ => throw Validate.Invalid(field, "must be true or false"),
    };

    private static string FormatFlag(string name, bool value) => value ? name : $"{name}=false";

    private static string TextValue(string? value, string field)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw Validate.Invalid(field, "needs a value");
        }
        Validate.NoSpecialCharacters(value, field);
        return value;
    }
}

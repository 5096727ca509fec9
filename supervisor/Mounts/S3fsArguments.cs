using System.Globalization;
using S3Supervisor.Api.V1;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// The one builder of s3fs argument lists. Every value it writes was validated by
/// <see cref="Common.VolumeSourceRules"/>; passwd_file, url and the cache directory are chosen here, never by a caller.
/// Credentials never appear here: s3fs reads them from the passwd file.
/// </summary>
public static class S3fsArguments
{
    /// <param name="passwdFile">Per-volume passwd file, or null for a public bucket.</param>
    /// <param name="cacheDirectory">Per-volume cache directory, used only with use_cache.</param>
    public static IReadOnlyList<string> Build(VolumeSource source, string mountPoint, string? passwdFile, string? cacheDirectory)
    {
        var o = source.Options ?? new MountOptions();
        var bucket = source.Prefix.Length == 0 ? source.Bucket : $"{source.Bucket}:/{source.Prefix}";
        var options = new List<string>
        {
            $"url={source.Endpoint.TrimEnd('/')}",
        };
        if (o.PublicBucket)
        {
            options.Add("public_bucket=1");
        }
        else if (passwdFile is not null)
        {
            options.Add($"passwd_file={passwdFile}");
        }
        if (source.Region.Length > 0)
        {
            // s3fs calls the signing region "endpoint".
            options.Add($"endpoint={source.Region}");
        }
        if (!o.HasUsePathRequestStyle || o.UsePathRequestStyle)
        {
            options.Add("use_path_request_style");
        }
        if (!o.HasAllowOther || o.AllowOther)
        {
            options.Add("allow_other");
        }
        if (o.HasUid)
        {
            options.Add(Invariant($"uid={o.Uid}"));
        }
        if (o.HasGid)
        {
            options.Add(Invariant($"gid={o.Gid}"));
        }
        if (o.HasUmask)
        {
            options.Add($"umask={o.Umask}");
        }
        if (o.HasStatCacheExpireSeconds)
        {
            options.Add(Invariant($"stat_cache_expire={o.StatCacheExpireSeconds}"));
        }
        if (o.HasMaxStatCacheSize)
        {
            options.Add(Invariant($"max_stat_cache_size={o.MaxStatCacheSize}"));
        }
        if (o.HasMultipartSizeMb)
        {
            options.Add(Invariant($"multipart_size={o.MultipartSizeMb}"));
        }
        if (o.HasParallelCount)
        {
            options.Add(Invariant($"parallel_count={o.ParallelCount}"));
        }
        if (o.HasMultireqMax)
        {
            options.Add(Invariant($"multireq_max={o.MultireqMax}"));
        }
        if (o.HasStorageClass)
        {
            options.Add($"storage_class={o.StorageClass.ToLowerInvariant()}");
        }
        if (o.SseS3)
        {
            options.Add("use_sse=1");
        }
        if (o.EnableNoobjCache)
        {
            options.Add("enable_noobj_cache");
        }
        if (o.InsecureSkipTlsVerify)
        {
            options.Add("no_check_certificate");
            options.Add("ssl_verify_hostname=0");
        }
        if (o.HasConnectTimeoutSeconds)
        {
            options.Add(Invariant($"connect_timeout={o.ConnectTimeoutSeconds}"));
        }
        if (o.HasReadwriteTimeoutSeconds)
        {
            options.Add(Invariant($"readwrite_timeout={o.ReadwriteTimeoutSeconds}"));
        }
        if (o.HasRetries)
        {
            options.Add(Invariant($"retries={o.Retries}"));
        }
        if (o.UseCache && cacheDirectory is not null)
        {
            options.Add($"use_cache={cacheDirectory}");
        }
        if (o.EnableContentMd5)
        {
            options.Add("enable_content_md5");
        }
        if (o.ReadOnly)
        {
            options.Add("ro");
        }
        if (o.HasDbglevel)
        {
            options.Add($"dbglevel={o.Dbglevel}");
        }
        // -f: stay in the foreground, so the supervisor is the parent and learns of every exit.
        return [bucket, mountPoint, "-f", "-o", string.Join(',', options)];
    }

    private static string Invariant(FormattableString value) => value.ToString(CultureInfo.InvariantCulture);
}

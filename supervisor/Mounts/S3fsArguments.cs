using S3Supervisor.Api.V1;
using S3Supervisor.Common;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>
/// The one builder of s3fs argument lists. Every value it writes was validated by
/// <see cref="VolumeSourceRules"/>; passwd_file, url and the cache directory are chosen here, never by a caller.
/// Credentials never appear here: s3fs reads them from the passwd file.
/// </summary>
public static class S3fsArguments
{
    /// <summary>
    /// After where and as whom (url, public_bucket or passwd_file, the signing region) come the two
    /// options that are on unless switched off, then every other row of the table in its order: the
    /// list s3fs has always been given, entry for entry.
    /// </summary>
    private static readonly MountOption[] Leading = [MountOptionTable.UsePathRequestStyle, MountOptionTable.AllowOther];

    private static readonly MountOption[] Rest = [.. MountOptionTable.All.Except([MountOptionTable.PublicBucket, .. Leading])];

    /// <param name="passwdFile">Per-volume passwd file, or null for a public bucket.</param>
    /// <param name="cacheDirectory">Per-volume cache directory, used only with use_cache.</param>
    /// <param name="tmpDirectory">Where s3fs keeps files being written until they are uploaded (its tmpdir); null keeps its /tmp.</param>
    public static IReadOnlyList<string> Build(VolumeSource source, string mountPoint, string? passwdFile, string? cacheDirectory, string? tmpDirectory = null)
    {
        var o = source.Options ?? new MountOptions();
        var bucket = source.Prefix.Length == 0 ? source.Bucket : $"{source.Bucket}:/{source.Prefix}";
        var options = new List<string> { $"url={source.Endpoint.TrimEnd('/')}" };
        if (o.PublicBucket)
        {
            options.AddRange(MountOptionTable.PublicBucket.S3fsArguments(o, cacheDirectory));
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
        foreach (var option in Leading.Concat(Rest))
        {
            options.AddRange(option.S3fsArguments(o, cacheDirectory));
        }
        if (tmpDirectory is not null)
        {
            options.Add($"tmpdir={tmpDirectory}");
        }
        // -f: stay in the foreground (no daemon fork), so the pid the supervisor spawned is the s3fs that
        // serves the mount: the one its pidfd watches, the journal records and the next start adopts.
        return [bucket, mountPoint, "-f", "-o", string.Join(',', options)];
    }
}

using S3Supervisor.TestKit;

namespace S3Supervisor.Bench;

/// <summary>Where one bare s3fs should mount: <c>bucket[:/prefix]</c> at <paramref name="MountPoint"/>.</summary>
internal sealed record BareTarget(string Bucket, string? Prefix, string MountPoint);

/// <summary>
/// The baseline: bare <c>s3fs -f</c> through the test kit's <see cref="S3fsMount"/>, with the same
/// core options the supervisor gives its children (url, passwd_file, endpoint=region,
/// use_path_request_style, allow_other), timed from spawn until mountinfo shows the FUSE mount and a
/// stat of the mount point succeeds (polled every 2 ms).
/// </summary>
internal static class BareS3fs
{
    public static async Task<S3fsMount> MountAsync(RgwServer rgw, BareTarget target, TimeSpan timeout, CancellationToken cancellationToken) =>
        (await MountManyAsync(rgw, [target], timeout, cancellationToken))[0];

    /// <summary>One s3fs per target, all started at once; each mount time runs from just before the first start.</summary>
    public static Task<IReadOnlyList<S3fsMount>> MountManyAsync(RgwServer rgw, IReadOnlyList<BareTarget> targets, TimeSpan timeout, CancellationToken cancellationToken) =>
        S3fsMount.MountManyAsync(rgw.Endpoint, rgw.AccessKey, rgw.SecretKey, targets.Select(t => new S3fsMountRequest(t.Bucket, new S3fsMountOptions
        {
            MountPoint = t.MountPoint,
            Prefix = t.Prefix,
            Region = rgw.Region,
            ExtraOptions = ["allow_other"],
            Readiness = S3fsReadiness.Stat,
            PollInterval = TimeSpan.FromMilliseconds(2),
            Timeout = timeout,
        })).ToArray(), cancellationToken);

    public static async Task DisposeAllAsync(IEnumerable<S3fsMount> mounts) =>
        await Task.WhenAll(mounts.Select(m => m.DisposeAsync().AsTask()));
}

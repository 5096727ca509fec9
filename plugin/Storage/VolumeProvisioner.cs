using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;

namespace S3Supervisor.Plugin.Storage;

public sealed record VolumeRequest(string Name, long CapacityBytes, StorageClassParameters Parameters, S3Credentials Credentials);

/// <summary>A created (or found again) volume: its id, its capacity and the source the node side mounts.</summary>
public sealed record ProvisionedVolume(VolumeHandle Handle, long CapacityBytes, VolumeSource Source);

public enum DeleteOutcome
{
    Deleted,
    /// <summary>Nothing there any more (an earlier DeleteVolume finished it).</summary>
    AlreadyGone,
    /// <summary>The id is not one this plugin made, or its bucket/prefix carries no marker: left alone.</summary>
    NotOurs,
}

/// <summary>
/// Controller logic: buckets and prefixes for CSI volumes, idempotent by name. Stateless: everything
/// it needs to know again lives in S3 (markers) or in the volume id.
/// </summary>
public sealed partial class VolumeProvisioner(IObjectStoreFactory stores, IOptions<S3ClientOptions> options, ILogger<VolumeProvisioner> logger)
{
    /// <summary>The directory object s3fs expects for a prefix volume's root.</summary>
    public const string DirectoryContentType = "application/x-directory";

    public async Task<ProvisionedVolume> CreateAsync(VolumeRequest request, CancellationToken cancellationToken)
    {
        var p = request.Parameters;
        var handle = p.SharedBucket
            ? new VolumeHandle(p.Bucket, ResourceNames.Prefix(request.Name), p.Endpoint, p.Region)
            : new VolumeHandle(ResourceNames.Bucket(p.BucketPrefix, request.Name), string.Empty, p.Endpoint, p.Region);
        var id = handle.Format();
        if (id.Length > Validate.MaxIdLength)
        {
            throw Validate.Invalid("parameters", $"the volume id would be {id.Length} characters, more than {Validate.MaxIdLength}; use a shorter endpoint, bucket or bucketPrefix");
        }
        var wanted = VolumeMarker.For(request.Name, request.CapacityBytes);
        using var store = stores.Connect(EndpointOf(handle), request.Credentials);
        if (handle.IsBucketPerVolume)
        {
            await CreateBucketVolumeAsync(store, handle, request.Name, wanted, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await CreatePrefixVolumeAsync(store, handle, request.Name, wanted, cancellationToken).ConfigureAwait(false);
        }
        Log.VolumeCreated(logger, id, request.Name, request.CapacityBytes);
        var source = new VolumeSource
        {
            Bucket = handle.Bucket,
            Prefix = handle.Prefix,
            Endpoint = p.Endpoint.GetLeftPart(UriPartial.Authority),
            Region = p.Region,
            Options = p.Options.Clone(),
        };
        return new ProvisionedVolume(handle, request.CapacityBytes, source);
    }

    public async Task<DeleteOutcome> DeleteAsync(string volumeId, S3Credentials credentials, CancellationToken cancellationToken)
    {
        var handle = VolumeHandle.TryParse(volumeId);
        if (handle is null)
        {
            Log.DeleteSkipped(logger, volumeId, "the id was not made by this plugin");
            return DeleteOutcome.NotOurs;
        }
        using var store = stores.Connect(EndpointOf(handle), credentials);
        if (!await store.BucketExistsAsync(handle.Bucket, cancellationToken).ConfigureAwait(false))
        {
            return DeleteOutcome.AlreadyGone;
        }
        if (handle.IsBucketPerVolume)
        {
            if (VolumeMarker.FromTags(await store.GetBucketTagsAsync(handle.Bucket, cancellationToken).ConfigureAwait(false)) is null)
            {
                Log.DeleteSkipped(logger, volumeId, "the bucket carries no volume marker");
                return DeleteOutcome.NotOurs;
            }
            var count = await store.DeleteObjectsAsync(handle.Bucket, string.Empty, cancellationToken).ConfigureAwait(false);
            await store.DeleteBucketAsync(handle.Bucket, cancellationToken).ConfigureAwait(false);
            Log.VolumeDeleted(logger, volumeId, count);
            return DeleteOutcome.Deleted;
        }
        var markerKey = VolumeMarker.ObjectKey(handle.Prefix);
        if (VolumeMarker.FromText(await store.GetObjectTextAsync(handle.Bucket, markerKey, cancellationToken).ConfigureAwait(false)) is null)
        {
            // Either never ours, or a finished delete (the marker goes last).
            return DeleteOutcome.AlreadyGone;
        }
        // The trailing '/' keeps "pvc-1" from taking "pvc-10" with it.
        var deleted = await store.DeleteObjectsAsync(handle.Bucket, handle.Prefix + "/", cancellationToken).ConfigureAwait(false);
        await store.DeleteObjectAsync(handle.Bucket, markerKey, cancellationToken).ConfigureAwait(false);
        Log.VolumeDeleted(logger, volumeId, deleted);
        return DeleteOutcome.Deleted;
    }

    /// <summary>Whether the id names a volume this plugin made that still exists.</summary>
    public async Task<bool> ExistsAsync(string volumeId, S3Credentials credentials, CancellationToken cancellationToken)
    {
        var handle = VolumeHandle.TryParse(volumeId);
        if (handle is null)
        {
            return false;
        }
        using var store = stores.Connect(EndpointOf(handle), credentials);
        if (!await store.BucketExistsAsync(handle.Bucket, cancellationToken).ConfigureAwait(false))
        {
            return false;
        }
        return handle.IsBucketPerVolume
            ? VolumeMarker.FromTags(await store.GetBucketTagsAsync(handle.Bucket, cancellationToken).ConfigureAwait(false)) is not null
            : VolumeMarker.FromText(await store.GetObjectTextAsync(handle.Bucket, VolumeMarker.ObjectKey(handle.Prefix), cancellationToken).ConfigureAwait(false)) is not null;
    }

    private static async Task CreateBucketVolumeAsync(IObjectStore store, VolumeHandle handle, string name, VolumeMarker wanted, CancellationToken ct)
    {
        if (await store.BucketExistsAsync(handle.Bucket, ct).ConfigureAwait(false))
        {
            var existing = VolumeMarker.FromTags(await store.GetBucketTagsAsync(handle.Bucket, ct).ConfigureAwait(false));
            if (existing is not null)
            {
                Compare(existing, wanted, name, $"bucket {handle.Bucket}");
                return;
            }
            // A bucket without marker: ours from a CreateVolume that died before tagging, if empty;
            // someone else's data otherwise, which a later DeleteVolume must never remove.
            if ((await store.ListKeysAsync(handle.Bucket, string.Empty, 1, ct).ConfigureAwait(false)).Count > 0)
            {
                throw new RpcException(new Status(StatusCode.AlreadyExists, $"bucket {handle.Bucket} already exists with data and was not created for volume \"{name}\""));
            }
        }
        else
        {
            await store.CreateBucketAsync(handle.Bucket, ct).ConfigureAwait(false);
        }
        await store.PutBucketTagsAsync(handle.Bucket, wanted.ToTags(), ct).ConfigureAwait(false);
    }

    private static async Task CreatePrefixVolumeAsync(IObjectStore store, VolumeHandle handle, string name, VolumeMarker wanted, CancellationToken ct)
    {
        if (!await store.BucketExistsAsync(handle.Bucket, ct).ConfigureAwait(false))
        {
            // The shared bucket is created on first use and never deleted by the plugin.
            await store.CreateBucketAsync(handle.Bucket, ct).ConfigureAwait(false);
        }
        var markerKey = VolumeMarker.ObjectKey(handle.Prefix);
        var existing = VolumeMarker.FromText(await store.GetObjectTextAsync(handle.Bucket, markerKey, ct).ConfigureAwait(false));
        if (existing is not null)
        {
            Compare(existing, wanted, name, $"prefix {handle.Prefix} of bucket {handle.Bucket}");
            return;
        }
        var directory = handle.Prefix + "/";
        var keys = await store.ListKeysAsync(handle.Bucket, directory, 2, ct).ConfigureAwait(false);
        if (keys.Any(k => k != directory))
        {
            throw new RpcException(new Status(StatusCode.AlreadyExists, $"prefix {handle.Prefix} of bucket {handle.Bucket} already holds data and was not created for volume \"{name}\""));
        }
        // The directory object first, the marker last: the marker says "complete".
        await store.PutObjectTextAsync(handle.Bucket, directory, string.Empty, DirectoryContentType, ct).ConfigureAwait(false);
        await store.PutObjectTextAsync(handle.Bucket, markerKey, wanted.ToText(), "text/plain", ct).ConfigureAwait(false);
    }

    private static void Compare(VolumeMarker existing, VolumeMarker wanted, string name, string where)
    {
        if (!existing.IsFor(name))
        {
            throw new RpcException(new Status(StatusCode.AlreadyExists, $"{where} belongs to another volume name than \"{name}\""));
        }
        if (existing.CapacityBytes != wanted.CapacityBytes)
        {
            throw new RpcException(new Status(StatusCode.AlreadyExists,
                $"volume \"{name}\" already exists with capacity {existing.CapacityBytes} bytes, not the requested {wanted.CapacityBytes}"));
        }
    }

    private S3Endpoint EndpointOf(VolumeHandle handle) =>
        new(handle.Endpoint, handle.Region, options.Value.S3ForcePathStyle, options.Value.S3InsecureSkipTlsVerify);

    private static partial class Log
    {
        [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "Volume {VolumeId} ready for name {Name} ({CapacityBytes} bytes)")]
        public static partial void VolumeCreated(ILogger logger, string volumeId, string name, long capacityBytes);

        [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "Volume {VolumeId} deleted ({Objects} objects removed)")]
        public static partial void VolumeDeleted(ILogger logger, string volumeId, long objects);

        [LoggerMessage(EventId = 202, Level = LogLevel.Warning, Message = "DeleteVolume left {VolumeId} alone: {Reason}")]
        public static partial void DeleteSkipped(ILogger logger, string volumeId, string reason);
    }
}

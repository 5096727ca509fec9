namespace S3Supervisor.Plugin.Storage;

/// <summary>
/// The few S3 operations the Controller needs, against one endpoint with one set of credentials.
/// Every method is idempotent in the way the Controller relies on: creating a bucket the caller
/// already owns succeeds, deleting what is gone succeeds. Failures are <see cref="Grpc.Core.RpcException"/>s
/// with a CSI-suitable status code.
/// </summary>
public interface IObjectStore : IDisposable
{
    Task<bool> BucketExistsAsync(string bucket, CancellationToken cancellationToken);

    /// <summary>Creates the bucket; succeeds when the caller already owns it. AlreadyExists when another account owns the name.</summary>
    Task CreateBucketAsync(string bucket, CancellationToken cancellationToken);

    /// <summary>Deletes an empty bucket; succeeds when it does not exist.</summary>
    Task DeleteBucketAsync(string bucket, CancellationToken cancellationToken);

    /// <summary>The bucket's tags; empty when it has none.</summary>
    Task<IReadOnlyDictionary<string, string>> GetBucketTagsAsync(string bucket, CancellationToken cancellationToken);

    Task PutBucketTagsAsync(string bucket, IReadOnlyDictionary<string, string> tags, CancellationToken cancellationToken);

    /// <summary>A small text object, or null when the key does not exist.</summary>
    Task<string?> GetObjectTextAsync(string bucket, string key, CancellationToken cancellationToken);

    Task PutObjectTextAsync(string bucket, string key, string text, string contentType, CancellationToken cancellationToken);

    /// <summary>Deletes one object; succeeds when it does not exist.</summary>
    Task DeleteObjectAsync(string bucket, string key, CancellationToken cancellationToken);

    /// <summary>Up to <paramref name="max"/> keys that start with <paramref name="prefix"/>.</summary>
    Task<IReadOnlyList<string>> ListKeysAsync(string bucket, string prefix, int max, CancellationToken cancellationToken);

    /// <summary>Deletes every object whose key starts with <paramref name="prefix"/> ("" for the whole bucket), page by page. Returns how many.</summary>
    Task<long> DeleteObjectsAsync(string bucket, string prefix, CancellationToken cancellationToken);
}

public interface IObjectStoreFactory
{
    IObjectStore Connect(S3Endpoint endpoint, S3Credentials credentials);
}

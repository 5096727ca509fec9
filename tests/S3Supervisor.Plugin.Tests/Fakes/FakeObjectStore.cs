using System.Collections.Concurrent;
using Grpc.Core;
using S3Supervisor.Plugin.Storage;

namespace S3Supervisor.Plugin.Tests.Fakes;

/// <summary>An in-memory S3 with the semantics <see cref="IObjectStore"/> promises; records who connected how.</summary>
public sealed class FakeObjectStore : IObjectStoreFactory
{
    public sealed class Bucket
    {
        public ConcurrentDictionary<string, (string Text, string ContentType)> Objects { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, string> Tags { get; } = new(StringComparer.Ordinal);
    }

    public ConcurrentDictionary<string, Bucket> Buckets { get; } = new(StringComparer.Ordinal);

    public List<(S3Endpoint Endpoint, S3Credentials Credentials)> Connections { get; } = [];

    /// <summary>Runs at the start of every operation with its name; throw to simulate S3 failing.</summary>
    public Action<string>? Before { get; set; }

    public IObjectStore Connect(S3Endpoint endpoint, S3Credentials credentials)
    {
        lock (Connections)
        {
            Connections.Add((endpoint, credentials));
        }
        return new Session(this);
    }

    public Bucket AddBucket(string name) => Buckets.GetOrAdd(name, _ => new Bucket());

    private sealed class Session(FakeObjectStore s3) : IObjectStore
    {
        public Task<bool> BucketExistsAsync(string bucket, CancellationToken cancellationToken)
        {
            s3.Before?.Invoke(nameof(BucketExistsAsync));
            return Task.FromResult(s3.Buckets.ContainsKey(bucket));
        }

        public Task CreateBucketAsync(string bucket, CancellationToken cancellationToken)
        {
            s3.Before?.Invoke(nameof(CreateBucketAsync));
            s3.AddBucket(bucket);
            return Task.CompletedTask;
        }

        public Task DeleteBucketAsync(string bucket, CancellationToken cancellationToken)
        {
            s3.Before?.Invoke(nameof(DeleteBucketAsync));
            if (s3.Buckets.TryGetValue(bucket, out var b) && !b.Objects.IsEmpty)
            {
                throw new RpcException(new Status(StatusCode.FailedPrecondition, "BucketNotEmpty"));
            }
            s3.Buckets.TryRemove(bucket, out _);
            return Task.CompletedTask;
        }

        public Task<IReadOnlyDictionary<string, string>> GetBucketTagsAsync(string bucket, CancellationToken cancellationToken)
        {
            s3.Before?.Invoke(nameof(GetBucketTagsAsync));
            return Task.FromResult<IReadOnlyDictionary<string, string>>(new Dictionary<string, string>(Get(bucket).Tags));
        }

        public Task PutBucketTagsAsync(string bucket, IReadOnlyDictionary<string, string> tags, CancellationToken cancellationToken)
        {
            s3.Before?.Invoke(nameof(PutBucketTagsAsync));
            var b = Get(bucket);
            b.Tags.Clear();
            foreach (var (k, v) in tags)
            {
                b.Tags[k] = v;
            }
            return Task.CompletedTask;
        }

        public Task<string?> GetObjectTextAsync(string bucket, string key, CancellationToken cancellationToken)
        {
            s3.Before?.Invoke(nameof(GetObjectTextAsync));
            return Task.FromResult(Get(bucket).Objects.TryGetValue(key, out var o) ? o.Text : null);
        }

        public Task PutObjectTextAsync(string bucket, string key, string text, string contentType, CancellationToken cancellationToken)
        {
            s3.Before?.Invoke(nameof(PutObjectTextAsync));
            Get(bucket).Objects[key] = (text, contentType);
            return Task.CompletedTask;
        }

        public Task DeleteObjectAsync(string bucket, string key, CancellationToken cancellationToken)
        {
            s3.Before?.Invoke(nameof(DeleteObjectAsync));
            Get(bucket).Objects.TryRemove(key, out _);
            return Task.CompletedTask;
        }

        public Task<IReadOnlyList<string>> ListKeysAsync(string bucket, string prefix, int max, CancellationToken cancellationToken)
        {
            s3.Before?.Invoke(nameof(ListKeysAsync));
            return Task.FromResult<IReadOnlyList<string>>(Get(bucket).Objects.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal).Take(max).ToList());
        }

        public Task<long> DeleteObjectsAsync(string bucket, string prefix, CancellationToken cancellationToken)
        {
            s3.Before?.Invoke(nameof(DeleteObjectsAsync));
            var b = Get(bucket);
            long n = 0;
            foreach (var key in b.Objects.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList())
            {
                n += b.Objects.TryRemove(key, out _) ? 1 : 0;
            }
            return Task.FromResult(n);
        }

        public void Dispose()
        {
        }

        private Bucket Get(string bucket) =>
            s3.Buckets.TryGetValue(bucket, out var b) ? b : throw new RpcException(new Status(StatusCode.NotFound, $"S3 error: NoSuchBucket {bucket}"));
    }
}

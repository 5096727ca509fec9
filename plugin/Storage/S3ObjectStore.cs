using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Grpc.Core;

namespace S3Supervisor.Plugin.Storage;

/// <summary>Creates one AWSSDK client per request: credentials arrive with each request's secrets.</summary>
public sealed class S3ObjectStoreFactory : IObjectStoreFactory
{
    public IObjectStore Connect(S3Endpoint endpoint, S3Credentials credentials) =>
        new S3ObjectStore(new AmazonS3Client(CreateCredentials(credentials), CreateConfig(endpoint)));

    public static AWSCredentials CreateCredentials(S3Credentials credentials) =>
        string.IsNullOrEmpty(credentials.SessionToken)
            ? new BasicAWSCredentials(credentials.AccessKeyId, credentials.SecretAccessKey)
            : new SessionAWSCredentials(credentials.AccessKeyId, credentials.SecretAccessKey, credentials.SessionToken);

    public static AmazonS3Config CreateConfig(S3Endpoint endpoint)
    {
        var config = new AmazonS3Config
        {
            ServiceURL = endpoint.Url.GetLeftPart(UriPartial.Authority),
            AuthenticationRegion = endpoint.SigningRegion,
            ForcePathStyle = endpoint.ForcePathStyle,
            // S3-compatible servers (Ceph RGW, older MinIO) do not all understand the SDK's default
            // flexible checksums; send them only where the API demands one.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            Timeout = TimeSpan.FromSeconds(30),
            MaxErrorRetry = 2,
        };
        if (endpoint.InsecureSkipTlsVerify)
        {
            config.HttpClientFactory = new InsecureHttpClientFactory();
        }
        return config;
    }

    private sealed class InsecureHttpClientFactory : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig) =>
            new(new SocketsHttpHandler
            {
                // Only on explicit request (Csi:S3InsecureSkipTlsVerify), for self-signed on-premise endpoints.
#pragma warning disable CA5359
                SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true },
#pragma warning restore CA5359
                ConnectTimeout = TimeSpan.FromSeconds(10),
            })
            {
                Timeout = clientConfig.Timeout ?? TimeSpan.FromSeconds(100),
            };
    }
}

/// <summary>The AWSSDK implementation of <see cref="IObjectStore"/>; maps S3 errors onto CSI status codes.</summary>
public sealed class S3ObjectStore(IAmazonS3 client) : IObjectStore
{
    public Task<bool> BucketExistsAsync(string bucket, CancellationToken cancellationToken) =>
        Guard($"checking bucket {bucket}", async () =>
        {
            try
            {
                await client.HeadBucketAsync(new HeadBucketRequest { BucketName = bucket }, cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
                return false;
            }
        });

    public Task CreateBucketAsync(string bucket, CancellationToken cancellationToken) =>
        Guard($"creating bucket {bucket}", async () =>
        {
            try
            {
                await client.PutBucketAsync(new PutBucketRequest { BucketName = bucket }, cancellationToken).ConfigureAwait(false);
            }
            catch (AmazonS3Exception e) when (e.ErrorCode == "BucketAlreadyOwnedByYou")
            {
            }
            return true;
        });

    public Task DeleteBucketAsync(string bucket, CancellationToken cancellationToken) =>
        Guard($"deleting bucket {bucket}", async () =>
        {
            try
            {
                await client.DeleteBucketAsync(new DeleteBucketRequest { BucketName = bucket }, cancellationToken).ConfigureAwait(false);
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
            }
            return true;
        });

    public Task<IReadOnlyDictionary<string, string>> GetBucketTagsAsync(string bucket, CancellationToken cancellationToken) =>
        Guard<IReadOnlyDictionary<string, string>>($"reading the tags of bucket {bucket}", async () =>
        {
            try
            {
                var response = await client.GetBucketTaggingAsync(new GetBucketTaggingRequest { BucketName = bucket }, cancellationToken).ConfigureAwait(false);
                return (response.TagSet ?? []).ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal);
            }
            catch (AmazonS3Exception e) when (e.ErrorCode == "NoSuchTagSet" || e.StatusCode == HttpStatusCode.NotFound)
            {
                return new Dictionary<string, string>();
            }
        });

    public Task PutBucketTagsAsync(string bucket, IReadOnlyDictionary<string, string> tags, CancellationToken cancellationToken) =>
        Guard($"tagging bucket {bucket}", async () =>
        {
            await client.PutBucketTaggingAsync(new PutBucketTaggingRequest
            {
                BucketName = bucket,
                TagSet = tags.Select(t => new Tag { Key = t.Key, Value = t.Value }).ToList(),
            }, cancellationToken).ConfigureAwait(false);
            return true;
        });

    public Task<string?> GetObjectTextAsync(string bucket, string key, CancellationToken cancellationToken) =>
        Guard($"reading {bucket}/{key}", async () =>
        {
            try
            {
                using var response = await client.GetObjectAsync(new GetObjectRequest { BucketName = bucket, Key = key }, cancellationToken).ConfigureAwait(false);
                using var reader = new StreamReader(response.ResponseStream);
                return (string?)await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
                return null;
            }
        });

    public Task PutObjectTextAsync(string bucket, string key, string text, string contentType, CancellationToken cancellationToken) =>
        Guard($"writing {bucket}/{key}", async () =>
        {
            await client.PutObjectAsync(new PutObjectRequest
            {
                BucketName = bucket,
                Key = key,
                ContentBody = text,
                ContentType = contentType,
                UseChunkEncoding = false,
            }, cancellationToken).ConfigureAwait(false);
            return true;
        });

    public Task DeleteObjectAsync(string bucket, string key, CancellationToken cancellationToken) =>
        Guard($"deleting {bucket}/{key}", async () =>
        {
            try
            {
                await client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = bucket, Key = key }, cancellationToken).ConfigureAwait(false);
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
            }
            return true;
        });

    public Task<IReadOnlyList<string>> ListKeysAsync(string bucket, string prefix, int max, CancellationToken cancellationToken) =>
        Guard<IReadOnlyList<string>>($"listing {bucket}/{prefix}", async () =>
        {
            var response = await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket, Prefix = prefix, MaxKeys = max }, cancellationToken).ConfigureAwait(false);
            return (response.S3Objects ?? []).Select(o => o.Key).Take(max).ToList();
        });

    public Task<long> DeleteObjectsAsync(string bucket, string prefix, CancellationToken cancellationToken) =>
        Guard($"deleting the objects under {bucket}/{prefix}", async () =>
        {
            long deleted = 0;
            string? token = null;
            do
            {
                // One page of at most 1000 keys, the DeleteObjects limit, at a time.
                var page = await client.ListObjectsV2Async(new ListObjectsV2Request
                {
                    BucketName = bucket,
                    Prefix = prefix,
                    MaxKeys = 1000,
                    ContinuationToken = token,
                }, cancellationToken).ConfigureAwait(false);
                var keys = (page.S3Objects ?? []).Select(o => new KeyVersion { Key = o.Key }).ToList();
                if (keys.Count > 0)
                {
                    var result = await client.DeleteObjectsAsync(new DeleteObjectsRequest { BucketName = bucket, Objects = keys, Quiet = true }, cancellationToken).ConfigureAwait(false);
                    var errors = result.DeleteErrors ?? [];
                    if (errors.Count > 0)
                    {
                        throw new RpcException(new Status(StatusCode.Internal,
                            $"S3 refused to delete {errors.Count} objects under {bucket}/{prefix}, first {errors[0].Key}: {errors[0].Code}"));
                    }
                    deleted += keys.Count;
                }
                token = page.IsTruncated == true ? page.NextContinuationToken : null;
            }
            while (token is not null);
            return deleted;
        });

    public void Dispose() => client.Dispose();

    /// <summary>
    /// Runs an S3 call and turns its failures into CSI status codes. S3 error messages name buckets
    /// and keys, never credentials, so they are passed on.
    /// </summary>
    private static async Task<T> Guard<T>(string what, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (AmazonServiceException e)
        {
            var code = e.StatusCode switch
            {
                HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized => StatusCode.PermissionDenied,
                HttpStatusCode.NotFound => StatusCode.NotFound,
                HttpStatusCode.Conflict when e.ErrorCode == "BucketAlreadyExists" => StatusCode.AlreadyExists,
                HttpStatusCode.Conflict => StatusCode.FailedPrecondition,
                HttpStatusCode.ServiceUnavailable or HttpStatusCode.BadGateway or HttpStatusCode.GatewayTimeout or HttpStatusCode.InternalServerError => StatusCode.Unavailable,
                HttpStatusCode.TooManyRequests => StatusCode.ResourceExhausted,
                _ when e.InnerException is HttpRequestException or IOException => StatusCode.Unavailable,
                _ => StatusCode.Internal,
            };
            var s3Code = string.IsNullOrEmpty(e.ErrorCode) ? ((int)e.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture) : e.ErrorCode;
            throw new RpcException(new Status(code, $"S3 error while {what}: {s3Code}: {e.Message}"));
        }
        catch (Exception e) when (e is HttpRequestException or IOException or AmazonClientException or TimeoutException or TaskCanceledException && e is not OperationCanceledException { CancellationToken.IsCancellationRequested: true })
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"S3 endpoint unreachable while {what}: {e.Message}"));
        }
    }
}

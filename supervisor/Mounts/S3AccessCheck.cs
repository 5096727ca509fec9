using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using S3Supervisor.Api.V1;

namespace S3Supervisor.Supervisor.Mounts;

/// <summary>The question asked of S3 while s3fs starts, answered before a volume counts as staged (see <see cref="S3AccessCheck"/>); a fake stands in for it in unit tests.</summary>
public interface IS3AccessCheck
{
    Task CheckAsync(VolumeSource source, Credentials? credentials, CancellationToken cancellationToken);
}

/// <summary>The real check: one request to the volume's endpoint.</summary>
public sealed class HttpS3AccessCheck(TimeProvider time) : IS3AccessCheck
{
    public Task CheckAsync(VolumeSource source, Credentials? credentials, CancellationToken cancellationToken) =>
        S3AccessCheck.CheckAsync(source, credentials, time, cancellationToken);
}

/// <summary>
/// Asks S3, while s3fs starts (the stage waits for both), whether the volume's credentials may list its bucket and prefix:
/// one SigV4-signed ListObjectsV2 (max-keys=1), the request s3fs's own service check makes.
///
/// Why: s3fs 1.90 mounts first and checks the credentials inside its FUSE init, then exits (with
/// code 0). A stat through the new mount can still be answered by another FUSE worker thread after
/// the check failed, so "the mount answers and the child is alive" is a race, and a wrong key could
/// be reported as staged. S3's own answer to a signed request is not a race.
/// </summary>
public static class S3AccessCheck
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(5), UseProxy = false })
    {
        Timeout = TimeSpan.FromSeconds(10),
    };

    // Only for volumes whose operator set insecure_skip_tls_verify (self-signed on-premise endpoints),
    // which s3fs itself is told to honour (no_check_certificate): the check must see what s3fs sees.
#pragma warning disable CA5359
    private static readonly HttpClient InsecureHttp = new(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(5),
        UseProxy = false,
        SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true },
    })
    {
        Timeout = TimeSpan.FromSeconds(10),
    };
#pragma warning restore CA5359

    /// <summary>
    /// Throws PermissionDenied (S3 refused the key or the signature, or access) or NotFound (no such
    /// bucket) with S3's error code, never a secret; Unavailable (transient: kubelet retries) when the
    /// endpoint cannot be reached at all (nothing listens, a TLS handshake with a plain-HTTP port, no
    /// answer in time). Any other unexpected status is left to s3fs, whose own message then tells.
    /// Without credentials (a public bucket) the request goes unsigned.
    /// </summary>
    public static async Task CheckAsync(VolumeSource source, Credentials? credentials, TimeProvider time, CancellationToken cancellationToken)
    {
        var request = BuildRequest(source, credentials, time.GetUtcNow());
        HttpResponseMessage response;
        try
        {
            response = await (source.Options.InsecureSkipTlsVerify ? InsecureHttp : Http).SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new VolumeException(VolumeErrorKind.Unavailable, "source.endpoint", $"{source.Endpoint} cannot be reached ({Reason(e)}); retrying is safe");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new VolumeException(VolumeErrorKind.Unavailable, "source.endpoint", $"{source.Endpoint} did not answer within {Http.Timeout.TotalSeconds:0} s");
        }
        using (response)
        {
            if (response.StatusCode is not (HttpStatusCode.Forbidden or HttpStatusCode.NotFound or HttpStatusCode.BadRequest))
            {
                return;
            }
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            var code = ErrorCode(body);
            var where = S3Location.Of(source);
            switch (response.StatusCode)
            {
                case HttpStatusCode.Forbidden:
                    throw new VolumeException(VolumeErrorKind.PermissionDenied, "credentials", $"S3 refused to list {where} ({code}); check the access key, the secret and the bucket policy");
                case HttpStatusCode.NotFound when code == "NoSuchBucket":
                    throw new VolumeException(VolumeErrorKind.NotFound, "source.bucket", $"{source.Bucket} does not exist at {source.Endpoint} (NoSuchBucket)");
                case HttpStatusCode.BadRequest when code is "InvalidAccessKeyId" or "AuthorizationHeaderMalformed" or "InvalidToken":
                    throw new VolumeException(VolumeErrorKind.PermissionDenied, "credentials", $"S3 refused the key for {where} ({code})");
                default:
                    return;
            }
        }
    }

    /// <summary>GET ?list-type=2&amp;max-keys=1&amp;prefix=..., path-style or virtual-hosted as s3fs will address it, signed with SigV4.</summary>
    internal static HttpRequestMessage BuildRequest(VolumeSource source, Credentials? credentials, DateTimeOffset now)
    {
        var endpoint = new Uri(source.Endpoint);
        var pathStyle = !source.Options.HasUsePathRequestStyle || source.Options.UsePathRequestStyle;
        var basePath = endpoint.AbsolutePath.TrimEnd('/');
        var host = pathStyle ? endpoint.Authority : $"{source.Bucket}.{endpoint.Authority}";
        var path = pathStyle ? $"{basePath}/{source.Bucket}" : (basePath.Length == 0 ? "/" : basePath + "/");
        var query = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["list-type"] = "2",
            ["max-keys"] = "1",
            ["prefix"] = source.Prefix.Length == 0 ? string.Empty : source.Prefix + "/",
        };
        var canonicalQuery = string.Join('&', query.Select(kv => $"{Encode(kv.Key)}={Encode(kv.Value)}"));
        var canonicalUri = string.Join('/', path.Split('/').Select(Encode));
        if (credentials is null)
        {
            var anonymous = new UriBuilder(endpoint.Scheme, pathStyle ? endpoint.Host : $"{source.Bucket}.{endpoint.Host}", endpoint.Port) { Path = canonicalUri, Query = canonicalQuery }.Uri;
            return new HttpRequestMessage(HttpMethod.Get, anonymous);
        }
        var region = source.Region.Length == 0 ? "us-east-1" : source.Region;
        var amzDate = now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var date = amzDate[..8];
        const string emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        const string signedHeaders = "host;x-amz-content-sha256;x-amz-date";
        var canonicalRequest = $"GET\n{canonicalUri}\n{canonicalQuery}\nhost:{host}\nx-amz-content-sha256:{emptyHash}\nx-amz-date:{amzDate}\n\n{signedHeaders}\n{emptyHash}";
        var scope = $"{date}/{region}/s3/aws4_request";
        var stringToSign = $"AWS4-HMAC-SHA256\n{amzDate}\n{scope}\n{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalRequest)))}";
        var key = Hmac(Hmac(Hmac(Hmac(Encoding.UTF8.GetBytes("AWS4" + credentials.SecretAccessKey), date), region), "s3"), "aws4_request");
        var signature = Hex(Hmac(key, stringToSign));

        var uri = new UriBuilder(endpoint.Scheme, pathStyle ? endpoint.Host : $"{source.Bucket}.{endpoint.Host}", endpoint.Port) { Path = canonicalUri, Query = canonicalQuery }.Uri;
        var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.Host = host;
        request.Headers.TryAddWithoutValidation("x-amz-content-sha256", emptyHash);
        request.Headers.TryAddWithoutValidation("x-amz-date", amzDate);
        request.Headers.TryAddWithoutValidation("Authorization", $"AWS4-HMAC-SHA256 Credential={credentials.AccessKeyId}/{scope}, SignedHeaders={signedHeaders}, Signature={signature}");
        return request;
    }

    /// <summary>SigV4 URI encoding: unreserved characters as they are, every other byte %XX (upper case).</summary>
    internal static string Encode(string value)
    {
        var result = new StringBuilder(value.Length);
        foreach (var b in Encoding.UTF8.GetBytes(value))
        {
            var c = (char)b;
            if (char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '~')
            {
                result.Append(c);
            }
            else
            {
                result.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }
        return result.ToString();
    }

    /// <summary>The innermost cause in words ("Connection refused", "The SSL connection could not be established"), never a URL with userinfo.</summary>
    private static string Reason(HttpRequestException e)
    {
        var text = e.HttpRequestError switch
        {
            HttpRequestError.ConnectionError => "connection failed",
            HttpRequestError.NameResolutionError => "the host name does not resolve",
            HttpRequestError.SecureConnectionError => "the TLS handshake failed (is it an https:// URL for a plain-HTTP port?)",
            _ => "no HTTP answer",
        };
        var inner = e.InnerException is System.Net.Sockets.SocketException socket ? $": {socket.SocketErrorCode}" : string.Empty;
        return text + inner;
    }

    private static string ErrorCode(string body)
    {
        var start = body.IndexOf("<Code>", StringComparison.Ordinal);
        var end = start < 0 ? -1 : body.IndexOf("</Code>", start, StringComparison.Ordinal);
        return start >= 0 && end > start ? body[(start + 6)..end] : "no error code";
    }

    private static byte[] Hmac(byte[] key, string data) => HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(data));

    private static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);
}

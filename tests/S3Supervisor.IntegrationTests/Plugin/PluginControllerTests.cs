using System.Globalization;
using Csi.V1;
using Grpc.Core;
using S3Supervisor.Common;
using S3Supervisor.TestKit;

namespace S3Supervisor.IntegrationTests.Plugin;

/// <summary>
/// The Controller as the external-provisioner drives it (CreateVolume / DeleteVolume with StorageClass
/// parameters and provisioner secrets through the plugin's socket, against RGW), and the volumes it
/// returns staged, published and written through the Node service down to a real s3fs.
/// </summary>
[Collection(RgwFixture.Collection)]
public sealed class PluginControllerTests : PluginTestBase
{
    private const long OneGi = 1L << 30;

    public PluginControllerTests(RgwFixture rgw)
        : base(rgw)
    {
    }

    [SkippableFact]
    public async Task Controller_CreateVolumeBothModes_DeleteRemovesData()
    {
        var authority = $"http:127.0.0.1:{S3.Port.ToString(CultureInfo.InvariantCulture)};{S3.Region}";
        var shared = "pl-shared-" + Guid.NewGuid().ToString("N")[..12];

        // Prefix per volume in a shared bucket (created on first use).
        var prefixName = "pvc-" + Guid.NewGuid();
        var prefixVolume = await CreateAsync(prefixName, OneGi, shared);
        Assert.Equal($"{shared}:{prefixName}@{authority}", prefixVolume.VolumeId);
        Assert.Equal(OneGi, prefixVolume.CapacityBytes);
        Assert.Equal(shared, prefixVolume.VolumeContext[VolumeContext.Bucket]);
        Assert.Equal(prefixName, prefixVolume.VolumeContext[VolumeContext.Prefix]);
        Assert.Equal(S3.Endpoint, prefixVolume.VolumeContext[VolumeContext.Endpoint]);
        Assert.Equal(S3.Region, prefixVolume.VolumeContext[VolumeContext.Region]);

        // Bucket per volume.
        var bucketName = "pvc-" + Guid.NewGuid();
        var bucketVolume = await CreateAsync(bucketName, OneGi, bucket: null);
        Assert.Equal($"{bucketName}@{authority}", bucketVolume.VolumeId);
        Assert.Equal(bucketName, bucketVolume.VolumeContext[VolumeContext.Bucket]);
        Assert.False(bucketVolume.VolumeContext.ContainsKey(VolumeContext.Prefix) && bucketVolume.VolumeContext[VolumeContext.Prefix].Length > 0);
        Assert.Contains(bucketName, await BucketsAsync());

        // Same name twice: the same volume; another capacity: ALREADY_EXISTS.
        Assert.Equal(prefixVolume, await CreateAsync(prefixName, OneGi, shared));
        Assert.Equal(bucketVolume, await CreateAsync(bucketName, OneGi, bucket: null));
        var conflict = await Assert.ThrowsAsync<RpcException>(() => CreateAsync(prefixName, 2 * OneGi, shared));
        Assert.Equal(StatusCode.AlreadyExists, conflict.StatusCode);
        conflict = await Assert.ThrowsAsync<RpcException>(() => CreateAsync(bucketName, 2 * OneGi, bucket: null));
        Assert.Equal(StatusCode.AlreadyExists, conflict.StatusCode);

        // A wrong secret key: RGW checks the signature, the plugin says so without echoing the key.
        const string wrongKey = "not-the-secret-key-at-all-0123456789";
        var denied = await Assert.ThrowsAsync<RpcException>(() => CreateAsync("pvc-" + Guid.NewGuid(), OneGi, shared, wrongKey));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.DoesNotContain(wrongKey, denied.Status.Detail, StringComparison.Ordinal);
        denied = await Assert.ThrowsAsync<RpcException>(() => CreateAsync("pvc-" + Guid.NewGuid(), OneGi, bucket: null, wrongKey));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);

        // The returned context and id are what the Node side mounts; data lands under the prefix / in the bucket.
        await WriteThroughNodeAsync(prefixVolume, "pod-prefix", "hello.txt", "prefix volume");
        Assert.Equal("prefix volume", await S3.GetObjectTextAsync(shared, $"{prefixName}/hello.txt"));
        await WriteThroughNodeAsync(bucketVolume, "pod-bucket", "hello.txt", "bucket volume");
        Assert.Equal("bucket volume", await S3.GetObjectTextAsync(bucketName, "hello.txt"));
        Assert.Empty(MountsUnder(Layout.KubeletRoot));

        // Another volume in the shared bucket whose name starts like the first: DeleteVolume must not touch it.
        var neighbourName = prefixName + "0";
        var neighbour = await CreateAsync(neighbourName, OneGi, shared);
        await S3.PutObjectTextAsync(shared, $"{neighbourName}/keep.txt", "neighbour");

        await DeleteAsync(prefixVolume.VolumeId);
        Assert.Empty(await S3.ListKeysAsync(shared, prefixName + "/"));
        Assert.DoesNotContain(await S3.ListKeysAsync(shared), k => k.Contains(prefixName + "/", StringComparison.Ordinal) || k.EndsWith(prefixName, StringComparison.Ordinal));
        Assert.Equal("neighbour", await S3.GetObjectTextAsync(shared, $"{neighbourName}/keep.txt"));
        Assert.Contains(shared, await BucketsAsync());

        await DeleteAsync(bucketVolume.VolumeId);
        Assert.DoesNotContain(bucketName, await BucketsAsync());

        // Deleting again, deleting an id that is not ours, and deleting a well-formed id of a volume that never existed: success.
        await DeleteAsync(prefixVolume.VolumeId);
        await DeleteAsync(bucketVolume.VolumeId);
        await DeleteAsync("static-pv-handle-of-someone-else");
        await DeleteAsync($"{shared}:pvc-never-created@{authority}");
        await DeleteAsync($"pvc-never-created-{Guid.NewGuid():N}@{authority}");
        await DeleteAsync(neighbour.VolumeId);
        Assert.Empty(await S3.ListKeysAsync(shared, neighbourName));

        Assert.DoesNotContain(S3.SecretKey, Plugin.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(wrongKey, Plugin.Output, StringComparison.Ordinal);
    }

    private async Task<Csi.V1.Volume> CreateAsync(string name, long capacity, string? bucket, string? secretKey = null)
    {
        var request = new CreateVolumeRequest
        {
            Name = name,
            CapacityRange = new CapacityRange { RequiredBytes = capacity },
            VolumeCapabilities = { MountCapability() },
            Parameters =
            {
                ["endpoint"] = S3.Endpoint,
                ["region"] = S3.Region,
                ["csi.storage.k8s.io/pvc/name"] = "data",
                ["csi.storage.k8s.io/pvc/namespace"] = "default",
                ["csi.storage.k8s.io/pv/name"] = name,
            },
            Secrets = { Secrets(secretKey) },
        };
        if (bucket is not null)
        {
            request.Parameters["bucket"] = bucket;
        }
        var response = await Plugin.Controller.CreateVolumeAsync(request, deadline: DateTime.UtcNow.AddSeconds(60));
        return response.Volume;
    }

    private async Task DeleteAsync(string volumeId) =>
        await Plugin.Controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = volumeId, Secrets = { Secrets() } }, deadline: DateTime.UtcNow.AddSeconds(60));

    /// <summary>Stage, publish, write a file through the target, unpublish, unstage: kubelet's round trip for one pod.</summary>
    private async Task WriteThroughNodeAsync(Csi.V1.Volume volume, string podUid, string file, string content)
    {
        var staging = await StageAsync(volume.VolumeId, volume.VolumeContext);
        var target = await PublishAsync(volume.VolumeId, podUid, volume.VolumeContext);
        Assert.Contains(staging, MountsUnder(Layout.KubeletRoot));
        await File.WriteAllTextAsync(Path.Combine(target, file), content);
        Assert.Equal(content, await File.ReadAllTextAsync(Path.Combine(target, file)));
        await UnpublishAsync(volume.VolumeId, target);
        await UnstageAsync(volume.VolumeId);
    }

    private async Task<IReadOnlyList<string>> BucketsAsync()
    {
        using var client = S3.CreateClient();
        var response = await client.ListBucketsAsync();
        return (response.Buckets ?? []).Select(b => b.BucketName).ToArray();
    }
}

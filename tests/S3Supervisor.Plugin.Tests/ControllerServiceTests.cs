using Csi.V1;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using S3Supervisor.Common;
using S3Supervisor.Plugin.Csi;
using S3Supervisor.Plugin.Storage;
using S3Supervisor.Plugin.Tests.Fakes;
using ControllerCapability = Csi.V1.ControllerServiceCapability.Types.RPC.Types.Type;
using Mode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace S3Supervisor.Plugin.Tests;

public sealed class ControllerServiceTests
{
    private const string Name = "pvc-0a1b2c3d-0000-4000-8000-000000000001";
    private readonly FakeObjectStore _s3 = new();
    private readonly TestCallContext _context = new();
    private readonly ControllerService _controller;

    public ControllerServiceTests()
    {
        _controller = new ControllerService(new VolumeProvisioner(_s3, Microsoft.Extensions.Options.Options.Create(new S3ClientOptions()), NullLogger<VolumeProvisioner>.Instance), new VolumeLocks());
    }

    [Fact]
    public async Task ControllerGetCapabilities_Always_CreateDeleteVolumeOnly()
    {
        var caps = await _controller.ControllerGetCapabilities(new ControllerGetCapabilitiesRequest(), _context);
        Assert.Equal([ControllerCapability.CreateDeleteVolume], caps.Capabilities.Select(c => c.Rpc.Type).ToArray());
    }

    // ---- CreateVolume: validation

    [Fact]
    public async Task CreateVolume_MissingName_InvalidArgument()
    {
        var request = TestData.Create();
        request.Name = "";
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _controller.CreateVolume(request, _context));
        Assert.Contains("name", e.Status.Detail);
        Assert.Empty(_s3.Connections);
    }

    [Fact]
    public async Task CreateVolume_MissingCapabilities_InvalidArgument()
    {
        var request = TestData.Create();
        request.VolumeCapabilities.Clear();
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _controller.CreateVolume(request, _context));
        Assert.Contains("volume_capabilities", e.Status.Detail);
    }

    [Fact]
    public async Task CreateVolume_BlockCapability_InvalidArgument()
    {
        var request = TestData.Create();
        request.VolumeCapabilities.Add(TestData.Block());
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _controller.CreateVolume(request, _context));
        Assert.Contains("volume_capabilities[1]", e.Status.Detail);
    }

    [Fact]
    public async Task CreateVolume_RequiredAboveLimit_OutOfRange()
    {
        var request = TestData.Create();
        request.CapacityRange = new CapacityRange { RequiredBytes = 10, LimitBytes = 5 };
        await TestData.Fails(StatusCode.OutOfRange, () => _controller.CreateVolume(request, _context));
    }

    [Fact]
    public async Task CreateVolume_NegativeCapacity_InvalidArgument()
    {
        var request = TestData.Create();
        request.CapacityRange = new CapacityRange { RequiredBytes = -1 };
        await TestData.Fails(StatusCode.InvalidArgument, () => _controller.CreateVolume(request, _context));
    }

    [Fact]
    public async Task CreateVolume_ContentSource_InvalidArgument()
    {
        var request = TestData.Create();
        request.VolumeContentSource = new VolumeContentSource { Snapshot = new VolumeContentSource.Types.SnapshotSource { SnapshotId = "s" } };
        await TestData.Fails(StatusCode.InvalidArgument, () => _controller.CreateVolume(request, _context));
    }

    [Fact]
    public async Task CreateVolume_MissingEndpoint_InvalidArgument()
    {
        var request = TestData.Create();
        request.Parameters.Remove("endpoint");
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _controller.CreateVolume(request, _context));
        Assert.Contains("parameters[endpoint]", e.Status.Detail);
    }

    [Theory]
    [InlineData("ftp://s3.example.com")]
    [InlineData("https://key:pw-x9z@s3.example.com")]
    [InlineData("https://s3.example.com/some/path")]
    [InlineData("not a url")]
    public async Task CreateVolume_BadEndpoint_InvalidArgument(string endpoint)
    {
        var request = TestData.Create();
        request.Parameters["endpoint"] = endpoint;
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _controller.CreateVolume(request, _context));
        Assert.Contains("parameters[endpoint]", e.Status.Detail);
        Assert.DoesNotContain("pw-x9z", e.Status.Detail);
    }

    [Fact]
    public async Task CreateVolume_UnknownParameter_InvalidArgument()
    {
        var request = TestData.Create();
        request.Parameters["bucktPrefix"] = "x";
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _controller.CreateVolume(request, _context));
        Assert.Contains("bucktPrefix", e.Status.Detail);
    }

    [Fact]
    public async Task CreateVolume_ProvisionerMetadataParameters_Ignored()
    {
        var request = TestData.Create();
        request.Parameters["csi.storage.k8s.io/pvc/name"] = "data";
        request.Parameters["csi.storage.k8s.io/pvc/namespace"] = "apps";
        await _controller.CreateVolume(request, _context);
    }

    [Fact]
    public async Task CreateVolume_BadOptions_InvalidArgument()
    {
        var request = TestData.Create();
        request.Parameters["options"] = "url=http://elsewhere";
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _controller.CreateVolume(request, _context));
        Assert.Contains("parameters[options]", e.Status.Detail);
    }

    [Fact]
    public async Task CreateVolume_BucketAndBucketPrefix_InvalidArgument()
    {
        var request = TestData.Create();
        request.Parameters["bucket"] = "shared";
        request.Parameters["bucketPrefix"] = "k8s-";
        await TestData.Fails(StatusCode.InvalidArgument, () => _controller.CreateVolume(request, _context));
    }

    [Fact]
    public async Task CreateVolume_InvalidSharedBucket_InvalidArgument()
    {
        var request = TestData.Create();
        request.Parameters["bucket"] = "Not_A_Bucket";
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _controller.CreateVolume(request, _context));
        Assert.Contains("parameters[bucket]", e.Status.Detail);
    }

    [Fact]
    public async Task CreateVolume_MissingSecrets_InvalidArgument()
    {
        var request = TestData.Create();
        request.Secrets.Clear();
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _controller.CreateVolume(request, _context));
        Assert.Contains("secrets", e.Status.Detail);
        Assert.Empty(_s3.Connections);
    }

    // ---- CreateVolume: bucket per volume

    [Fact]
    public async Task CreateVolume_BucketPerVolume_CreatesTaggedBucket()
    {
        var response = await _controller.CreateVolume(TestData.Create(Name), _context);

        var volume = response.Volume;
        Assert.Equal($"{Name}@http:127.0.0.1:7480;eu-1", volume.VolumeId);
        Assert.Equal(1L << 30, volume.CapacityBytes);
        var bucket = Assert.Contains(Name, (IDictionary<string, FakeObjectStore.Bucket>)_s3.Buckets);
        Assert.Equal(ResourceNames.Sha256Hex(Name), bucket.Tags[VolumeMarker.NameTag]);
        Assert.Equal((1L << 30).ToString(System.Globalization.CultureInfo.InvariantCulture), bucket.Tags[VolumeMarker.CapacityTag]);
        Assert.Empty(bucket.Objects);
        var (endpoint, credentials) = Assert.Single(_s3.Connections);
        Assert.Equal(new Uri("http://127.0.0.1:7480/"), endpoint.Url);
        Assert.Equal("eu-1", endpoint.Region);
        Assert.True(endpoint.ForcePathStyle);
        Assert.Equal(TestData.AccessKey, credentials.AccessKeyId);
    }

    [Fact]
    public async Task CreateVolume_BucketPerVolume_ContextParsesForNodeStage()
    {
        var request = TestData.Create(Name);
        request.Parameters["options"] = "uid=1000,allow_other";
        var volume = (await _controller.CreateVolume(request, _context)).Volume;

        var source = VolumeContext.Parse(volume.VolumeContext);
        Assert.Equal(Name, source.Bucket);
        Assert.Equal(string.Empty, source.Prefix);
        Assert.Equal("http://127.0.0.1:7480", source.Endpoint);
        Assert.Equal("eu-1", source.Region);
        Assert.Equal(1000u, source.Options.Uid);
        Assert.True(source.Options.AllowOther);
        Assert.Equal(volume.VolumeId, VolumeHandle.TryParse(volume.VolumeId)!.Format());
        Validate.VolumeId(volume.VolumeId);
    }

    [Fact]
    public async Task CreateVolume_BucketPrefix_PrefixesBucketName()
    {
        var request = TestData.Create(Name);
        request.Parameters["bucketPrefix"] = "k8s-";
        var volume = (await _controller.CreateVolume(request, _context)).Volume;
        Assert.StartsWith($"k8s-{Name}@", volume.VolumeId);
        Assert.True(_s3.Buckets.ContainsKey($"k8s-{Name}"));
    }

    [Fact]
    public async Task CreateVolume_SameNameTwice_SameVolume()
    {
        var first = await _controller.CreateVolume(TestData.Create(Name), _context);
        var second = await _controller.CreateVolume(TestData.Create(Name), _context);
        Assert.Equal(first.Volume, second.Volume);
        Assert.Single(_s3.Buckets);
    }

    [Fact]
    public async Task CreateVolume_SameNameOtherCapacity_AlreadyExists()
    {
        await _controller.CreateVolume(TestData.Create(Name, 1 << 30), _context);
        var e = await TestData.Fails(StatusCode.AlreadyExists, () => _controller.CreateVolume(TestData.Create(Name, 2L << 30), _context));
        Assert.Contains("capacity", e.Status.Detail);
    }

    [Fact]
    public async Task CreateVolume_NoCapacity_UnknownCapacity()
    {
        var request = TestData.Create(Name);
        request.CapacityRange = null;
        Assert.Equal(0, (await _controller.CreateVolume(request, _context)).Volume.CapacityBytes);
    }

    [Fact]
    public async Task CreateVolume_OnlyLimit_RecordsLimit()
    {
        var request = TestData.Create(Name);
        request.CapacityRange = new CapacityRange { LimitBytes = 5000 };
        Assert.Equal(5000, (await _controller.CreateVolume(request, _context)).Volume.CapacityBytes);
    }

    [Fact]
    public async Task CreateVolume_ForeignBucketWithData_AlreadyExists()
    {
        _s3.AddBucket(Name).Objects["precious.txt"] = ("data", "text/plain");
        await TestData.Fails(StatusCode.AlreadyExists, () => _controller.CreateVolume(TestData.Create(Name), _context));
        Assert.Empty(_s3.Buckets[Name].Tags);
    }

    [Fact]
    public async Task CreateVolume_EmptyBucketWithoutMarker_AdoptsIt()
    {
        // What an earlier CreateVolume leaves when it dies between creating and tagging the bucket.
        _s3.AddBucket(Name);
        await _controller.CreateVolume(TestData.Create(Name), _context);
        Assert.NotNull(VolumeMarker.FromTags(_s3.Buckets[Name].Tags));
    }

    [Fact]
    public async Task CreateVolume_NameMappingToTakenBucket_AlreadyExists()
    {
        // "PVC-X" and "pvc-x" are different CSI names; the marker tells them apart even if a bucket name clashed.
        await _controller.CreateVolume(TestData.Create(Name), _context);
        _s3.Buckets[Name].Tags[VolumeMarker.NameTag] = ResourceNames.Sha256Hex("another-name");
        var e = await TestData.Fails(StatusCode.AlreadyExists, () => _controller.CreateVolume(TestData.Create(Name), _context));
        Assert.Contains("another volume name", e.Status.Detail);
    }

    [Fact]
    public async Task CreateVolume_S3Fails_CodeThrough()
    {
        _s3.Before = op => throw new RpcException(new Status(StatusCode.PermissionDenied, $"S3 error while {op}: AccessDenied"));
        await TestData.Fails(StatusCode.PermissionDenied, () => _controller.CreateVolume(TestData.Create(Name), _context));
    }

    [Fact]
    public async Task CreateVolume_SameNameBusy_Aborted()
    {
        var entered = new TaskCompletionSource();
        var release = new ManualResetEventSlim();
        _s3.Before = _ =>
        {
            entered.TrySetResult();
            release.Wait(TimeSpan.FromSeconds(10));
        };
        var first = Task.Run(() => _controller.CreateVolume(TestData.Create(Name), _context));
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await TestData.Fails(StatusCode.Aborted, () => _controller.CreateVolume(TestData.Create(Name), _context));
        release.Set();
        await first;
    }

    // ---- CreateVolume: prefix per volume in a shared bucket

    [Fact]
    public async Task CreateVolume_SharedBucket_CreatesPrefixAndMarker()
    {
        var request = TestData.Create(Name);
        request.Parameters["bucket"] = "shared";
        var volume = (await _controller.CreateVolume(request, _context)).Volume;

        Assert.Equal($"shared:{Name}@http:127.0.0.1:7480;eu-1", volume.VolumeId);
        var bucket = _s3.Buckets["shared"];
        Assert.Equal(VolumeProvisioner.DirectoryContentType, bucket.Objects[$"{Name}/"].ContentType);
        Assert.NotNull(VolumeMarker.FromText(bucket.Objects[VolumeMarker.ObjectKey(Name)].Text));
        Assert.Empty(bucket.Tags);
        var source = VolumeContext.Parse(volume.VolumeContext);
        Assert.Equal("shared", source.Bucket);
        Assert.Equal(Name, source.Prefix);
    }

    [Fact]
    public async Task CreateVolume_SharedBucketSameNameTwice_SameVolume()
    {
        var request = TestData.Create(Name);
        request.Parameters["bucket"] = "shared";
        var first = await _controller.CreateVolume(request, _context);
        var second = await _controller.CreateVolume(request, _context);
        Assert.Equal(first.Volume, second.Volume);
    }

    [Fact]
    public async Task CreateVolume_SharedBucketOtherCapacity_AlreadyExists()
    {
        var request = TestData.Create(Name);
        request.Parameters["bucket"] = "shared";
        await _controller.CreateVolume(request, _context);
        request.CapacityRange.RequiredBytes *= 2;
        await TestData.Fails(StatusCode.AlreadyExists, () => _controller.CreateVolume(request, _context));
    }

    [Fact]
    public async Task CreateVolume_SharedBucketPrefixHoldsForeignData_AlreadyExists()
    {
        _s3.AddBucket("shared").Objects[$"{Name}/existing.txt"] = ("x", "text/plain");
        var request = TestData.Create(Name);
        request.Parameters["bucket"] = "shared";
        await TestData.Fails(StatusCode.AlreadyExists, () => _controller.CreateVolume(request, _context));
    }

    // ---- DeleteVolume

    [Fact]
    public async Task DeleteVolume_MissingId_InvalidArgument()
    {
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _controller.DeleteVolume(new DeleteVolumeRequest(), _context));
        Assert.Contains("volume_id", e.Status.Detail);
    }

    [Theory]
    [InlineData("some-static-handle")]
    [InlineData("bucket/prefix")]
    [InlineData("UPPER@https:s3.example.com")]
    [InlineData("bucket@ftp:host")]
    public async Task DeleteVolume_IdNotOurs_SucceedsWithoutTouchingS3(string id)
    {
        await _controller.DeleteVolume(new DeleteVolumeRequest { VolumeId = id }, _context);
        Assert.Empty(_s3.Connections);
    }

    [Fact]
    public async Task DeleteVolume_MissingSecrets_InvalidArgument()
    {
        var id = (await _controller.CreateVolume(TestData.Create(Name), _context)).Volume.VolumeId;
        await TestData.Fails(StatusCode.InvalidArgument, () => _controller.DeleteVolume(new DeleteVolumeRequest { VolumeId = id }, _context));
        Assert.True(_s3.Buckets.ContainsKey(Name));
    }

    [Fact]
    public async Task DeleteVolume_BucketPerVolume_DeletesObjectsAndBucket()
    {
        var id = (await _controller.CreateVolume(TestData.Create(Name), _context)).Volume.VolumeId;
        for (var i = 0; i < 2500; i++)
        {
            _s3.Buckets[Name].Objects[$"dir/file-{i}"] = ("x", "text/plain");
        }
        await _controller.DeleteVolume(Delete(id), _context);
        Assert.False(_s3.Buckets.ContainsKey(Name));
    }

    [Fact]
    public async Task DeleteVolume_Twice_SecondSucceeds()
    {
        var id = (await _controller.CreateVolume(TestData.Create(Name), _context)).Volume.VolumeId;
        await _controller.DeleteVolume(Delete(id), _context);
        await _controller.DeleteVolume(Delete(id), _context);
        Assert.Empty(_s3.Buckets);
    }

    [Fact]
    public async Task DeleteVolume_BucketWithoutMarker_LeavesItAlone()
    {
        var bucket = _s3.AddBucket("someone-elses");
        bucket.Objects["precious.txt"] = ("data", "text/plain");
        await _controller.DeleteVolume(Delete("someone-elses@http:127.0.0.1:7480;eu-1"), _context);
        Assert.True(bucket.Objects.ContainsKey("precious.txt"));
        Assert.True(_s3.Buckets.ContainsKey("someone-elses"));
    }

    [Fact]
    public async Task DeleteVolume_SharedBucket_DeletesOnlyThatPrefix()
    {
        var request = TestData.Create("pvc-1");
        request.Parameters["bucket"] = "shared";
        var id = (await _controller.CreateVolume(request, _context)).Volume.VolumeId;
        request.Name = "pvc-10";
        await _controller.CreateVolume(request, _context);
        var bucket = _s3.Buckets["shared"];
        bucket.Objects["pvc-1/a.txt"] = ("a", "text/plain");
        bucket.Objects["pvc-10/b.txt"] = ("b", "text/plain");

        await _controller.DeleteVolume(Delete(id), _context);

        Assert.DoesNotContain(bucket.Objects.Keys, k => k.StartsWith("pvc-1/", StringComparison.Ordinal));
        Assert.False(bucket.Objects.ContainsKey(VolumeMarker.ObjectKey("pvc-1")));
        Assert.True(bucket.Objects.ContainsKey("pvc-10/b.txt"));
        Assert.True(bucket.Objects.ContainsKey(VolumeMarker.ObjectKey("pvc-10")));
        Assert.True(_s3.Buckets.ContainsKey("shared"));
    }

    [Fact]
    public async Task DeleteVolume_SharedBucketGone_Succeeds()
    {
        await _controller.DeleteVolume(Delete($"shared:{Name}@http:127.0.0.1:7480"), _context);
        Assert.Single(_s3.Connections);
    }

    [Fact]
    public async Task DeleteVolume_S3Unavailable_Unavailable()
    {
        var id = (await _controller.CreateVolume(TestData.Create(Name), _context)).Volume.VolumeId;
        _s3.Before = _ => throw new RpcException(new Status(StatusCode.Unavailable, "S3 endpoint unreachable"));
        await TestData.Fails(StatusCode.Unavailable, () => _controller.DeleteVolume(Delete(id), _context));
    }

    // ---- ValidateVolumeCapabilities

    [Fact]
    public async Task ValidateVolumeCapabilities_MissingId_InvalidArgument()
    {
        var request = new ValidateVolumeCapabilitiesRequest { VolumeCapabilities = { TestData.Mount() } };
        await TestData.Fails(StatusCode.InvalidArgument, () => _controller.ValidateVolumeCapabilities(request, _context));
    }

    [Fact]
    public async Task ValidateVolumeCapabilities_MissingCapabilities_InvalidArgument()
    {
        var id = (await _controller.CreateVolume(TestData.Create(Name), _context)).Volume.VolumeId;
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _controller.ValidateVolumeCapabilities(new ValidateVolumeCapabilitiesRequest { VolumeId = id }, _context));
        Assert.Contains("volume_capabilities", e.Status.Detail);
    }

    [Fact]
    public async Task ValidateVolumeCapabilities_UnknownIdFormat_NotFound()
    {
        var request = new ValidateVolumeCapabilitiesRequest { VolumeId = "no-such-volume", VolumeCapabilities = { TestData.Mount() } };
        await TestData.Fails(StatusCode.NotFound, () => _controller.ValidateVolumeCapabilities(request, _context));
    }

    [Fact]
    public async Task ValidateVolumeCapabilities_DeletedVolume_NotFound()
    {
        var id = (await _controller.CreateVolume(TestData.Create(Name), _context)).Volume.VolumeId;
        await _controller.DeleteVolume(Delete(id), _context);
        var request = new ValidateVolumeCapabilitiesRequest { VolumeId = id, VolumeCapabilities = { TestData.Mount() }, Secrets = { TestData.Secrets() } };
        await TestData.Fails(StatusCode.NotFound, () => _controller.ValidateVolumeCapabilities(request, _context));
    }

    [Fact]
    public async Task ValidateVolumeCapabilities_AllMountModes_Confirmed()
    {
        var created = (await _controller.CreateVolume(TestData.Create(Name), _context)).Volume;
        var request = new ValidateVolumeCapabilitiesRequest
        {
            VolumeId = created.VolumeId,
            VolumeContext = { created.VolumeContext },
            Secrets = { TestData.Secrets() },
        };
        foreach (var mode in Enum.GetValues<Mode>().Where(m => m != Mode.Unknown))
        {
            request.VolumeCapabilities.Add(TestData.Mount(mode));
        }
        var response = await _controller.ValidateVolumeCapabilities(request, _context);
        Assert.NotNull(response.Confirmed);
        Assert.Equal(request.VolumeCapabilities, response.Confirmed.VolumeCapabilities);
        Assert.Equal(created.VolumeContext, response.Confirmed.VolumeContext);
    }

    [Fact]
    public async Task ValidateVolumeCapabilities_Block_NotConfirmedWithMessage()
    {
        var id = (await _controller.CreateVolume(TestData.Create(Name), _context)).Volume.VolumeId;
        var request = new ValidateVolumeCapabilitiesRequest { VolumeId = id, VolumeCapabilities = { TestData.Mount(), TestData.Block() }, Secrets = { TestData.Secrets() } };
        var response = await _controller.ValidateVolumeCapabilities(request, _context);
        Assert.Null(response.Confirmed);
        Assert.Contains("block", response.Message);
    }

    private static DeleteVolumeRequest Delete(string id) => new() { VolumeId = id, Secrets = { TestData.Secrets() } };
}

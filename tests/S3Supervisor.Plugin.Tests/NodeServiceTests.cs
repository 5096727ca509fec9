using Csi.V1;
using Grpc.Core;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;
using S3Supervisor.Plugin.Csi;
using S3Supervisor.Plugin.Tests.Fakes;
using Mode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;
using NodeCapability = Csi.V1.NodeServiceCapability.Types.RPC.Types.Type;

namespace S3Supervisor.Plugin.Tests;

public sealed class NodeServiceTests : IAsyncLifetime
{
    private FakeSupervisorServer _server = null!;
    private NodeService _node = null!;
    private readonly TestCallContext _context = new();

    public async Task InitializeAsync()
    {
        _server = await FakeSupervisorServer.StartAsync();
        _node = new NodeService(TestData.Options(socket: _server.SocketPath), _server.Calls, new VolumeLocks());
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private FakeSupervisor Supervisor => _server.Fake;

    // ---- NodeGetInfo / NodeGetCapabilities

    [Fact]
    public async Task NodeGetInfo_Configured_ReturnsNodeId()
    {
        var info = await _node.NodeGetInfo(new NodeGetInfoRequest(), _context);
        Assert.Equal("node-a", info.NodeId);
        Assert.Equal(0, info.MaxVolumesPerNode);
    }

    [Fact]
    public async Task NodeGetCapabilities_Always_ReturnsStageStatsAndCondition()
    {
        var caps = await _node.NodeGetCapabilities(new NodeGetCapabilitiesRequest(), _context);
        Assert.Equal(
            [NodeCapability.StageUnstageVolume, NodeCapability.GetVolumeStats, NodeCapability.VolumeCondition],
            caps.Capabilities.Select(c => c.Rpc.Type).ToArray());
    }

    // ---- NodeStageVolume

    [Fact]
    public async Task NodeStageVolume_Valid_StagesSourceAndCredentials()
    {
        await _node.NodeStageVolume(TestData.Stage(), _context);

        var stage = Supervisor.OnlyRequest<StageVolumeRequest>();
        Assert.Equal(TestData.VolumeId, stage.VolumeId);
        Assert.Equal(TestData.StagingPath, stage.StagingPath);
        Assert.Equal("data-bucket", stage.Source.Bucket);
        Assert.Equal("team/a", stage.Source.Prefix);
        Assert.Equal("https://s3.example.com", stage.Source.Endpoint);
        Assert.Equal("eu-1", stage.Source.Region);
        Assert.Equal(1000u, stage.Source.Options.Uid);
        Assert.False(stage.Source.Options.HasReadOnly);
        Assert.Equal(TestData.AccessKey, stage.Credentials.AccessKeyId);
        Assert.Equal(TestData.SecretKey, stage.Credentials.SecretAccessKey);
        Assert.Equal(string.Empty, stage.Credentials.SessionToken);
    }

    [Fact]
    public async Task NodeStageVolume_SessionToken_PassesToken()
    {
        var request = TestData.Stage();
        request.Secrets[SecretKeys.SessionToken] = "token-1";
        await _node.NodeStageVolume(request, _context);
        Assert.Equal("token-1", Supervisor.OnlyRequest<StageVolumeRequest>().Credentials.SessionToken);
    }

    [Fact]
    public async Task NodeStageVolume_Repeated_SucceedsEachTime()
    {
        await _node.NodeStageVolume(TestData.Stage(), _context);
        await _node.NodeStageVolume(TestData.Stage(), _context);
        Assert.Equal(2, Supervisor.Requests.OfType<StageVolumeRequest>().Count());
    }

    [Fact]
    public async Task NodeStageVolume_MissingVolumeId_InvalidArgument()
    {
        var request = TestData.Stage();
        request.VolumeId = "";
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains("volume_id", e.Status.Detail);
        Assert.Empty(Supervisor.Requests);
    }

    [Fact]
    public async Task NodeStageVolume_VolumeIdWithSpace_InvalidArgument()
    {
        var request = TestData.Stage();
        request.VolumeId = "vol 1";
        await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
    }

    [Fact]
    public async Task NodeStageVolume_MissingStagingPath_InvalidArgument()
    {
        var request = TestData.Stage();
        request.StagingTargetPath = "";
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains("staging_target_path", e.Status.Detail);
    }

    [Fact]
    public async Task NodeStageVolume_RelativeStagingPath_InvalidArgument()
    {
        var request = TestData.Stage();
        request.StagingTargetPath = "relative/globalmount";
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains("absolute", e.Status.Detail);
    }

    [Fact]
    public async Task NodeStageVolume_MissingCapability_InvalidArgument()
    {
        var request = TestData.Stage();
        request.VolumeCapability = null;
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains("volume_capability", e.Status.Detail);
    }

    [Fact]
    public async Task NodeStageVolume_BlockAccess_InvalidArgument()
    {
        var request = TestData.Stage();
        request.VolumeCapability = TestData.Block();
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains("block", e.Status.Detail);
        Assert.Empty(Supervisor.Requests);
    }

    [Fact]
    public async Task NodeStageVolume_NoAccessType_InvalidArgument()
    {
        var request = TestData.Stage();
        request.VolumeCapability.ClearAccessType();
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains("access_type", e.Status.Detail);
    }

    [Fact]
    public async Task NodeStageVolume_UnknownAccessMode_InvalidArgument()
    {
        var request = TestData.Stage();
        request.VolumeCapability.AccessMode.Mode = Mode.Unknown;
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains("access_mode", e.Status.Detail);
    }

    [Fact]
    public async Task NodeStageVolume_MissingAccessMode_InvalidArgument()
    {
        var request = TestData.Stage();
        request.VolumeCapability.AccessMode = null;
        await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
    }

    [Fact]
    public async Task NodeStageVolume_UnknownContextKey_InvalidArgument()
    {
        var request = TestData.Stage();
        request.VolumeContext["bukcet"] = "typo";
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains("bukcet", e.Status.Detail);
    }

    [Fact]
    public async Task NodeStageVolume_MissingBucket_InvalidArgument()
    {
        var request = TestData.Stage();
        request.VolumeContext.Remove("bucket");
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains("bucket", e.Status.Detail);
    }

    [Fact]
    public async Task NodeStageVolume_EndpointWithCredentials_InvalidArgument()
    {
        var request = TestData.Stage();
        request.VolumeContext["endpoint"] = "https://user:pw@s3.example.com";
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.DoesNotContain("pw", e.Status.Detail);
    }

    [Fact]
    public async Task NodeStageVolume_MissingSecrets_InvalidArgument()
    {
        var request = TestData.Stage();
        request.Secrets.Clear();
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains(SecretKeys.AccessKeyId, e.Status.Detail);
        Assert.Empty(Supervisor.Requests);
    }

    [Theory]
    [InlineData(SecretKeys.AccessKeyId)]
    [InlineData(SecretKeys.SecretAccessKey)]
    public async Task NodeStageVolume_OneSecretKeyMissing_InvalidArgumentNamingIt(string missing)
    {
        var request = TestData.Stage();
        request.Secrets.Remove(missing);
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains(missing, e.Status.Detail);
    }

    [Fact]
    public async Task NodeStageVolume_SecretWithNewline_InvalidArgumentWithoutValue()
    {
        var request = TestData.Stage();
        request.Secrets[SecretKeys.SecretAccessKey] = "line1\nline2-secret-value";
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.DoesNotContain("secret-value", e.Status.Detail);
    }

    [Fact]
    public async Task NodeStageVolume_PublicBucketWithoutSecrets_StagesWithoutCredentials()
    {
        var request = TestData.Stage();
        request.Secrets.Clear();
        request.VolumeContext["options"] = "public_bucket";
        await _node.NodeStageVolume(request, _context);
        Assert.Null(Supervisor.OnlyRequest<StageVolumeRequest>().Credentials);
    }

    [Theory]
    [InlineData(Mode.SingleNodeReaderOnly)]
    [InlineData(Mode.MultiNodeReaderOnly)]
    public async Task NodeStageVolume_ReaderOnlyMode_StagesReadOnly(Mode mode)
    {
        var request = TestData.Stage();
        request.VolumeCapability.AccessMode.Mode = mode;
        await _node.NodeStageVolume(request, _context);
        Assert.True(Supervisor.OnlyRequest<StageVolumeRequest>().Source.Options.ReadOnly);
    }

    [Fact]
    public async Task NodeStageVolume_MountFlags_OverrideContextOptions()
    {
        var request = TestData.Stage();
        request.VolumeCapability = TestData.Mount(Mode.SingleNodeWriter, "uid=2000", "allow_other,stat_cache_expire=30");
        await _node.NodeStageVolume(request, _context);
        var options = Supervisor.OnlyRequest<StageVolumeRequest>().Source.Options;
        Assert.Equal(2000u, options.Uid);
        Assert.Equal(1000u, options.Gid);
        Assert.True(options.AllowOther);
        Assert.Equal(30u, options.StatCacheExpireSeconds);
    }

    [Fact]
    public async Task NodeStageVolume_DisallowedMountFlag_InvalidArgument()
    {
        var request = TestData.Stage();
        request.VolumeCapability = TestData.Mount(Mode.SingleNodeWriter, "passwd_file=/etc/shadow");
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains("mount_flags", e.Status.Detail);
    }

    [Theory]
    [InlineData(StatusCode.InvalidArgument)]
    [InlineData(StatusCode.NotFound)]
    [InlineData(StatusCode.AlreadyExists)]
    [InlineData(StatusCode.Aborted)]
    [InlineData(StatusCode.FailedPrecondition)]
    [InlineData(StatusCode.ResourceExhausted)]
    [InlineData(StatusCode.PermissionDenied)]
    [InlineData(StatusCode.Internal)]
    public async Task NodeStageVolume_SupervisorFails_PassesCodeAndDetailThrough(StatusCode code)
    {
        Supervisor.Before = _ => throw new RpcException(new Status(code, "supervisor says no"));
        var e = await TestData.Fails(code, () => _node.NodeStageVolume(TestData.Stage(), _context));
        Assert.Equal("supervisor says no", e.Status.Detail);
    }

    [Fact]
    public async Task NodeStageVolume_SupervisorUnreachable_Unavailable()
    {
        var node = new NodeService(TestData.Options(), Unreachable(out var socket), new VolumeLocks());
        var e = await TestData.Fails(StatusCode.Unavailable, () => node.NodeStageVolume(TestData.Stage(), _context));
        Assert.Contains(socket, e.Status.Detail);
    }

    [Fact]
    public async Task NodeStageVolume_SameVolumeBusy_Aborted()
    {
        var entered = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        Supervisor.Before = async _ =>
        {
            entered.TrySetResult();
            await release.Task;
        };
        var first = _node.NodeStageVolume(TestData.Stage(), _context);
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));

        await TestData.Fails(StatusCode.Aborted, () => _node.NodeStageVolume(TestData.Stage(), _context));
        await TestData.Fails(StatusCode.Aborted, () => _node.NodeUnstageVolume(new NodeUnstageVolumeRequest { VolumeId = TestData.VolumeId, StagingTargetPath = TestData.StagingPath }, _context));

        release.SetResult();
        await first;
        Supervisor.Before = null;
        await _node.NodeStageVolume(TestData.Stage(), _context);
    }

    [Fact]
    public async Task NodeStageVolume_CallerDeadline_CarriedToSupervisor()
    {
        var release = new TaskCompletionSource();
        Supervisor.Before = _ => release.Task;
        var context = new TestCallContext(deadline: DateTime.UtcNow.AddMilliseconds(300));
        var e = await TestData.Fails(StatusCode.DeadlineExceeded, () => _node.NodeStageVolume(TestData.Stage(), context));
        Assert.Contains(_server.SocketPath, e.Status.Detail);
        release.SetResult();
    }

    // ---- NodeUnstageVolume

    [Fact]
    public async Task NodeUnstageVolume_Valid_UnstagesAtSupervisor()
    {
        await _node.NodeUnstageVolume(new NodeUnstageVolumeRequest { VolumeId = TestData.VolumeId, StagingTargetPath = TestData.StagingPath }, _context);
        var unstage = Supervisor.OnlyRequest<UnstageVolumeRequest>();
        Assert.Equal(TestData.VolumeId, unstage.VolumeId);
        Assert.Equal(TestData.StagingPath, unstage.StagingPath);
    }

    [Fact]
    public async Task NodeUnstageVolume_MissingVolumeId_InvalidArgument()
    {
        var e = await TestData.Fails(StatusCode.InvalidArgument,
            () => _node.NodeUnstageVolume(new NodeUnstageVolumeRequest { StagingTargetPath = TestData.StagingPath }, _context));
        Assert.Contains("volume_id", e.Status.Detail);
    }

    [Fact]
    public async Task NodeUnstageVolume_MissingStagingPath_InvalidArgument()
    {
        var e = await TestData.Fails(StatusCode.InvalidArgument,
            () => _node.NodeUnstageVolume(new NodeUnstageVolumeRequest { VolumeId = TestData.VolumeId }, _context));
        Assert.Contains("staging_target_path", e.Status.Detail);
    }

    [Fact]
    public async Task NodeUnstageVolume_SupervisorUnreachable_Unavailable()
    {
        var node = new NodeService(TestData.Options(), Unreachable(out _), new VolumeLocks());
        await TestData.Fails(StatusCode.Unavailable,
            () => node.NodeUnstageVolume(new NodeUnstageVolumeRequest { VolumeId = TestData.VolumeId, StagingTargetPath = TestData.StagingPath }, _context));
    }

    // ---- NodePublishVolume

    [Fact]
    public async Task NodePublishVolume_Valid_PublishesWithPod()
    {
        await _node.NodeStageVolume(TestData.Stage(), _context);
        await _node.NodePublishVolume(TestData.Publish(), _context);

        var publish = Supervisor.OnlyRequest<PublishVolumeRequest>();
        Assert.Equal(TestData.VolumeId, publish.VolumeId);
        Assert.Equal(TestData.TargetPath, publish.TargetPath);
        Assert.False(publish.ReadOnly);
        Assert.Equal("app-0", publish.Pod.Name);
        Assert.Equal("apps", publish.Pod.Namespace);
        Assert.Equal("uid-1", publish.Pod.Uid);
    }

    [Fact]
    public async Task NodePublishVolume_PublishSecrets_ForwardsThemForRotation()
    {
        await _node.NodeStageVolume(TestData.Stage(), _context);
        var request = TestData.Publish();
        request.Secrets.Add(new Dictionary<string, string> { ["accessKeyID"] = "ROTATED", ["secretAccessKey"] = "rotated-secret" });

        await _node.NodePublishVolume(request, _context);

        var publish = Supervisor.OnlyRequest<PublishVolumeRequest>();
        Assert.Equal(("ROTATED", "rotated-secret"), (publish.Credentials.AccessKeyId, publish.Credentials.SecretAccessKey));
    }

    [Fact]
    public async Task NodePublishVolume_NoSecrets_SendsNoCredentials()
    {
        await _node.NodeStageVolume(TestData.Stage(), _context);
        await _node.NodePublishVolume(TestData.Publish(), _context);
        Assert.Null(Supervisor.OnlyRequest<PublishVolumeRequest>().Credentials);
    }

    [Fact]
    public async Task NodePublishVolume_NoPodInfo_PublishesWithoutPod()
    {
        await _node.NodeStageVolume(TestData.Stage(), _context);
        var request = TestData.Publish();
        request.VolumeContext.Clear();
        await _node.NodePublishVolume(request, _context);
        Assert.Null(Supervisor.OnlyRequest<PublishVolumeRequest>().Pod);
    }

    [Fact]
    public async Task NodePublishVolume_ReadonlyFlag_PublishesReadOnly()
    {
        await _node.NodeStageVolume(TestData.Stage(), _context);
        var request = TestData.Publish();
        request.Readonly = true;
        await _node.NodePublishVolume(request, _context);
        Assert.True(Supervisor.OnlyRequest<PublishVolumeRequest>().ReadOnly);
    }

    [Theory]
    [InlineData(Mode.SingleNodeReaderOnly, true)]
    [InlineData(Mode.MultiNodeReaderOnly, true)]
    [InlineData(Mode.SingleNodeWriter, false)]
    [InlineData(Mode.MultiNodeMultiWriter, false)]
    [InlineData(Mode.MultiNodeSingleWriter, false)]
    [InlineData(Mode.SingleNodeSingleWriter, false)]
    [InlineData(Mode.SingleNodeMultiWriter, false)]
    public async Task NodePublishVolume_AccessMode_SetsReadOnlyForReaderModes(Mode mode, bool readOnly)
    {
        await _node.NodeStageVolume(TestData.Stage(), _context);
        var request = TestData.Publish();
        request.VolumeCapability.AccessMode.Mode = mode;
        await _node.NodePublishVolume(request, _context);
        Assert.Equal(readOnly, Supervisor.OnlyRequest<PublishVolumeRequest>().ReadOnly);
    }

    [Fact]
    public async Task NodePublishVolume_MissingVolumeId_InvalidArgument()
    {
        var request = TestData.Publish();
        request.VolumeId = "";
        await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodePublishVolume(request, _context));
    }

    [Fact]
    public async Task NodePublishVolume_MissingTargetPath_InvalidArgument()
    {
        var request = TestData.Publish();
        request.TargetPath = "";
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodePublishVolume(request, _context));
        Assert.Contains("target_path", e.Status.Detail);
    }

    [Fact]
    public async Task NodePublishVolume_MissingStagingPath_FailedPrecondition()
    {
        var request = TestData.Publish();
        request.StagingTargetPath = "";
        var e = await TestData.Fails(StatusCode.FailedPrecondition, () => _node.NodePublishVolume(request, _context));
        Assert.Contains("staging_target_path", e.Status.Detail);
        Assert.Empty(Supervisor.Requests);
    }

    [Fact]
    public async Task NodePublishVolume_MissingCapability_InvalidArgument()
    {
        var request = TestData.Publish();
        request.VolumeCapability = null;
        await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodePublishVolume(request, _context));
    }

    [Fact]
    public async Task NodePublishVolume_BlockAccess_InvalidArgument()
    {
        var request = TestData.Publish();
        request.VolumeCapability = TestData.Block();
        await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodePublishVolume(request, _context));
    }

    [Fact]
    public async Task NodePublishVolume_EphemeralInline_InvalidArgument()
    {
        var request = TestData.Publish();
        request.VolumeContext["csi.storage.k8s.io/ephemeral"] = "true";
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodePublishVolume(request, _context));
        Assert.Contains("ephemeral", e.Status.Detail);
    }

    [Fact]
    public async Task NodePublishVolume_NotStaged_SupervisorCodeThrough()
    {
        await TestData.Fails(StatusCode.FailedPrecondition, () => _node.NodePublishVolume(TestData.Publish(), _context));
    }

    [Fact]
    public async Task NodePublishVolume_Repeated_Succeeds()
    {
        await _node.NodeStageVolume(TestData.Stage(), _context);
        await _node.NodePublishVolume(TestData.Publish(), _context);
        await _node.NodePublishVolume(TestData.Publish(), _context);
        Assert.Single(Supervisor.Volumes[TestData.VolumeId].Targets);
    }

    // ---- NodeUnpublishVolume

    [Fact]
    public async Task NodeUnpublishVolume_Valid_UnpublishesAtSupervisor()
    {
        await _node.NodeUnpublishVolume(new NodeUnpublishVolumeRequest { VolumeId = TestData.VolumeId, TargetPath = TestData.TargetPath }, _context);
        var unpublish = Supervisor.OnlyRequest<UnpublishVolumeRequest>();
        Assert.Equal(TestData.TargetPath, unpublish.TargetPath);
    }

    [Fact]
    public async Task NodeUnpublishVolume_MissingVolumeId_InvalidArgument()
    {
        await TestData.Fails(StatusCode.InvalidArgument,
            () => _node.NodeUnpublishVolume(new NodeUnpublishVolumeRequest { TargetPath = TestData.TargetPath }, _context));
    }

    [Fact]
    public async Task NodeUnpublishVolume_MissingTargetPath_InvalidArgument()
    {
        var e = await TestData.Fails(StatusCode.InvalidArgument,
            () => _node.NodeUnpublishVolume(new NodeUnpublishVolumeRequest { VolumeId = TestData.VolumeId }, _context));
        Assert.Contains("target_path", e.Status.Detail);
    }

    [Fact]
    public async Task NodeUnpublishVolume_SupervisorNotFound_NotFound()
    {
        Supervisor.Before = _ => throw new RpcException(new Status(StatusCode.NotFound, "no such volume"));
        await TestData.Fails(StatusCode.NotFound,
            () => _node.NodeUnpublishVolume(new NodeUnpublishVolumeRequest { VolumeId = TestData.VolumeId, TargetPath = TestData.TargetPath }, _context));
    }

    // ---- NodeGetVolumeStats

    [Fact]
    public async Task NodeGetVolumeStats_MissingVolumeId_InvalidArgument()
    {
        await TestData.Fails(StatusCode.InvalidArgument,
            () => _node.NodeGetVolumeStats(new NodeGetVolumeStatsRequest { VolumePath = TestData.TargetPath }, _context));
    }

    [Fact]
    public async Task NodeGetVolumeStats_MissingVolumePath_InvalidArgument()
    {
        var e = await TestData.Fails(StatusCode.InvalidArgument,
            () => _node.NodeGetVolumeStats(new NodeGetVolumeStatsRequest { VolumeId = TestData.VolumeId }, _context));
        Assert.Contains("volume_path", e.Status.Detail);
    }

    [Fact]
    public async Task NodeGetVolumeStats_UnknownVolume_NotFound()
    {
        await TestData.Fails(StatusCode.NotFound,
            () => _node.NodeGetVolumeStats(new NodeGetVolumeStatsRequest { VolumeId = "unknown", VolumePath = TestData.TargetPath }, _context));
    }

    [Fact]
    public async Task NodeGetVolumeStats_PathOfAnotherVolume_NotFound()
    {
        await StageAndPublish();
        var e = await TestData.Fails(StatusCode.NotFound,
            () => _node.NodeGetVolumeStats(new NodeGetVolumeStatsRequest { VolumeId = TestData.VolumeId, VolumePath = "/var/lib/kubelet/pods/other/mount" }, _context));
        Assert.Contains("volume_path", e.Status.Detail);
    }

    [Theory]
    [InlineData(TestData.TargetPath)]
    [InlineData(TestData.TargetPath + "/")]
    [InlineData(TestData.StagingPath)]
    public async Task NodeGetVolumeStats_Ready_NormalConditionAndUsage(string path)
    {
        await StageAndPublish();
        var stats = await _node.NodeGetVolumeStats(new NodeGetVolumeStatsRequest { VolumeId = TestData.VolumeId, VolumePath = path }, _context);
        Assert.False(stats.VolumeCondition.Abnormal);
        Assert.NotEmpty(stats.VolumeCondition.Message);
        var usage = Assert.Single(stats.Usage);
        Assert.Equal(VolumeUsage.Types.Unit.Bytes, usage.Unit);
    }

    [Theory]
    [InlineData(VolumeState.Stale, "stale")]
    [InlineData(VolumeState.Recovering, "remounting")]
    [InlineData(VolumeState.Failed, "failed")]
    [InlineData(VolumeState.Unmounting, "unstaged")]
    public async Task NodeGetVolumeStats_Unhealthy_AbnormalWithMessage(VolumeState state, string words)
    {
        await StageAndPublish();
        var volume = Supervisor.Volumes[TestData.VolumeId];
        volume.State = state;
        volume.RestartCount = 3;
        volume.LastError = "s3fs exited with signal 9";
        var stats = await _node.NodeGetVolumeStats(new NodeGetVolumeStatsRequest { VolumeId = TestData.VolumeId, VolumePath = TestData.TargetPath }, _context);
        Assert.True(stats.VolumeCondition.Abnormal);
        Assert.Contains(words, stats.VolumeCondition.Message);
        Assert.Contains("s3fs exited with signal 9", stats.VolumeCondition.Message);
        Assert.Contains("3", stats.VolumeCondition.Message);
    }

    [Fact]
    public async Task NodeGetVolumeStats_SupervisorUnreachable_Unavailable()
    {
        var node = new NodeService(TestData.Options(), Unreachable(out _), new VolumeLocks());
        await TestData.Fails(StatusCode.Unavailable,
            () => node.NodeGetVolumeStats(new NodeGetVolumeStatsRequest { VolumeId = TestData.VolumeId, VolumePath = TestData.TargetPath }, _context));
    }

    // ---- issue 7: error precedence, control characters, inline ephemeral

    [Fact]
    public async Task NodePublishVolume_NoCapabilityNoStagingPath_InvalidArgument()
    {
        var request = TestData.Publish();
        request.VolumeCapability = null;
        request.StagingTargetPath = "";
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodePublishVolume(request, _context));
        Assert.Contains("volume_capability", e.Status.Detail);
        Assert.Empty(Supervisor.Requests);
    }

    [Theory]
    [InlineData("relative/mount")]
    [InlineData("mount\\u0000\\n")]
    [InlineData("/var/lib/kubelet/pods/\\u0007bell")]
    public async Task NodeGetVolumeStats_KnownVolumeOddPath_NotFound(string path)
    {
        path = System.Text.RegularExpressions.Regex.Unescape(path);
        await StageAndPublish();
        var e = await TestData.Fails(StatusCode.NotFound,
            () => _node.NodeGetVolumeStats(new NodeGetVolumeStatsRequest { VolumeId = TestData.VolumeId, VolumePath = path }, _context));
        Assert.Contains("volume_path", e.Status.Detail);
        Assert.DoesNotContain(e.Status.Detail, c => char.IsControl(c));
    }

    [Fact]
    public async Task NodeGetVolumeStats_UnknownVolumeRelativePath_NotFound()
    {
        await TestData.Fails(StatusCode.NotFound,
            () => _node.NodeGetVolumeStats(new NodeGetVolumeStatsRequest { VolumeId = "unknown", VolumePath = "relative/path" }, _context));
    }

    [Theory]
    [InlineData("uid=1000\\u0000", "volume_context[options]")]
    [InlineData("umask=022\\r", "volume_context[options]")]
    [InlineData("allow_other\\n,uid=1", "volume_context[options]")]
    [InlineData("gid=\\t5", "volume_context[options]")]
    public async Task NodeStageVolume_ControlCharacterInOptions_InvalidArgumentNamingField(string options, string field)
    {
        var request = TestData.Stage();
        request.VolumeContext["options"] = System.Text.RegularExpressions.Regex.Unescape(options);
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains(field, e.Status.Detail);
        Assert.Contains("control characters", e.Status.Detail);
        Assert.Empty(Supervisor.Requests);
    }

    [Theory]
    [InlineData("ro\\n")]
    [InlineData("uid=1000\\u0000")]
    [InlineData("umask=022\\r")]
    public async Task NodeStageVolume_ControlCharacterInMountFlag_InvalidArgumentNamingFlag(string flag)
    {
        var request = TestData.Stage();
        request.VolumeCapability = TestData.Mount(Mode.SingleNodeWriter, "allow_other", System.Text.RegularExpressions.Regex.Unescape(flag));
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains("volume_capability.mount.mount_flags[1]", e.Status.Detail);
        Assert.Empty(Supervisor.Requests);
    }

    [Theory]
    [InlineData("true")]
    [InlineData("True")]
    [InlineData(" true")]
    [InlineData("1")]
    [InlineData("")]
    public async Task NodeStageVolume_EphemeralKey_InvalidArgumentNamingKey(string value)
    {
        var request = TestData.Stage();
        request.VolumeContext["csi.storage.k8s.io/ephemeral"] = value;
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodeStageVolume(request, _context));
        Assert.Contains("volume_context[csi.storage.k8s.io/ephemeral]", e.Status.Detail);
        Assert.Empty(Supervisor.Requests);
    }

    /// <summary>
    /// Kubelet never stages an inline ephemeral volume, so its NodePublishVolume has no staging path:
    /// the ephemeral check used to come after the staging path's FAILED_PRECONDITION and was never reached.
    /// </summary>
    [Theory]
    [InlineData("true")]
    [InlineData("true\\n")]
    [InlineData("yes")]
    public async Task NodePublishVolume_EphemeralWithoutStagingPath_InvalidArgumentNamingKey(string value)
    {
        var request = TestData.Publish();
        request.StagingTargetPath = "";
        request.VolumeContext["csi.storage.k8s.io/ephemeral"] = System.Text.RegularExpressions.Regex.Unescape(value);
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodePublishVolume(request, _context));
        Assert.Contains("volume_context[csi.storage.k8s.io/ephemeral]", e.Status.Detail);
        Assert.Empty(Supervisor.Requests);
    }

    [Fact]
    public async Task NodePublishVolume_EphemeralFalse_Publishes()
    {
        await _node.NodeStageVolume(TestData.Stage(), _context);
        var request = TestData.Publish();
        request.VolumeContext["csi.storage.k8s.io/ephemeral"] = "false";
        await _node.NodePublishVolume(request, _context);
        Assert.Single(Supervisor.Volumes[TestData.VolumeId].Targets);
    }

    [Fact]
    public async Task NodePublishVolume_PodNameWithNewline_InvalidArgumentNamingKey()
    {
        var request = TestData.Publish();
        request.VolumeContext["csi.storage.k8s.io/pod.name"] = "app-0\nInjected: line";
        var e = await TestData.Fails(StatusCode.InvalidArgument, () => _node.NodePublishVolume(request, _context));
        Assert.Contains("volume_context[csi.storage.k8s.io/pod.name]", e.Status.Detail);
        Assert.Empty(Supervisor.Requests);
    }

    [Fact]
    public async Task NodeStageVolume_SupervisorNamesStagingPath_CsiFieldName()
    {
        Supervisor.Before = _ => throw new RpcException(new Status(StatusCode.PermissionDenied, "staging_path: is outside the allowed roots (/var/lib/kubelet)"));
        var e = await TestData.Fails(StatusCode.PermissionDenied, () => _node.NodeStageVolume(TestData.Stage(), _context));
        Assert.StartsWith("staging_target_path: is outside the allowed roots", e.Status.Detail);
    }

    private async Task StageAndPublish()
    {
        await _node.NodeStageVolume(TestData.Stage(), _context);
        await _node.NodePublishVolume(TestData.Publish(), _context);
    }

    /// <summary>Calls to a socket path where nothing listens.</summary>
    private SupervisorCalls Unreachable(out string socket)
    {
        socket = Path.Combine(_server.Directory, "nobody-here.sock");
        return new SupervisorCalls(new Supervisor.SupervisorClient(S3Supervisor.Common.UnixSocketChannel.Create(socket)), socket);
    }
}

using Csi.V1;
using Google.Protobuf;
using Grpc.Core;
using S3Supervisor.Common;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Containers;
using S3Supervisor.TestKit.Supervisor;
using Mode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;
using Sv = S3Supervisor.Api.V1;

namespace S3Supervisor.IntegrationTests.Plugin;

/// <summary>
/// What a hostile (or badly broken) caller of the CSI socket can send, through the real plugin and the
/// real supervisor. Each case gets the status the CSI spec asks for, naming the field; no secret in
/// the message or the plugin's log; nothing mounted anywhere, nothing created outside the allowed
/// root, no input reaching the plugin's catch-all; and the plugin still serves afterwards. One
/// plugin and supervisor serve every case (with one good volume staged and published, so that
/// "known volume, wrong path" can be asked): the cases run one after another in this class.
/// </summary>
[Collection(RgwFixture.Collection)]
public sealed class HostileCsiRequestTests : IClassFixture<HostileCsiRequestTests.HostileNode>, IAsyncLifetime
{
    /// <summary>A value planted where secrets could leak from; it must show up nowhere.</summary>
    private const string Planted = "Pl4ntedS3cretValue";
    private const string NewId = "hc-new";

    private readonly RgwFixture _rgw;
    private readonly HostileNode _node;

    public HostileCsiRequestTests(RgwFixture rgw, HostileNode node)
    {
        _rgw = rgw;
        _node = node;
    }

    private RgwServer S3 => _rgw.Server!;

    private SupervisorLayout Layout => _node.Layout;

    private PluginProcess Plugin => _node.Plugin!;

    public async Task InitializeAsync()
    {
        _rgw.SkipIfUnavailable();
        await _node.EnsureStartedAsync(_rgw);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public static TheoryData<string> Cases() => new(AllCases);

    private static readonly string[] AllCases =
    [
        // NodeStageVolume: paths
        "stage-traversal-dotdot", "stage-relative-path", "stage-outside-root", "stage-root-itself", "stage-symlink-itself-escape",
        "stage-symlink-parent-escape", "stage-dangling-symlink-parent", "stage-symlink-loop", "stage-proc-1-root-etc", "stage-dot-segment",
        "stage-double-slash", "stage-newline-path", "stage-nul-path", "stage-oversize-path", "stage-empty-path",
        // NodeStageVolume: volume id
        "stage-empty-volume-id", "stage-space-volume-id", "stage-oversize-volume-id", "stage-nul-volume-id", "stage-newline-volume-id",
        "stage-non-ascii-volume-id",
        // NodeStageVolume: capability and mount flags
        "stage-missing-capability", "stage-block", "stage-no-access-type", "stage-missing-access-mode", "stage-unknown-mode",
        "stage-undefined-mode", "stage-mount-flag-newline", "stage-mount-flag-nul", "stage-mount-flag-passwd-file", "stage-mount-flag-url",
        "stage-mount-flag-comma-injection", "stage-mount-flag-equals-in-value",
        // NodeStageVolume: every volume context key
        "ctx-bucket-missing", "ctx-bucket-uppercase", "ctx-bucket-comma", "ctx-bucket-newline", "ctx-bucket-nul", "ctx-bucket-ip",
        "ctx-bucket-oversize", "ctx-prefix-leading-slash", "ctx-prefix-dotdot", "ctx-prefix-comma", "ctx-prefix-newline", "ctx-prefix-nul",
        "ctx-prefix-oversize", "ctx-endpoint-missing", "ctx-endpoint-file-scheme", "ctx-endpoint-userinfo", "ctx-endpoint-userinfo-upper",
        "ctx-endpoint-comma-injection", "ctx-endpoint-newline", "ctx-endpoint-nul", "ctx-endpoint-query", "ctx-endpoint-fragment",
        "ctx-endpoint-oversize", "ctx-endpoint-javascript", "ctx-region-comma", "ctx-region-newline", "ctx-region-equals", "ctx-region-oversize",
        "ctx-options-passwd-file", "ctx-options-url", "ctx-options-comma-injection", "ctx-options-equals", "ctx-options-newline",
        "ctx-options-nul", "ctx-options-cr", "ctx-options-umask-nonoctal", "ctx-options-storage-class", "ctx-options-dbglevel",
        "ctx-options-uid-negative", "ctx-options-uid-overflow", "ctx-options-cache-dir", "ctx-options-unknown", "ctx-unknown-key",
        "ctx-unknown-key-control", "ctx-ephemeral-true", "ctx-ephemeral-upper", "ctx-ephemeral-whitespace",
        // NodeStageVolume: secrets
        "sec-missing-both", "sec-access-only", "sec-secret-only", "sec-session-token-alone", "sec-access-newline", "sec-access-colon",
        "sec-access-comma", "sec-secret-newline", "sec-secret-nul", "sec-secret-oversize", "sec-token-newline", "sec-session-token-with-keys",
        // NodePublishVolume
        "pub-traversal", "pub-relative", "pub-outside-root", "pub-root-itself", "pub-symlink-parent-escape", "pub-symlink-itself",
        "pub-dangling-symlink-parent", "pub-symlink-loop", "pub-proc-1-root-etc", "pub-newline-target", "pub-nul-target", "pub-oversize-target",
        "pub-empty-target", "pub-no-capability-no-staging", "pub-missing-staging", "pub-staging-relative", "pub-staging-control-char",
        "pub-block", "pub-unknown-mode", "pub-ephemeral-no-staging", "pub-ephemeral-yes", "pub-pod-name-newline", "pub-pod-uid-nul",
        "pub-unknown-volume", "pub-bad-volume-id", "pub-secret-newline", "pub-secret-one-key",
        // NodeUnpublishVolume
        "unpub-traversal", "unpub-relative", "unpub-outside-root", "unpub-empty", "unpub-control-char", "unpub-bad-volume-id",
        "unpub-symlink-parent-escape", "unpub-proc-1-root-etc",
        // NodeUnstageVolume
        "unstage-traversal", "unstage-relative", "unstage-empty", "unstage-control-char", "unstage-outside-root", "unstage-bad-volume-id",
        "unstage-symlink-parent-escape",
        // NodeGetVolumeStats
        "stats-empty-path", "stats-empty-id", "stats-bad-id", "stats-unknown-volume", "stats-known-relative-path", "stats-known-control-path",
        "stats-known-traversal", "stats-known-outside", "stats-known-oversize",
        // Controller
        "create-empty-name", "create-name-control", "create-name-oversize", "create-no-capabilities", "create-block", "create-unknown-mode",
        "create-negative-capacity", "create-content-source", "create-missing-endpoint", "create-endpoint-userinfo", "create-unknown-parameter",
        "create-options-injection", "create-missing-secrets", "create-secret-newline", "create-session-token-alone",
        "delete-empty-id", "delete-ours-missing-secrets", "delete-secret-newline",
        "validate-empty-id", "validate-no-capabilities", "validate-unknown-id", "validate-control-id",
        // Malformed protobuf on every method under test
        "raw-NodeStageVolume-unterminated-varint", "raw-NodeStageVolume-invalid-utf8-string", "raw-NodePublishVolume-truncated-length-delimited",
        "raw-NodePublishVolume-tag-zero", "raw-NodeUnpublishVolume-unclosed-group", "raw-NodeUnpublishVolume-invalid-utf8-string",
        "raw-NodeUnstageVolume-varint-without-value", "raw-NodeUnstageVolume-wire-type-7", "raw-NodeGetVolumeStats-unterminated-varint",
        "raw-NodeGetVolumeStats-invalid-utf8-string", "raw-CreateVolume-truncated-length-delimited", "raw-CreateVolume-tag-zero",
        "raw-DeleteVolume-unclosed-group", "raw-DeleteVolume-invalid-utf8-string", "raw-ValidateVolumeCapabilities-wire-type-7",
        "raw-ValidateVolumeCapabilities-unterminated-varint",
    ];

    [SkippableFact]
    public void Cases_Count_AtLeast110Distinct()
    {
        Assert.True(AllCases.Length >= 110, $"{AllCases.Length} cases");
        Assert.Equal(AllCases.Length, AllCases.Distinct(StringComparer.Ordinal).Count());
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public async Task CsiCall_HostileInput_RightStatusNamesFieldMountsAndLeaksNothing(string name)
    {
        var mountsBefore = MountTable.Read();
        var outsideBefore = Snapshot(_node.Outside);
        var hostile = Build(name);
        foreach (var path in hostile.MustNotExist)
        {
            Assert.False(Path.Exists(path), $"{path} exists before the case");
        }

        var error = await Assert.ThrowsAsync<RpcException>(hostile.Call);

        Assert.True(hostile.Code == error.StatusCode, $"{name}: expected {hostile.Code}, got {error.StatusCode}: {error.Status.Detail}");
        Assert.Contains(hostile.Field, error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(Planted, error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(S3.SecretKey, error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(error.Status.Detail, char.IsControl);

        // Nothing mounted anywhere: no new mount in our tree or anywhere else (other test runs on
        // this machine mount under their own temporary directories, and the container tests' podman
        // mounts its containers' root filesystems in its storage; those are not ours to judge).
        var newMounts = MountTable.Read().Where(m => !mountsBefore.Any(b => b.Id == m.Id)).Select(m => m.MountPoint)
            .Where(p => p.StartsWith(Layout.Root, StringComparison.Ordinal) || p.StartsWith(_node.Outside, StringComparison.Ordinal) || !p.StartsWith(Path.GetTempPath(), StringComparison.Ordinal))
            .Where(p => !Podman.IsRuntimeStorage(p))
            .ToArray();
        Assert.Empty(newMounts);
        Assert.Equal(outsideBefore, Snapshot(_node.Outside));
        foreach (var path in hostile.MustNotExist)
        {
            Assert.False(Path.Exists(path), $"{path} was created");
        }
        var volumes = (await _node.Supervisor!.Client.ListVolumesAsync(new Sv.ListVolumesRequest())).Volumes;
        var good = Assert.Single(volumes);
        Assert.Equal(HostileNode.GoodId, good.VolumeId);
        Assert.Single(good.Targets);

        // Still serving, and no input reached the catch-all.
        Assert.True((await Plugin.Identity.ProbeAsync(new ProbeRequest(), deadline: DateTime.UtcNow.AddSeconds(10))).Ready);
        Assert.NotEmpty((await Plugin.Node.NodeGetCapabilitiesAsync(new NodeGetCapabilitiesRequest(), deadline: DateTime.UtcNow.AddSeconds(10))).Capabilities);
        var log = Plugin.Output;
        Assert.DoesNotContain("failed unexpectedly", log, StringComparison.Ordinal);
        Assert.DoesNotContain("(ref ", log, StringComparison.Ordinal);
        Assert.DoesNotContain(Planted, log, StringComparison.Ordinal);
        Assert.DoesNotContain(S3.SecretKey, log, StringComparison.Ordinal);
        var supervisorLog = _node.Supervisor!.Output;
        Assert.DoesNotContain("failed unexpectedly", supervisorLog, StringComparison.Ordinal);
        Assert.DoesNotContain(S3.SecretKey, supervisorLog, StringComparison.Ordinal);
    }

    private sealed record Hostile(Func<Task> Call, StatusCode Code, string Field, string[] MustNotExist);

    private static string[] Snapshot(string directory) =>
        Directory.EnumerateFileSystemEntries(directory, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();

    private Hostile Build(string name)
    {
        var root = Layout.KubeletRoot;
        var node = Plugin.Node;
        var controller = Plugin.Controller;
        var stage = StageRequest();
        var publish = PublishRequest();
        var unpublish = new NodeUnpublishVolumeRequest { VolumeId = HostileNode.GoodId, TargetPath = Layout.TargetPath("hc-pod-2", "pv-hc") };
        var unstage = new NodeUnstageVolumeRequest { VolumeId = NewId, StagingTargetPath = Layout.StagingPath(NewId) };
        var stats = new NodeGetVolumeStatsRequest { VolumeId = HostileNode.GoodId, VolumePath = _node.GoodStaging };
        var create = CreateRequest();
        var outsideNew = Path.Combine(_node.Outside, "new-" + Guid.NewGuid().ToString("N")[..8]);
        var etc = "/etc/s3sv-hostile-" + Guid.NewGuid().ToString("N")[..8];

        Hostile Stage(StatusCode code, string field, params string[] mustNotExist) => new(() => node.NodeStageVolumeAsync(stage).ResponseAsync, code, field, mustNotExist);
        Hostile Publish(StatusCode code, string field, params string[] mustNotExist) => new(() => node.NodePublishVolumeAsync(publish).ResponseAsync, code, field, mustNotExist);
        Hostile Unpublish(StatusCode code, string field) => new(() => node.NodeUnpublishVolumeAsync(unpublish).ResponseAsync, code, field, []);
        Hostile Unstage(StatusCode code, string field) => new(() => node.NodeUnstageVolumeAsync(unstage).ResponseAsync, code, field, []);
        Hostile Stats(StatusCode code, string field) => new(() => node.NodeGetVolumeStatsAsync(stats).ResponseAsync, code, field, []);
        Hostile Create(StatusCode code, string field) => new(() => controller.CreateVolumeAsync(create).ResponseAsync, code, field, []);
        Hostile Context(string key, string value, string field)
        {
            stage.VolumeContext[key] = value;
            return Stage(StatusCode.InvalidArgument, field);
        }
        Hostile Options(string options, string field) => Context(VolumeContext.Options, options, field);
        Hostile Flags(string field, params string[] flags)
        {
            stage.VolumeCapability.Mount.MountFlags.Add(flags);
            return Stage(StatusCode.InvalidArgument, field);
        }

        if (name.StartsWith("raw-", StringComparison.Ordinal))
        {
            var parts = name.Split('-', 3);
            var service = parts[1].StartsWith("Node", StringComparison.Ordinal) ? "csi.v1.Node" : "csi.v1.Controller";
            var bytes = RawGrpc.Malformed.Single(m => m.Name == parts[2]).Bytes;
            return new(() => RawGrpc.CallAsync(Plugin.Channel, $"/{service}/{parts[1]}", bytes), StatusCode.InvalidArgument, "request: is not a valid csi.v1.", []);
        }

        switch (name)
        {
            // ---- NodeStageVolume: paths
            case "stage-traversal-dotdot":
                stage.StagingTargetPath = root + "/plugins/../../../etc/x";
                return Stage(StatusCode.InvalidArgument, "staging_target_path");
            case "stage-relative-path":
                stage.StagingTargetPath = "kubelet/plugins/x/globalmount";
                return Stage(StatusCode.InvalidArgument, "staging_target_path");
            case "stage-outside-root":
                stage.StagingTargetPath = etc;
                return Stage(StatusCode.PermissionDenied, "staging_target_path", etc);
            case "stage-root-itself":
                stage.StagingTargetPath = root;
                return Stage(StatusCode.PermissionDenied, "staging_target_path");
            case "stage-symlink-itself-escape":
                stage.StagingTargetPath = _node.EscapeLink;
                return Stage(StatusCode.PermissionDenied, "staging_target_path");
            case "stage-symlink-parent-escape":
                stage.StagingTargetPath = Path.Combine(_node.EscapeLink, "globalmount");
                return Stage(StatusCode.PermissionDenied, "staging_target_path", Path.Combine(_node.Outside, "globalmount"));
            case "stage-dangling-symlink-parent":
                stage.StagingTargetPath = Path.Combine(_node.DanglingLink, "globalmount");
                return Stage(StatusCode.PermissionDenied, "staging_target_path", _node.DanglingTarget);
            case "stage-symlink-loop":
                stage.StagingTargetPath = Path.Combine(_node.LoopLink, "globalmount");
                return Stage(StatusCode.PermissionDenied, "staging_target_path");
            case "stage-proc-1-root-etc":
                stage.StagingTargetPath = "/proc/1/root/etc";
                return Stage(StatusCode.PermissionDenied, "staging_target_path");
            case "stage-dot-segment":
                stage.StagingTargetPath = root + "/./plugins/x";
                return Stage(StatusCode.InvalidArgument, "staging_target_path");
            case "stage-double-slash":
                stage.StagingTargetPath = root + "//plugins/x";
                return Stage(StatusCode.InvalidArgument, "staging_target_path");
            case "stage-newline-path":
                stage.StagingTargetPath = root + "/plugins/x\n/globalmount";
                return Stage(StatusCode.InvalidArgument, "staging_target_path");
            case "stage-nul-path":
                stage.StagingTargetPath = root + "/plugins/x\0/globalmount";
                return Stage(StatusCode.InvalidArgument, "staging_target_path");
            case "stage-oversize-path":
                stage.StagingTargetPath = root + "/" + new string('a', 5000);
                return Stage(StatusCode.InvalidArgument, "staging_target_path");
            case "stage-empty-path":
                stage.StagingTargetPath = string.Empty;
                return Stage(StatusCode.InvalidArgument, "staging_target_path");

            // ---- NodeStageVolume: volume id
            case "stage-empty-volume-id":
                stage.VolumeId = string.Empty;
                return Stage(StatusCode.InvalidArgument, "volume_id");
            case "stage-space-volume-id":
                stage.VolumeId = "hc new";
                return Stage(StatusCode.InvalidArgument, "volume_id");
            case "stage-oversize-volume-id":
                stage.VolumeId = new string('v', 300);
                return Stage(StatusCode.InvalidArgument, "volume_id");
            case "stage-nul-volume-id":
                stage.VolumeId = "hc\0new";
                return Stage(StatusCode.InvalidArgument, "volume_id");
            case "stage-newline-volume-id":
                stage.VolumeId = "hc-new\n";
                return Stage(StatusCode.InvalidArgument, "volume_id");
            case "stage-non-ascii-volume-id":
                stage.VolumeId = "hc-né";
                return Stage(StatusCode.InvalidArgument, "volume_id");

            // ---- NodeStageVolume: capability and mount flags
            case "stage-missing-capability":
                stage.VolumeCapability = null;
                return Stage(StatusCode.InvalidArgument, "volume_capability");
            case "stage-block":
                stage.VolumeCapability.Block = new VolumeCapability.Types.BlockVolume();
                return Stage(StatusCode.InvalidArgument, "volume_capability.block");
            case "stage-no-access-type":
                stage.VolumeCapability.ClearAccessType();
                return Stage(StatusCode.InvalidArgument, "volume_capability.access_type");
            case "stage-missing-access-mode":
                stage.VolumeCapability.AccessMode = null;
                return Stage(StatusCode.InvalidArgument, "volume_capability.access_mode");
            case "stage-unknown-mode":
                stage.VolumeCapability.AccessMode.Mode = Mode.Unknown;
                return Stage(StatusCode.InvalidArgument, "volume_capability.access_mode.mode");
            case "stage-undefined-mode":
                stage.VolumeCapability.AccessMode.Mode = (Mode)99;
                return Stage(StatusCode.InvalidArgument, "volume_capability.access_mode.mode");
            case "stage-mount-flag-newline":
                return Flags("volume_capability.mount.mount_flags[0]", "ro\n");
            case "stage-mount-flag-nul":
                return Flags("volume_capability.mount.mount_flags[1]", "allow_other", "uid=0\0");
            case "stage-mount-flag-passwd-file":
                return Flags("volume_capability.mount.mount_flags.passwd_file", "passwd_file=/etc/shadow");
            case "stage-mount-flag-url":
                return Flags("volume_capability.mount.mount_flags.url", "url=http://127.0.0.2:1");
            case "stage-mount-flag-comma-injection":
                return Flags("volume_capability.mount.mount_flags.passwd_file", "allow_other,passwd_file=/etc/shadow");
            case "stage-mount-flag-equals-in-value":
                return Flags("volume_capability.mount.mount_flags.uid", "uid=1=2");

            // ---- NodeStageVolume: volume context
            case "ctx-bucket-missing":
                stage.VolumeContext.Remove(VolumeContext.Bucket);
                return Stage(StatusCode.InvalidArgument, "volume_context[bucket]");
            case "ctx-bucket-uppercase":
                return Context(VolumeContext.Bucket, "MyBucket", "volume_context.bucket");
            case "ctx-bucket-comma":
                return Context(VolumeContext.Bucket, "bkt,url=http://127.0.0.2", "volume_context.bucket");
            case "ctx-bucket-newline":
                return Context(VolumeContext.Bucket, "bkt\nx", "volume_context.bucket");
            case "ctx-bucket-nul":
                return Context(VolumeContext.Bucket, "bkt\0x", "volume_context.bucket");
            case "ctx-bucket-ip":
                return Context(VolumeContext.Bucket, "192.168.1.1", "volume_context.bucket");
            case "ctx-bucket-oversize":
                return Context(VolumeContext.Bucket, new string('b', 64), "volume_context.bucket");
            case "ctx-prefix-leading-slash":
                return Context(VolumeContext.Prefix, "/abs", "volume_context.prefix");
            case "ctx-prefix-dotdot":
                return Context(VolumeContext.Prefix, "a/../../b", "volume_context.prefix");
            case "ctx-prefix-comma":
                return Context(VolumeContext.Prefix, "a,passwd_file=/etc/shadow", "volume_context.prefix");
            case "ctx-prefix-newline":
                return Context(VolumeContext.Prefix, "a\nb", "volume_context.prefix");
            case "ctx-prefix-nul":
                return Context(VolumeContext.Prefix, "a\0b", "volume_context.prefix");
            case "ctx-prefix-oversize":
                return Context(VolumeContext.Prefix, new string('p', 2000), "volume_context.prefix");
            case "ctx-endpoint-missing":
                stage.VolumeContext.Remove(VolumeContext.Endpoint);
                return Stage(StatusCode.InvalidArgument, "volume_context[endpoint]");
            case "ctx-endpoint-file-scheme":
                return Context(VolumeContext.Endpoint, "file:///etc/passwd", "volume_context.endpoint");
            case "ctx-endpoint-userinfo":
                return Context(VolumeContext.Endpoint, $"http://{S3.AccessKey}:{Planted}@{new Uri(S3.Endpoint).Authority}", "volume_context.endpoint");
            case "ctx-endpoint-userinfo-upper":
                return Context(VolumeContext.Endpoint, $"HTTPS://AK:{Planted}@{new Uri(S3.Endpoint).Authority}", "volume_context.endpoint");
            case "ctx-endpoint-comma-injection":
                return Context(VolumeContext.Endpoint, S3.Endpoint + ",passwd_file=/etc/shadow", "volume_context.endpoint");
            case "ctx-endpoint-newline":
                return Context(VolumeContext.Endpoint, S3.Endpoint + "\n-o allow_root", "volume_context.endpoint");
            case "ctx-endpoint-nul":
                return Context(VolumeContext.Endpoint, S3.Endpoint + "\0", "volume_context.endpoint");
            case "ctx-endpoint-query":
                return Context(VolumeContext.Endpoint, S3.Endpoint + "/?x=1", "volume_context.endpoint");
            case "ctx-endpoint-fragment":
                return Context(VolumeContext.Endpoint, S3.Endpoint + "/#x", "volume_context.endpoint");
            case "ctx-endpoint-oversize":
                return Context(VolumeContext.Endpoint, S3.Endpoint + "/" + new string('e', 3000), "volume_context.endpoint");
            case "ctx-endpoint-javascript":
                return Context(VolumeContext.Endpoint, "javascript:alert(1)", "volume_context.endpoint");
            case "ctx-region-comma":
                return Context(VolumeContext.Region, "us-east-1,url=http://127.0.0.2", "volume_context.region");
            case "ctx-region-newline":
                return Context(VolumeContext.Region, "us-east-1\n", "volume_context.region");
            case "ctx-region-equals":
                return Context(VolumeContext.Region, "us=1", "volume_context.region");
            case "ctx-region-oversize":
                return Context(VolumeContext.Region, new string('r', 100), "volume_context.region");
            case "ctx-options-passwd-file":
                return Options("passwd_file=/etc/shadow", "volume_context[options].passwd_file");
            case "ctx-options-url":
                return Options("url=http://127.0.0.2:1", "volume_context[options].url");
            case "ctx-options-comma-injection":
                return Options("uid=0,passwd_file=/etc/shadow", "volume_context[options].passwd_file");
            case "ctx-options-equals":
                return Options("uid=1=2", "volume_context[options].uid");
            case "ctx-options-newline":
                return Options("allow_other\nurl=http://127.0.0.2", "volume_context[options]");
            case "ctx-options-nul":
                return Options("uid=1000\0", "volume_context[options]");
            case "ctx-options-cr":
                return Options("umask=022\r", "volume_context[options]");
            case "ctx-options-umask-nonoctal":
                return Options("umask=999", "volume_context[options].umask");
            case "ctx-options-storage-class":
                return Options("storage_class=EVIL", "volume_context[options].storage_class");
            case "ctx-options-dbglevel":
                return Options("dbglevel=trace", "volume_context[options].dbglevel");
            case "ctx-options-uid-negative":
                return Options("uid=-1", "volume_context[options].uid");
            case "ctx-options-uid-overflow":
                return Options("uid=99999999999", "volume_context[options].uid");
            case "ctx-options-cache-dir":
                return Options("use_cache=/tmp", "volume_context[options].use_cache");
            case "ctx-options-unknown":
                return Options("nonempty", "volume_context[options].nonempty");
            case "ctx-unknown-key":
                return Context("bucket_name", "other", "volume_context[bucket_name]");
            case "ctx-unknown-key-control":
                return Context("evil\nkey", "x", "volume_context[evil?key]");
            case "ctx-ephemeral-true":
                return Context(VolumeContext.Ephemeral, "true", "volume_context[csi.storage.k8s.io/ephemeral]");
            case "ctx-ephemeral-upper":
                return Context(VolumeContext.Ephemeral, "TRUE", "volume_context[csi.storage.k8s.io/ephemeral]");
            case "ctx-ephemeral-whitespace":
                return Context(VolumeContext.Ephemeral, " true\n", "volume_context[csi.storage.k8s.io/ephemeral]");

            // ---- NodeStageVolume: secrets
            case "sec-missing-both":
                stage.Secrets.Clear();
                return Stage(StatusCode.InvalidArgument, "secrets");
            case "sec-access-only":
                stage.Secrets.Remove(SecretKeys.SecretAccessKey);
                return Stage(StatusCode.InvalidArgument, "secrets[secretAccessKey]");
            case "sec-secret-only":
                stage.Secrets.Remove(SecretKeys.AccessKeyId);
                return Stage(StatusCode.InvalidArgument, "secrets[accessKeyID]");
            case "sec-session-token-alone":
                stage.Secrets.Clear();
                stage.Secrets[SecretKeys.SessionToken] = Planted;
                return Stage(StatusCode.InvalidArgument, "secrets[sessionToken]");
            case "sec-access-newline":
                stage.Secrets[SecretKeys.AccessKeyId] = S3.AccessKey + "\n" + Planted;
                return Stage(StatusCode.InvalidArgument, "secrets[accessKeyID]");
            case "sec-access-colon":
                stage.Secrets[SecretKeys.AccessKeyId] = S3.AccessKey + ":" + Planted;
                return Stage(StatusCode.InvalidArgument, "secrets[accessKeyID]");
            case "sec-access-comma":
                stage.Secrets[SecretKeys.AccessKeyId] = S3.AccessKey + "," + Planted;
                return Stage(StatusCode.InvalidArgument, "secrets[accessKeyID]");
            case "sec-secret-newline":
                stage.Secrets[SecretKeys.SecretAccessKey] = S3.SecretKey + "\nroot:" + Planted;
                return Stage(StatusCode.InvalidArgument, "secrets[secretAccessKey]");
            case "sec-secret-nul":
                stage.Secrets[SecretKeys.SecretAccessKey] = S3.SecretKey + "\0" + Planted;
                return Stage(StatusCode.InvalidArgument, "secrets[secretAccessKey]");
            case "sec-secret-oversize":
                stage.Secrets[SecretKeys.SecretAccessKey] = Planted + new string('s', 2000);
                return Stage(StatusCode.InvalidArgument, "secrets[secretAccessKey]");
            case "sec-token-newline":
                stage.Secrets[SecretKeys.SessionToken] = Planted + "\n";
                return Stage(StatusCode.InvalidArgument, "secrets[sessionToken]");
            case "sec-session-token-with-keys":
                stage.Secrets[SecretKeys.SessionToken] = Planted;
                return Stage(StatusCode.InvalidArgument, "session_token");

            // ---- NodePublishVolume
            case "pub-traversal":
                publish.TargetPath = root + "/pods/../../../etc/x";
                return Publish(StatusCode.InvalidArgument, "target_path");
            case "pub-relative":
                publish.TargetPath = "pods/hc/mount";
                return Publish(StatusCode.InvalidArgument, "target_path");
            case "pub-outside-root":
                publish.TargetPath = etc;
                return Publish(StatusCode.PermissionDenied, "target_path", etc);
            case "pub-root-itself":
                publish.TargetPath = root;
                return Publish(StatusCode.PermissionDenied, "target_path");
            case "pub-symlink-parent-escape":
                publish.TargetPath = Path.Combine(_node.EscapeLink, "mount");
                return Publish(StatusCode.PermissionDenied, "target_path", Path.Combine(_node.Outside, "mount"));
            case "pub-symlink-itself":
                publish.TargetPath = _node.EscapeLink;
                return Publish(StatusCode.PermissionDenied, "target_path");
            case "pub-dangling-symlink-parent":
                publish.TargetPath = Path.Combine(_node.DanglingLink, "mount");
                return Publish(StatusCode.PermissionDenied, "target_path", _node.DanglingTarget);
            case "pub-symlink-loop":
                publish.TargetPath = Path.Combine(_node.LoopLink, "mount");
                return Publish(StatusCode.PermissionDenied, "target_path");
            case "pub-proc-1-root-etc":
                publish.TargetPath = "/proc/1/root/etc";
                return Publish(StatusCode.PermissionDenied, "target_path");
            case "pub-newline-target":
                publish.TargetPath += "\n";
                return Publish(StatusCode.InvalidArgument, "target_path");
            case "pub-nul-target":
                publish.TargetPath += "\0x";
                return Publish(StatusCode.InvalidArgument, "target_path");
            case "pub-oversize-target":
                publish.TargetPath = root + "/pods/" + new string('t', 5000);
                return Publish(StatusCode.InvalidArgument, "target_path");
            case "pub-empty-target":
                publish.TargetPath = string.Empty;
                return Publish(StatusCode.InvalidArgument, "target_path");
            case "pub-no-capability-no-staging":
                publish.VolumeCapability = null;
                publish.StagingTargetPath = string.Empty;
                return Publish(StatusCode.InvalidArgument, "volume_capability");
            case "pub-missing-staging":
                publish.StagingTargetPath = string.Empty;
                return Publish(StatusCode.FailedPrecondition, "staging_target_path");
            case "pub-staging-relative":
                publish.StagingTargetPath = "plugins/x/globalmount";
                return Publish(StatusCode.InvalidArgument, "staging_target_path");
            case "pub-staging-control-char":
                publish.StagingTargetPath = _node.GoodStaging + "\u0007";
                return Publish(StatusCode.InvalidArgument, "staging_target_path");
            case "pub-block":
                publish.VolumeCapability.Block = new VolumeCapability.Types.BlockVolume();
                return Publish(StatusCode.InvalidArgument, "volume_capability.block");
            case "pub-unknown-mode":
                publish.VolumeCapability.AccessMode.Mode = (Mode)42;
                return Publish(StatusCode.InvalidArgument, "volume_capability.access_mode.mode");
            case "pub-ephemeral-no-staging":
                publish.StagingTargetPath = string.Empty;
                publish.VolumeContext[VolumeContext.Ephemeral] = "true";
                return Publish(StatusCode.InvalidArgument, "volume_context[csi.storage.k8s.io/ephemeral]");
            case "pub-ephemeral-yes":
                publish.VolumeContext[VolumeContext.Ephemeral] = "yes";
                return Publish(StatusCode.InvalidArgument, "volume_context[csi.storage.k8s.io/ephemeral]");
            case "pub-pod-name-newline":
                publish.VolumeContext[VolumeContext.PodName] = "hc-pod\nInjected: yes";
                return Publish(StatusCode.InvalidArgument, "volume_context[csi.storage.k8s.io/pod.name]");
            case "pub-pod-uid-nul":
                publish.VolumeContext[VolumeContext.PodUid] = "hc-pod-2\0";
                return Publish(StatusCode.InvalidArgument, "volume_context[csi.storage.k8s.io/pod.uid]");
            case "pub-unknown-volume":
                publish.VolumeId = "hc-never-staged";
                return Publish(StatusCode.NotFound, "volume_id");
            case "pub-bad-volume-id":
                publish.VolumeId = "hc good";
                return Publish(StatusCode.InvalidArgument, "volume_id");
            case "pub-secret-newline":
                publish.Secrets.Add(Secrets());
                publish.Secrets[SecretKeys.SecretAccessKey] = Planted + "\n";
                return Publish(StatusCode.InvalidArgument, "secrets[secretAccessKey]");
            case "pub-secret-one-key":
                publish.Secrets[SecretKeys.AccessKeyId] = S3.AccessKey;
                return Publish(StatusCode.InvalidArgument, "secrets[secretAccessKey]");

            // ---- NodeUnpublishVolume
            case "unpub-traversal":
                unpublish.TargetPath = _node.GoodTarget + "/../../../../../../etc";
                return Unpublish(StatusCode.InvalidArgument, "target_path");
            case "unpub-relative":
                unpublish.TargetPath = "pods/hc-pod/mount";
                return Unpublish(StatusCode.InvalidArgument, "target_path");
            case "unpub-outside-root":
                unpublish.TargetPath = "/etc";
                return Unpublish(StatusCode.PermissionDenied, "target_path");
            case "unpub-empty":
                unpublish.TargetPath = string.Empty;
                return Unpublish(StatusCode.InvalidArgument, "target_path");
            case "unpub-control-char":
                unpublish.TargetPath = _node.GoodTarget + "\r";
                return Unpublish(StatusCode.InvalidArgument, "target_path");
            case "unpub-bad-volume-id":
                unpublish.VolumeId = "hc\tgood";
                return Unpublish(StatusCode.InvalidArgument, "volume_id");
            case "unpub-symlink-parent-escape":
                unpublish.TargetPath = Path.Combine(_node.EscapeLink, "mount");
                return Unpublish(StatusCode.PermissionDenied, "target_path");
            case "unpub-proc-1-root-etc":
                unpublish.TargetPath = "/proc/1/root/etc";
                return Unpublish(StatusCode.PermissionDenied, "target_path");

            // ---- NodeUnstageVolume
            case "unstage-traversal":
                unstage.StagingTargetPath = root + "/plugins/../../../etc";
                return Unstage(StatusCode.InvalidArgument, "staging_target_path");
            case "unstage-relative":
                unstage.StagingTargetPath = "plugins/x/globalmount";
                return Unstage(StatusCode.InvalidArgument, "staging_target_path");
            case "unstage-empty":
                unstage.StagingTargetPath = string.Empty;
                return Unstage(StatusCode.InvalidArgument, "staging_target_path");
            case "unstage-control-char":
                unstage.StagingTargetPath = Layout.StagingPath(NewId) + "\n";
                return Unstage(StatusCode.InvalidArgument, "staging_target_path");
            case "unstage-outside-root":
                unstage.StagingTargetPath = "/etc";
                return Unstage(StatusCode.PermissionDenied, "staging_target_path");
            case "unstage-bad-volume-id":
                unstage.VolumeId = new string('u', 300);
                return Unstage(StatusCode.InvalidArgument, "volume_id");
            case "unstage-symlink-parent-escape":
                unstage.StagingTargetPath = Path.Combine(_node.EscapeLink, "globalmount");
                return Unstage(StatusCode.PermissionDenied, "staging_target_path");

            // ---- NodeGetVolumeStats
            case "stats-empty-path":
                stats.VolumePath = string.Empty;
                return Stats(StatusCode.InvalidArgument, "volume_path");
            case "stats-empty-id":
                stats.VolumeId = string.Empty;
                return Stats(StatusCode.InvalidArgument, "volume_id");
            case "stats-bad-id":
                stats.VolumeId = "hc\ngood";
                return Stats(StatusCode.InvalidArgument, "volume_id");
            case "stats-unknown-volume":
                stats.VolumeId = "hc-unknown";
                return Stats(StatusCode.NotFound, "volume_id");
            case "stats-known-relative-path":
                stats.VolumePath = "plugins/globalmount";
                return Stats(StatusCode.NotFound, "volume_path");
            case "stats-known-control-path":
                stats.VolumePath = _node.GoodStaging + "\n\0";
                return Stats(StatusCode.NotFound, "volume_path");
            case "stats-known-traversal":
                stats.VolumePath = _node.GoodStaging + "/../../../../etc";
                return Stats(StatusCode.NotFound, "volume_path");
            case "stats-known-outside":
                stats.VolumePath = "/etc";
                return Stats(StatusCode.NotFound, "volume_path");
            case "stats-known-oversize":
                stats.VolumePath = root + "/" + new string('s', 5000);
                return Stats(StatusCode.NotFound, "volume_path");

            // ---- Controller
            case "create-empty-name":
                create.Name = string.Empty;
                return Create(StatusCode.InvalidArgument, "name");
            case "create-name-control":
                create.Name = "pvc-\u0001x";
                return Create(StatusCode.InvalidArgument, "name");
            case "create-name-oversize":
                create.Name = new string('n', 200);
                return Create(StatusCode.InvalidArgument, "name");
            case "create-no-capabilities":
                create.VolumeCapabilities.Clear();
                return Create(StatusCode.InvalidArgument, "volume_capabilities");
            case "create-block":
                create.VolumeCapabilities[0].Block = new VolumeCapability.Types.BlockVolume();
                return Create(StatusCode.InvalidArgument, "volume_capabilities[0].block");
            case "create-unknown-mode":
                create.VolumeCapabilities[0].AccessMode.Mode = (Mode)77;
                return Create(StatusCode.InvalidArgument, "volume_capabilities[0].access_mode.mode");
            case "create-negative-capacity":
                create.CapacityRange = new CapacityRange { RequiredBytes = -1 };
                return Create(StatusCode.InvalidArgument, "capacity_range.required_bytes");
            case "create-content-source":
                create.VolumeContentSource = new VolumeContentSource { Volume = new VolumeContentSource.Types.VolumeSource { VolumeId = "other" } };
                return Create(StatusCode.InvalidArgument, "volume_content_source");
            case "create-missing-endpoint":
                create.Parameters.Remove("endpoint");
                return Create(StatusCode.InvalidArgument, "parameters[endpoint]");
            case "create-endpoint-userinfo":
                create.Parameters["endpoint"] = $"http://AK:{Planted}@{new Uri(S3.Endpoint).Authority}";
                return Create(StatusCode.InvalidArgument, "parameters[endpoint]");
            case "create-unknown-parameter":
                create.Parameters["passwd_file"] = "/etc/shadow";
                return Create(StatusCode.InvalidArgument, "parameters[passwd_file]");
            case "create-options-injection":
                create.Parameters["options"] = "uid=0,passwd_file=/etc/shadow";
                return Create(StatusCode.InvalidArgument, "parameters[options].passwd_file");
            case "create-missing-secrets":
                create.Secrets.Clear();
                return Create(StatusCode.InvalidArgument, "secrets");
            case "create-secret-newline":
                create.Secrets[SecretKeys.SecretAccessKey] = Planted + "\n";
                return Create(StatusCode.InvalidArgument, "secrets[secretAccessKey]");
            case "create-session-token-alone":
                create.Secrets.Clear();
                create.Secrets[SecretKeys.SessionToken] = Planted;
                return Create(StatusCode.InvalidArgument, "secrets[sessionToken]");
            case "delete-empty-id":
                return new(() => controller.DeleteVolumeAsync(new DeleteVolumeRequest { Secrets = { Secrets() } }).ResponseAsync, StatusCode.InvalidArgument, "volume_id", []);
            case "delete-ours-missing-secrets":
                return new(() => controller.DeleteVolumeAsync(new DeleteVolumeRequest { VolumeId = OurVolumeId() }).ResponseAsync, StatusCode.InvalidArgument, "secrets", []);
            case "delete-secret-newline":
            {
                var delete = new DeleteVolumeRequest { VolumeId = OurVolumeId(), Secrets = { Secrets() } };
                delete.Secrets[SecretKeys.SecretAccessKey] = Planted + "\n";
                return new(() => controller.DeleteVolumeAsync(delete).ResponseAsync, StatusCode.InvalidArgument, "secrets[secretAccessKey]", []);
            }
            case "validate-empty-id":
                return new(() => controller.ValidateVolumeCapabilitiesAsync(new ValidateVolumeCapabilitiesRequest { VolumeCapabilities = { Capability() } }).ResponseAsync,
                    StatusCode.InvalidArgument, "volume_id", []);
            case "validate-no-capabilities":
                return new(() => controller.ValidateVolumeCapabilitiesAsync(new ValidateVolumeCapabilitiesRequest { VolumeId = OurVolumeId() }).ResponseAsync,
                    StatusCode.InvalidArgument, "volume_capabilities", []);
            case "validate-unknown-id":
                return new(() => controller.ValidateVolumeCapabilitiesAsync(new ValidateVolumeCapabilitiesRequest { VolumeId = "not-one-of-ours", VolumeCapabilities = { Capability() } }).ResponseAsync,
                    StatusCode.NotFound, "volume_id", []);
            case "validate-control-id":
                return new(() => controller.ValidateVolumeCapabilitiesAsync(new ValidateVolumeCapabilitiesRequest { VolumeId = "bkt\n@http:x", VolumeCapabilities = { Capability() } }).ResponseAsync,
                    StatusCode.NotFound, "volume_id", []);
            default:
                throw new ArgumentOutOfRangeException(nameof(name), name, null);
        }
    }

    private static VolumeCapability Capability() => new()
    {
        Mount = new VolumeCapability.Types.MountVolume(),
        AccessMode = new VolumeCapability.Types.AccessMode { Mode = Mode.MultiNodeMultiWriter },
    };

    private Dictionary<string, string> Secrets() => new()
    {
        [SecretKeys.AccessKeyId] = S3.AccessKey,
        [SecretKeys.SecretAccessKey] = S3.SecretKey,
    };

    /// <summary>An id in this driver's handle format (bucket@scheme:authority) that was never created.</summary>
    private string OurVolumeId() => $"hc-never-created@http:{new Uri(S3.Endpoint).Authority}";

    private NodeStageVolumeRequest StageRequest() => new()
    {
        VolumeId = NewId,
        StagingTargetPath = Layout.StagingPath(NewId),
        VolumeCapability = Capability(),
        Secrets = { Secrets() },
        VolumeContext = { _node.Context() },
    };

    private NodePublishVolumeRequest PublishRequest() => new()
    {
        VolumeId = HostileNode.GoodId,
        StagingTargetPath = _node.GoodStaging,
        TargetPath = Layout.TargetPath("hc-pod-2", "pv-hc"),
        VolumeCapability = Capability(),
        VolumeContext =
        {
            _node.Context(),
            new Dictionary<string, string>
            {
                [VolumeContext.PodUid] = "hc-pod-2",
                [VolumeContext.PodName] = "hc-pod-2",
                [VolumeContext.PodNamespace] = "default",
                [VolumeContext.Ephemeral] = "false",
            },
        },
    };

    private CreateVolumeRequest CreateRequest() => new()
    {
        Name = "pvc-hostile-" + Guid.NewGuid().ToString("N")[..8],
        CapacityRange = new CapacityRange { RequiredBytes = 1 << 30 },
        VolumeCapabilities = { Capability() },
        Parameters = { ["endpoint"] = S3.Endpoint, ["region"] = S3.Region },
        Secrets = { Secrets() },
    };

    /// <summary>
    /// One supervisor and one plugin for every hostile case, with one volume staged and published
    /// (the "known volume" of the stats and publish cases), a directory outside the allowed root and
    /// symlinks from inside the root out of it (to a directory, dangling, in a loop).
    /// </summary>
    public sealed class HostileNode : IAsyncLifetime
    {
        public const string GoodId = "hc-good";
        private readonly SemaphoreSlim _gate = new(1, 1);
        private RgwServer? _s3;

        public SupervisorLayout Layout { get; } = new(Directory.CreateTempSubdirectory("s3sv-hc-").FullName);

        /// <summary>Outside every allowed root; nothing may ever appear in it.</summary>
        public string Outside { get; } = Directory.CreateTempSubdirectory("s3sv-hc-out-").FullName;

        public string Bucket { get; } = "hc-" + Guid.NewGuid().ToString("N")[..16];

        public SupervisorProcess? Supervisor { get; private set; }

        public PluginProcess? Plugin { get; private set; }

        public string GoodStaging => Layout.StagingPath(GoodId);

        public string GoodTarget => Layout.TargetPath("hc-pod", "pv-hc");

        /// <summary>kubelet/pods/escape-link → <see cref="Outside"/>.</summary>
        public string EscapeLink => Path.Combine(Layout.KubeletRoot, "pods", "escape-link");

        /// <summary>kubelet/pods/dangling-link → <see cref="DanglingTarget"/> (outside, missing).</summary>
        public string DanglingLink => Path.Combine(Layout.KubeletRoot, "pods", "dangling-link");

        public string DanglingTarget => Path.Combine(Outside, "missing");

        /// <summary>kubelet/pods/loop-a → loop-b → loop-a.</summary>
        public string LoopLink => Path.Combine(Layout.KubeletRoot, "pods", "loop-a");

        public Dictionary<string, string> Context() => new()
        {
            [VolumeContext.Bucket] = Bucket,
            [VolumeContext.Prefix] = "hostile",
            [VolumeContext.Endpoint] = _s3!.Endpoint,
            [VolumeContext.Region] = _s3.Region,
        };

        public async Task EnsureStartedAsync(RgwFixture rgw)
        {
            await _gate.WaitAsync();
            try
            {
                if (Plugin is not null)
                {
                    return;
                }
                _s3 = rgw.Server!;
                await _s3.CreateBucketAsync(Bucket);
                Supervisor = await SupervisorProcess.StartAsync(Layout);
                Plugin = await PluginProcess.StartAsync(Path.Combine(Layout.Root, "csi", "csi.sock"), Layout.SocketPath, PluginTestBase.NodeName);

                Directory.CreateDirectory(Path.Combine(Layout.KubeletRoot, "pods"));
                File.CreateSymbolicLink(EscapeLink, Outside);
                File.CreateSymbolicLink(DanglingLink, DanglingTarget);
                File.CreateSymbolicLink(LoopLink, Path.Combine(Layout.KubeletRoot, "pods", "loop-b"));
                File.CreateSymbolicLink(Path.Combine(Layout.KubeletRoot, "pods", "loop-b"), LoopLink);

                var secrets = new Dictionary<string, string> { [SecretKeys.AccessKeyId] = _s3.AccessKey, [SecretKeys.SecretAccessKey] = _s3.SecretKey };
                var capability = new VolumeCapability
                {
                    Mount = new VolumeCapability.Types.MountVolume(),
                    AccessMode = new VolumeCapability.Types.AccessMode { Mode = Mode.MultiNodeMultiWriter },
                };
                await Plugin.Node.NodeStageVolumeAsync(new NodeStageVolumeRequest
                {
                    VolumeId = GoodId, StagingTargetPath = GoodStaging, VolumeCapability = capability, Secrets = { secrets }, VolumeContext = { Context() },
                });
                await Plugin.Node.NodePublishVolumeAsync(new NodePublishVolumeRequest
                {
                    VolumeId = GoodId, StagingTargetPath = GoodStaging, TargetPath = GoodTarget, VolumeCapability = capability.Clone(),
                    VolumeContext = { Context(), new Dictionary<string, string> { [VolumeContext.PodUid] = "hc-pod", [VolumeContext.PodName] = "hc-pod", [VolumeContext.PodNamespace] = "default" } },
                });
            }
            finally
            {
                _gate.Release();
            }
        }

        public Task InitializeAsync() => Task.CompletedTask;

        public async Task DisposeAsync()
        {
            if (Plugin is not null)
            {
                await Plugin.DisposeAsync();
            }
            if (Supervisor is not null)
            {
                await Supervisor.DisposeAsync();
            }
            await SupervisorProcess.CleanUpAsync(Layout);
            Directory.Delete(Outside, recursive: true);
        }
    }
}

using Csi.V1;
using Grpc.Core;
using Microsoft.Extensions.Options;
using S3Supervisor.Common;
using S3Supervisor.Plugin.Csi;
using S3Supervisor.Plugin.Hosting;
using Mode = Csi.V1.VolumeCapability.Types.AccessMode.Types.Mode;

namespace S3Supervisor.Plugin.Tests;

/// <summary>Valid requests to start from; each test breaks exactly the part it is about.</summary>
public static class TestData
{
    public const string VolumeId = "vol-1";
    public const string StagingPath = "/var/lib/kubelet/plugins/kubernetes.io/csi/s3.csi.s3supervisor.io/abc/globalmount";
    public const string TargetPath = "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/pv-1/mount";
    public const string AccessKey = "AKIAEXAMPLE";
    public const string SecretKey = "s3cr3t/Value+With=Signs";

    public static IOptions<CsiOptions> Options(string mode = PluginModes.All, string nodeId = "node-a", string socket = "/run/s3supervisor/supervisor.sock") =>
        Microsoft.Extensions.Options.Options.Create(new CsiOptions { Mode = mode, NodeId = nodeId, SupervisorSocket = socket });

    public static VolumeCapability Mount(Mode mode = Mode.SingleNodeWriter, params string[] flags) => new()
    {
        Mount = new VolumeCapability.Types.MountVolume { MountFlags = { flags } },
        AccessMode = new VolumeCapability.Types.AccessMode { Mode = mode },
    };

    public static VolumeCapability Block(Mode mode = Mode.SingleNodeWriter) => new()
    {
        Block = new VolumeCapability.Types.BlockVolume(),
        AccessMode = new VolumeCapability.Types.AccessMode { Mode = mode },
    };

    public static Dictionary<string, string> Secrets() => new()
    {
        [SecretKeys.AccessKeyId] = AccessKey,
        [SecretKeys.SecretAccessKey] = SecretKey,
    };

    public static NodeStageVolumeRequest Stage() => new()
    {
        VolumeId = VolumeId,
        StagingTargetPath = StagingPath,
        VolumeCapability = Mount(),
        Secrets = { Secrets() },
        VolumeContext =
        {
            ["bucket"] = "data-bucket",
            ["prefix"] = "team/a",
            ["endpoint"] = "https://s3.example.com",
            ["region"] = "eu-1",
            ["options"] = "uid=1000,gid=1000",
        },
    };

    public static NodePublishVolumeRequest Publish() => new()
    {
        VolumeId = VolumeId,
        StagingTargetPath = StagingPath,
        TargetPath = TargetPath,
        VolumeCapability = Mount(),
        VolumeContext =
        {
            ["bucket"] = "data-bucket",
            ["endpoint"] = "https://s3.example.com",
            ["csi.storage.k8s.io/pod.name"] = "app-0",
            ["csi.storage.k8s.io/pod.namespace"] = "apps",
            ["csi.storage.k8s.io/pod.uid"] = "uid-1",
        },
    };

    public static CreateVolumeRequest Create(string name = "pvc-0a1b2c3d-0000-4000-8000-000000000001", long requiredBytes = 1 << 30) => new()
    {
        Name = name,
        CapacityRange = new CapacityRange { RequiredBytes = requiredBytes },
        VolumeCapabilities = { Mount(Mode.MultiNodeMultiWriter) },
        Parameters = { ["endpoint"] = "http://127.0.0.1:7480", ["region"] = "eu-1" },
        Secrets = { Secrets() },
    };

    public static async Task<RpcException> Fails(StatusCode code, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(code, e.StatusCode);
        return e;
    }
}

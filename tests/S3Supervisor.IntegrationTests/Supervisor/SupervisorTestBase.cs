using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;

namespace S3Supervisor.IntegrationTests.Supervisor;

/// <summary>A fresh supervisor per test on a throwaway kubelet root, against the collection's RGW; the supervisor API called directly.</summary>
public abstract class SupervisorTestBase : NodeTestBase
{
    protected SupervisorTestBase(RgwFixture rgw)
        : base(rgw, "it")
    {
    }

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await StartSupervisorAsync();
    }

    protected VolumeSource Source(string? prefix = null, string? bucket = null) => new()
    {
        Bucket = bucket ?? Bucket,
        Prefix = prefix ?? string.Empty,
        Endpoint = S3.Endpoint,
        Region = S3.Region,
        Options = new MountOptions { StatCacheExpireSeconds = 1 },
    };

    protected Credentials Credentials(string? secret = null) => new()
    {
        AccessKeyId = S3.AccessKey,
        SecretAccessKey = secret ?? S3.SecretKey,
    };

    protected async Task<Volume> StageAsync(string volumeId, string? prefix = null)
    {
        var response = await Supervisor.Client.StageVolumeAsync(new StageVolumeRequest
        {
            VolumeId = volumeId,
            StagingPath = Layout.StagingPath(volumeId),
            Source = Source(prefix),
            Credentials = Credentials(),
        });
        return response.Volume;
    }

    protected async Task<string> PublishAsync(string volumeId, string podUid, bool readOnly = false)
    {
        var target = Layout.TargetPath(podUid, "pv-" + volumeId);
        await Supervisor.Client.PublishVolumeAsync(new PublishVolumeRequest
        {
            VolumeId = volumeId,
            TargetPath = target,
            ReadOnly = readOnly,
            Pod = new PodRef { Uid = podUid, Name = "pod-" + podUid, Namespace = "default" },
        });
        return target;
    }
}

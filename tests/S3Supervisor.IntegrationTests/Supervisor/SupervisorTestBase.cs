using System.Diagnostics;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.IntegrationTests.Supervisor;

/// <summary>A fresh supervisor per test on a throwaway kubelet root, against the collection's RGW.</summary>
public abstract class SupervisorTestBase : IAsyncLifetime
{
    private readonly List<SupervisorProcess> _supervisors = [];

    protected SupervisorTestBase(RgwFixture rgw)
    {
        Rgw = rgw;
    }

    protected RgwFixture Rgw { get; }

    protected RgwServer S3 => Rgw.Server!;

    protected SupervisorLayout Layout { get; } = new(Directory.CreateTempSubdirectory("s3sv-it-").FullName);

    protected SupervisorProcess Supervisor => _supervisors[^1];

    protected string Bucket { get; } = "it-" + Guid.NewGuid().ToString("N")[..16];

    public virtual async Task InitializeAsync()
    {
        Rgw.SkipIfUnavailable();
        await S3.CreateBucketAsync(Bucket);
        await StartSupervisorAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var supervisor in _supervisors)
        {
            await supervisor.DisposeAsync();
        }
        SupervisorProcess.CleanUp(Layout);
    }

    protected async Task<SupervisorProcess> StartSupervisorAsync(IDictionary<string, string>? settings = null)
    {
        var supervisor = await SupervisorProcess.StartAsync(Layout, settings);
        _supervisors.Add(supervisor);
        return supervisor;
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

    protected static IReadOnlyList<string> MountsUnder(string root) => MountTable.Under(root).Select(m => m.MountPoint).ToArray();

    /// <summary>Retries a file operation for a short while (a re-made bind takes a moment to show in a fresh lookup).</summary>
    protected static async Task<T> EventuallyAsync<T>(Func<T> action, TimeSpan timeout)
    {
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return action();
            }
            catch (IOException) when (stopwatch.Elapsed < timeout)
            {
                await Task.Delay(50);
            }
        }
    }
}

using System.Diagnostics;
using Grpc.Core;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.IntegrationTests;

/// <summary>
/// What every test with a real supervisor shares: a throwaway kubelet root, a bucket of its own on
/// the collection's RGW, the supervisors it started (stopped and their mounts cleaned up on dispose),
/// the mount table under a directory and short retries while a re-made mount shows up.
/// </summary>
public abstract class NodeTestBase : IAsyncLifetime
{
    private readonly List<SupervisorProcess> _supervisors = [];

    /// <param name="prefix">Names this kind of test in the layout directory (s3sv-PREFIX-...) and the bucket (PREFIX-...).</param>
    protected NodeTestBase(RgwFixture rgw, string prefix)
    {
        Rgw = rgw;
        Layout = new(Directory.CreateTempSubdirectory($"s3sv-{prefix}-").FullName);
        Bucket = prefix + "-" + Guid.NewGuid().ToString("N")[..16];
    }

    protected RgwFixture Rgw { get; }

    protected RgwServer S3 => Rgw.Server!;

    protected SupervisorLayout Layout { get; }

    /// <summary>The supervisor started last.</summary>
    protected SupervisorProcess Supervisor => _supervisors[^1];

    /// <summary>A bucket of this test, created in <see cref="InitializeAsync"/>.</summary>
    protected string Bucket { get; }

    /// <summary>Supervisor settings (environment) used when a start names none.</summary>
    protected virtual IDictionary<string, string>? SupervisorSettings => null;

    /// <summary>Skips without RGW; creates the bucket. Derived classes start what they need after it.</summary>
    public virtual async Task InitializeAsync()
    {
        Rgw.SkipIfUnavailable();
        await S3.CreateBucketAsync(Bucket);
    }

    /// <summary>Stops every supervisor (one that fails to stop does not keep the others running) and always cleans up the layout.</summary>
    public virtual async Task DisposeAsync()
    {
        var failures = new List<Exception>();
        try
        {
            foreach (var supervisor in _supervisors)
            {
                try
                {
                    await supervisor.DisposeAsync();
                }
                catch (Exception e)
                {
                    failures.Add(e);
                }
            }
        }
        finally
        {
            await SupervisorProcess.CleanUpAsync(Layout);
        }
        if (failures.Count > 0)
        {
            throw new AggregateException("stopping the test's supervisors failed", failures);
        }
    }

    /// <summary>Start every supervisor in a stand-in container's cgroup of its own (see <see cref="SupervisorProcess.KillCgroupLikeARuntimeAsync"/>).</summary>
    protected virtual bool SupervisorInOwnCgroup => false;

    protected async Task<SupervisorProcess> StartSupervisorAsync(IDictionary<string, string>? settings = null)
    {
        var supervisor = await SupervisorProcess.StartAsync(Layout, settings ?? SupervisorSettings, ownCgroup: SupervisorInOwnCgroup);
        _supervisors.Add(supervisor);
        return supervisor;
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

    /// <summary>Retries a call until it stops throwing (a re-made mount takes a moment to show in a fresh lookup, through a plugin or a container).</summary>
    protected static async Task<T> EventuallyAsync<T>(Func<Task<T>> action, TimeSpan? timeout = null)
    {
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await action();
            }
            catch (Exception e) when (e is IOException or RpcException or ContainerExecException && stopwatch.Elapsed < (timeout ?? TimeSpan.FromSeconds(15)))
            {
                await Task.Delay(100);
            }
        }
    }
}

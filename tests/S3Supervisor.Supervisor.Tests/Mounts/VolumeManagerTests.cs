using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using S3Supervisor.Api.V1;
using S3Supervisor.Supervisor.Api;
using S3Supervisor.Supervisor.Mounts;
using S3Supervisor.TestKit;

namespace S3Supervisor.Supervisor.Tests.Mounts;

public sealed class VolumeManagerTests : IAsyncLifetime
{
    private const string Staging = "/k/plugins/x/globalmount";
    private readonly FakeMounter _mounter = new();
    private readonly FakeLauncher _launcher;
    private readonly TimerRecordingTimeProvider _time = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("s3sv-vm-").FullName;
    private readonly VolumeManager _manager;
    private readonly Dictionary<TimeSpan, int> _timersAwaited = [];

    public VolumeManagerTests()
    {
        _launcher = new FakeLauncher(_mounter);
        _manager = new VolumeManager(
            _launcher,
            _mounter,
            new CredentialStore(Path.Combine(_dir, "secrets")),
            new Journal(Path.Combine(_dir, "state")),
            new VolumeEventHub(),
            new NullRecoveryObserver(),
            _time,
            new VolumeManagerSettings(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(1), Path.Combine(_dir, "cache"), Path.Combine(_dir, "mounts"), Path.Combine(_dir, "state")),
            NullLogger<VolumeManager>.Instance,
            accessCheck: new AllowingAccessCheck());
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _manager.DisposeAsync();
        Directory.Delete(_dir, true);
    }

    [Fact]
    public async Task Stage_ChildFailsToStart_NothingLeftBehind()
    {
        _launcher.FailNext = 1;
        var error = VolumeErrorMapping.ToRpc(await Assert.ThrowsAsync<VolumeException>(() => StageAsync("v1")));
        Assert.Equal(StatusCode.Internal, error.StatusCode);
        Assert.Contains("could not connect", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(_manager.List());
        Assert.Null(_mounter.FindMount(Staging));
        Assert.False(Directory.Exists(Path.Combine(_dir, "secrets", "v1")));
    }

    [Fact]
    public async Task ChildExits_HealsAndRebindsEveryTarget()
    {
        await StageAsync("v1");
        await _manager.PublishAsync("v1", "/k/pods/a/mount", false, null, CancellationToken.None);
        await _manager.PublishAsync("v1", "/k/pods/b/mount", true, null, CancellationToken.None);
        var first = _launcher.Started[0];
        _mounter.KillConnection(Staging);

        first.Exit(137);

        var healed = await WaitAsync(v => v.RestartCount == 1 && v.State == VolumeState.Ready);
        Assert.Equal(2, _launcher.Started.Count);
        Assert.Equal(healed.Device, _mounter.FindMount("/k/pods/a/mount")!.Device);
        Assert.True(_mounter.FindMount("/k/pods/b/mount")!.ReadOnly);
        Assert.Equal(0, _mounter.Stat("/k/pods/a/mount"));
    }

    [Fact]
    public async Task RepeatedFailures_BackOffExponentially()
    {
        await StageAsync("v1");
        _launcher.FailNext = 3;
        _launcher.Started[0].Exit(1);

        await WaitAsync(v => v.State == VolumeState.Failed);
        Assert.Equal(2, _launcher.Started.Count);
        // Each "not yet" below is asserted once the manager waits on its backoff timer: that timer is
        // then not due, so nothing can have started, however slow the machine.
        await WaitForTimerAsync(TimeSpan.FromSeconds(1));
        _time.Advance(TimeSpan.FromMilliseconds(900));
        Assert.Equal(2, _launcher.Started.Count);
        _time.Advance(TimeSpan.FromMilliseconds(200));
        await WaitForStartsAsync(3);
        await WaitForTimerAsync(TimeSpan.FromSeconds(2));
        _time.Advance(TimeSpan.FromSeconds(1.5));
        Assert.Equal(3, _launcher.Started.Count);
        _time.Advance(TimeSpan.FromSeconds(0.6));
        await WaitForStartsAsync(4);
        _time.Advance(TimeSpan.FromSeconds(4));
        var healed = await WaitAsync(v => v.State == VolumeState.Ready);
        Assert.Equal(5, _launcher.Started.Count);
        Assert.Equal(1, healed.RestartCount);
    }

    [Fact]
    public async Task HealFailing_TargetsKeepTheDeadMount_NeverAnEmptyDirectory()
    {
        await StageAsync("v1");
        await _manager.PublishAsync("v1", "/k/pods/a/mount", false, null, CancellationToken.None);
        var dead = _mounter.FindMount("/k/pods/a/mount")!.Device;
        _mounter.KillConnection(Staging);
        _launcher.FailNext = 1;

        _launcher.Started[0].Exit(137);

        await WaitAsync(v => v.State == VolumeState.Failed);
        // The pod's target still holds the dead connection (ENOTCONN), not the node's disk.
        Assert.Equal(dead, _mounter.FindMount("/k/pods/a/mount")?.Device);
        Assert.Null(_mounter.FindMount(Staging));
        await WaitForTimerAsync(TimeSpan.FromSeconds(1));
        _time.Advance(TimeSpan.FromSeconds(1));
        var healed = await WaitAsync(v => v.State == VolumeState.Ready);
        Assert.Equal(healed.Device, _mounter.FindMount("/k/pods/a/mount")!.Device);
        Assert.NotEqual(dead, healed.Device);
    }

    [Fact]
    public async Task HealthCheck_EnotconnWithoutExit_Heals()
    {
        await StageAsync("v1");
        _mounter.KillConnection(Staging);

        await _manager.CheckHealthAsync(CancellationToken.None);

        await WaitAsync(v => v.RestartCount == 1 && v.State == VolumeState.Ready);
        Assert.True(_launcher.Started[0].Terminated);
    }

    [Fact]
    public async Task OneSickVolume_DoesNotHoldUpAnother()
    {
        await StageAsync("sick", "/k/a/globalmount");
        _launcher.FailNext = 100;
        _launcher.Started[0].Exit(1);
        await WaitAsync(v => v.State == VolumeState.Failed, "sick");
        _launcher.FailNext = 0;
        _launcher.FailNext = 0;

        // The sick volume sits in backoff; another volume stages and publishes at once.
        var healthy = await _manager.StageAsync("healthy", "/k/b/globalmount", Source(), Creds(), CancellationToken.None);
        Assert.Equal(VolumeState.Ready, healthy.State);
        await _manager.PublishAsync("healthy", "/k/pods/h/mount", false, null, CancellationToken.None);
    }

    [Fact]
    public async Task Publish_SameTargetDifferentMode_AlreadyExists_SameModeIdempotent()
    {
        await StageAsync("v1");
        await _manager.PublishAsync("v1", "/k/pods/a/mount", false, null, CancellationToken.None);
        await _manager.PublishAsync("v1", "/k/pods/a/mount", false, null, CancellationToken.None);
        var error = VolumeErrorMapping.ToRpc(await Assert.ThrowsAsync<VolumeException>(() => _manager.PublishAsync("v1", "/k/pods/a/mount", true, null, CancellationToken.None)));
        Assert.Equal(StatusCode.AlreadyExists, error.StatusCode);
        // One bind of the target (the staging path itself is a bind of s3fs's private mount).
        Assert.Single(_mounter.Log, l => l.StartsWith("bind", StringComparison.Ordinal) && l.EndsWith("/k/pods/a/mount rw", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Publish_WithRotatedKeys_ReplacesStoredCredentialsForTheNextStart()
    {
        await StageAsync("v1");
        var passwd = Path.Combine(_dir, "secrets", "v1", "passwd");
        Assert.Equal("AKID:SECRET-VALUE\n", await File.ReadAllTextAsync(passwd));

        await _manager.PublishAsync("v1", "/k/pods/a/mount", false, null, CancellationToken.None, new Credentials { AccessKeyId = "AKID2", SecretAccessKey = "NEW-SECRET" });

        Assert.Equal("AKID2:NEW-SECRET\n", await File.ReadAllTextAsync(passwd));
        Assert.Single(_launcher.Started);
    }

    [Fact]
    public async Task Journal_RecordsTargetsWithoutSecrets()
    {
        await StageAsync("v1");
        await _manager.PublishAsync("v1", "/k/pods/a/mount", true, new PodRef { Name = "p", Namespace = "ns", Uid = "u" }, CancellationToken.None);
        var journal = new Journal(Path.Combine(_dir, "state"));
        var record = Assert.Single(journal.Load());
        Assert.Equal("v1", record.VolumeId);
        Assert.Equal("/k/pods/a/mount", Assert.Single(record.Targets).TargetPath);
        Assert.DoesNotContain("SECRET-VALUE", await File.ReadAllTextAsync(journal.FilePath), StringComparison.Ordinal);
    }

    private Task<Volume> StageAsync(string id, string staging = Staging) =>
        _manager.StageAsync(id, staging, Source(), Creds(), CancellationToken.None);

    private static VolumeSource Source() => new() { Bucket = "data", Endpoint = "http://127.0.0.1:1", Options = new MountOptions() };

    private static Credentials Creds() => new() { AccessKeyId = "AKID", SecretAccessKey = "SECRET-VALUE" };

    private async Task<Volume> WaitAsync(Func<Volume, bool> condition, string id = "v1")
    {
        await Eventually.WaitAsync(() => condition(_manager.Get(id)), Eventually.DefaultTimeout, $"volume {id} in the expected state", () => _manager.Get(id).ToString());
        return _manager.Get(id);
    }

    private async Task WaitForStartsAsync(int count)
    {
        await Eventually.WaitAsync(() => _launcher.Started.Count >= count, Eventually.DefaultTimeout, $"{count} s3fs starts", () => $"{_launcher.Started.Count} starts");
        Assert.Equal(count, _launcher.Started.Count);
    }

    /// <summary>Waits until a timer of <paramref name="dueTime"/> has been armed (a backoff the manager now waits on), once more than before each call.</summary>
    private Task WaitForTimerAsync(TimeSpan dueTime)
    {
        var seen = _timersAwaited[dueTime] = _timersAwaited.GetValueOrDefault(dueTime) + 1;
        return Eventually.WaitAsync(() => _time.Armed.Count(t => t == dueTime) >= seen, Eventually.DefaultTimeout, $"timer #{seen} of {dueTime.TotalSeconds} s armed", () => string.Join(", ", _time.Armed));
    }
}

using System.Globalization;
using Grpc.Core;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.IntegrationTests.Supervisor;

[Collection(RgwFixture.Collection)]
public sealed class SupervisorMountTests : SupervisorTestBase
{
    public SupervisorMountTests(RgwFixture rgw)
        : base(rgw)
    {
    }

    [SkippableFact]
    public async Task StageAndPublish_WriteThroughTarget_ObjectVisibleInS3()
    {
        var staged = await StageAsync("vol-a", prefix: "team/a");
        Assert.Equal(VolumeState.Ready, staged.State);
        Assert.True(staged.Pid > 0);
        Assert.Matches(@"^\d+:\d+$", staged.Device);

        var target = await PublishAsync("vol-a", "pod-1");
        await File.WriteAllTextAsync(Path.Combine(target, "hello.txt"), "written through the target");

        Assert.Equal("written through the target", await S3.GetObjectTextAsync(Bucket, "team/a/hello.txt"));
        var volume = await Supervisor.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = "vol-a" });
        Assert.Equal(target, Assert.Single(volume.Targets).TargetPath);
    }

    [SkippableFact]
    public async Task PublishReadOnly_Write_FailsWithReadOnlyFileSystem()
    {
        await StageAsync("vol-ro");
        var target = await PublishAsync("vol-ro", "pod-ro", readOnly: true);
        var error = Assert.ThrowsAny<IOException>(() => File.WriteAllText(Path.Combine(target, "x.txt"), "no"));
        Assert.Contains("Read-only", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [SkippableFact]
    public async Task UnpublishAndUnstage_LeaveNoMountChildOrPasswdFile()
    {
        var staged = await StageAsync("vol-b");
        var target = await PublishAsync("vol-b", "pod-2");
        Assert.True(File.Exists(Path.Combine(Layout.SecretsDirectory, "vol-b", "passwd")));

        await Supervisor.Client.UnpublishVolumeAsync(new UnpublishVolumeRequest { VolumeId = "vol-b", TargetPath = target });
        await Supervisor.Client.UnstageVolumeAsync(new UnstageVolumeRequest { VolumeId = "vol-b", StagingPath = staged.StagingPath });

        Assert.Empty(MountsUnder(Layout.KubeletRoot));
        Assert.Empty(Supervisor.Children());
        Assert.False(ProcessTree.Alive(staged.Pid));
        Assert.False(Directory.Exists(Path.Combine(Layout.SecretsDirectory, "vol-b")));
        var error = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = "vol-b" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        // Idempotent: the same calls again succeed.
        await Supervisor.Client.UnpublishVolumeAsync(new UnpublishVolumeRequest { VolumeId = "vol-b", TargetPath = target });
        await Supervisor.Client.UnstageVolumeAsync(new UnstageVolumeRequest { VolumeId = "vol-b", StagingPath = staged.StagingPath });
    }

    [SkippableFact]
    public async Task KillS3fsChild_HealsToReadyAndReadWorksWithoutAnyCall()
    {
        var staged = await StageAsync("vol-c");
        var target = await PublishAsync("vol-c", "pod-3");
        await File.WriteAllTextAsync(Path.Combine(target, "before.txt"), "still here");

        ProcessTree.Signal(staged.Pid, 9);

        var healed = await Supervisor.WaitForStateAsync("vol-c", VolumeState.Ready, TimeSpan.FromSeconds(30), v => v.RestartCount >= 1 && v.Pid != staged.Pid);
        Assert.NotEqual(staged.Pid, healed.Pid);
        var text = await EventuallyAsync(() => File.ReadAllText(Path.Combine(target, "before.txt")), TimeSpan.FromSeconds(10));
        Assert.Equal("still here", text);
        await File.WriteAllTextAsync(Path.Combine(target, "after.txt"), "healed");
        Assert.Equal("healed", await S3.GetObjectTextAsync(Bucket, "after.txt"));
    }

    [SkippableFact]
    public async Task StaleMount_WatchStream_ReportsEachStep()
    {
        var staged = await StageAsync("vol-w");
        // IncludeCurrent: the "Current" event comes after the subscription, so seeing it proves the
        // stream will carry every later step (no sleep-and-hope before the kill).
        using var watch = Supervisor.Client.WatchVolumes(new WatchVolumesRequest { VolumeId = "vol-w", IncludeCurrent = true });
        var reasons = new List<string>();
        var reader = Task.Run(async () =>
        {
            while (await watch.ResponseStream.MoveNext(CancellationToken.None))
            {
                lock (reasons)
                {
                    reasons.Add(watch.ResponseStream.Current.Reason);
                }
                if (watch.ResponseStream.Current.Reason == "Recovered")
                {
                    return;
                }
            }
        });
        await Eventually.WaitAsync(
            () =>
            {
                lock (reasons)
                {
                    return reasons.Contains("Current");
                }
            },
            Eventually.DefaultTimeout,
            "the watch stream's Current event (subscribed)");
        ProcessTree.Signal(staged.Pid, 9);
        await reader.WaitAsync(TimeSpan.FromSeconds(30));
        lock (reasons)
        {
            Assert.Equal(["ChildExited", "Remounting", "Recovered"], reasons.Where(r => r is "ChildExited" or "Remounting" or "Recovered").ToArray());
        }
    }

    [SkippableFact]
    public async Task Stage_WrongCredentials_FailsClearlyAndLeavesNothing()
    {
        var request = new StageVolumeRequest
        {
            VolumeId = "vol-bad",
            StagingPath = Layout.StagingPath("vol-bad"),
            Source = Source(),
            Credentials = Credentials(secret: "definitely-not-the-secret"),
        };

        var error = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.StageVolumeAsync(request).ResponseAsync);

        Assert.True(error.StatusCode == StatusCode.PermissionDenied, error.Status.Detail);
        // S3's own verdict on a signed request, checked before s3fs starts (deterministic: see S3AccessCheck).
        Assert.StartsWith("credentials:", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("SignatureDoesNotMatch", error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("definitely-not-the-secret", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(MountsUnder(Layout.KubeletRoot));
        Assert.Empty(Supervisor.Children());
        Assert.False(Directory.Exists(Path.Combine(Layout.SecretsDirectory, "vol-bad")));
        Assert.Empty((await Supervisor.Client.ListVolumesAsync(new ListVolumesRequest())).Volumes);
        Assert.DoesNotContain("definitely-not-the-secret", Supervisor.Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Stage_MissingBucket_NotFoundAndLeavesNothing()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.StageVolumeAsync(new StageVolumeRequest
        {
            VolumeId = "vol-nobucket",
            StagingPath = Layout.StagingPath("vol-nobucket"),
            Source = Source(bucket: "no-such-bucket-" + Guid.NewGuid().ToString("N")[..8]),
            Credentials = Credentials(),
        }).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Contains("NoSuchBucket", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(MountsUnder(Layout.KubeletRoot));
        Assert.Empty(Supervisor.Children());
    }

    [SkippableFact]
    public async Task Stage_RepeatedIdentical_SucceedsAndDifferentSource_AlreadyExists()
    {
        var first = await StageAsync("vol-d");
        var again = await StageAsync("vol-d");
        Assert.Equal(first.Pid, again.Pid);

        var error = await Assert.ThrowsAsync<RpcException>(() => Supervisor.Client.StageVolumeAsync(new StageVolumeRequest
        {
            VolumeId = "vol-d",
            StagingPath = Layout.StagingPath("vol-d"),
            Source = Source(prefix: "other"),
            Credentials = Credentials(),
        }).ResponseAsync);
        Assert.Equal(StatusCode.AlreadyExists, error.StatusCode);
        Assert.Single(Supervisor.Children());
    }

    [SkippableFact]
    public async Task ConcurrentStage_SameVolume_OneSucceedsOtherAbortedOrSatisfied()
    {
        var calls = Enumerable.Range(0, 4).Select(_ => StageAsync("vol-e")).ToArray();
        var outcomes = new List<StatusCode>();
        foreach (var call in calls)
        {
            try
            {
                await call;
                outcomes.Add(StatusCode.OK);
            }
            catch (RpcException e)
            {
                outcomes.Add(e.StatusCode);
            }
        }
        Assert.Contains(StatusCode.OK, outcomes);
        Assert.All(outcomes, c => Assert.True(c is StatusCode.OK or StatusCode.Aborted, c.ToString()));
        Assert.Single(Supervisor.Children());
    }

    [SkippableFact]
    public async Task Secrets_NeverInArgvEnvironmentOrLog_PasswdFilePrivate()
    {
        var staged = await StageAsync("vol-f");
        var pid = staged.Pid.ToString(CultureInfo.InvariantCulture);
        var argv = (await File.ReadAllTextAsync($"/proc/{pid}/cmdline")).Replace('\0', ' ');
        var environ = (await File.ReadAllTextAsync($"/proc/{pid}/environ")).Replace('\0', ' ');

        Assert.DoesNotContain(S3.SecretKey, argv, StringComparison.Ordinal);
        Assert.DoesNotContain(S3.SecretKey, environ, StringComparison.Ordinal);
        Assert.DoesNotContain(S3.AccessKey, environ, StringComparison.Ordinal);
        Assert.DoesNotContain(S3.SecretKey, Supervisor.Output, StringComparison.Ordinal);
        var passwd = Path.Combine(Layout.SecretsDirectory, "vol-f", "passwd");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(passwd));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Layout.SecretsDirectory));
        Assert.Equal("tmpfs", Assert.Single(MountTable.Read(), m => m.MountPoint == Layout.SecretsDirectory).FileSystemType);
        Assert.Equal("500", (await File.ReadAllTextAsync($"/proc/{pid}/oom_score_adj")).Trim());
    }

    [SkippableFact]
    public async Task Drain_StopsChildrenGracefully_KeepsJournalAndData()
    {
        await StageAsync("vol-g");
        var target = await PublishAsync("vol-g", "pod-g");
        await File.WriteAllTextAsync(Path.Combine(target, "flushed.txt"), "before shutdown");
        var children = Supervisor.Children();

        var stopped = await Supervisor.DrainAsync();

        Assert.Equal(1, stopped);
        Assert.Equal(0, await Supervisor.StopAsync());
        Assert.All(children, pid => Assert.False(ProcessTree.Alive(pid)));
        var journal = await File.ReadAllTextAsync(Path.Combine(Layout.StateDirectory, "journal.json"));
        Assert.Contains("vol-g", journal, StringComparison.Ordinal);
        Assert.Contains(target, journal, StringComparison.Ordinal);
        Assert.DoesNotContain(S3.SecretKey, journal, StringComparison.Ordinal);
        Assert.Equal("before shutdown", await S3.GetObjectTextAsync(Bucket, "flushed.txt"));
    }

    [SkippableFact]
    public async Task Metrics_AfterChildKilled_CountRecoveryAndReadyVolume()
    {
        await Supervisor.DisposeAsync();
        var port = FreeLoopbackPort();
        var supervisor = await StartSupervisorAsync(new Dictionary<string, string> { ["Supervisor__MetricsAddress"] = $"127.0.0.1:{port}" });
        var staged = await StageAsync("vol-m");
        await PublishAsync("vol-m", "pod-m");
        ProcessTree.Signal(staged.Pid, 9);
        await supervisor.WaitForStateAsync("vol-m", VolumeState.Ready, TimeSpan.FromSeconds(30), v => v.RestartCount == 1);

        using var http = new HttpClient();
        var text = await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");

        Assert.Contains("s3supervisor_volumes{state=\"Ready\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("s3supervisor_publish_targets 1\n", text, StringComparison.Ordinal);
        Assert.Contains("s3supervisor_s3fs_restarts_total 1\n", text, StringComparison.Ordinal);
        Assert.Contains("s3supervisor_recoveries_total{result=\"success\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("s3supervisor_recovery_duration_seconds_count 1\n", text, StringComparison.Ordinal);
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    [SkippableFact]
    public async Task Socket_PermissionsAreRestricted()
    {
        Assert.Equal(
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite,
            File.GetUnixFileMode(Layout.SocketPath));
        Assert.Equal(
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute,
            File.GetUnixFileMode(Layout.RunDirectory));
        await Task.CompletedTask;
    }

    [SkippableFact]
    public async Task PeerNotOnAllowList_PermissionDenied()
    {
        await Supervisor.DisposeAsync();
        var strict = await StartSupervisorAsync(new Dictionary<string, string> { ["Supervisor__AllowedUids__0"] = "12345" });
        var error = await Assert.ThrowsAsync<RpcException>(() => strict.Client.ListVolumesAsync(new ListVolumesRequest()).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.Contains("uid 0", error.Status.Detail, StringComparison.Ordinal);
    }
}

using System.Diagnostics;
using System.Globalization;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.Bench;

/// <summary>
/// What the supervisor costs once a volume is mounted, next to bare s3fs in the same run: (1) sequential
/// write and read of one file through a published target (the supervisor's s3fs, bind-mounted twice)
/// and through a bare s3fs mount, rounds alternating between the two; (2) heal: one s3fs killed with
/// SIGKILL until a stand-in container's view of the volume answers again, next to a bare s3fs mount.
/// The supervisor is not in the data path (the kernel talks to s3fs over /dev/fuse): (1) shows it.
/// </summary>
internal static class DataPathBench
{
    private const string Bucket = "bench-data";
    private const int FileMiB = 64;

    public static async Task RunAsync(BenchContext context, BenchOptions options, CancellationToken ct)
    {
        var rgw = context.Rgw;
        await rgw.CreateBucketAsync(Bucket, ct);
        await using var scratch = await ScratchDirectory.CreateAsync("bench-data", ct);
        var layout = new SupervisorLayout(scratch.Combine("sv"));
        var kind = ProductBinary.AotAvailable(out _) ? BinaryKind.Aot : BinaryKind.Jit;
        SupervisorProcess? supervisor = null;
        S3fsMount? bare = null;
        StandInContainer? container = null;
        var writes = new Dictionary<string, List<double>> { ["bare"] = [], ["published"] = [] };
        var reads = new Dictionary<string, List<double>> { ["bare"] = [], ["published"] = [] };
        var heals = new List<TimeSpan>();
        var bareMounts = new List<TimeSpan>();
        var healLog = string.Empty;
        try
        {
            supervisor = (await SupervisorProbe.StartAsync(layout, settings: null, Stopwatch.StartNew(), ct, kind)).Supervisor;
            const string id = "bench-data/published";
            var staging = layout.StagingPath(id);
            var target = layout.TargetPath("pod-data", "vol");
            Directory.CreateDirectory(staging);
            Directory.CreateDirectory(target);
            await supervisor.Client.StageVolumeAsync(new StageVolumeRequest
            {
                VolumeId = id,
                StagingPath = staging,
                Source = new VolumeSource { Bucket = Bucket, Prefix = "published", Endpoint = rgw.Endpoint, Region = rgw.Region },
                Credentials = new Credentials { AccessKeyId = rgw.AccessKey, SecretAccessKey = rgw.SecretKey },
            }, deadline: DateTime.UtcNow.AddSeconds(60), cancellationToken: ct);
            await supervisor.Client.PublishVolumeAsync(new PublishVolumeRequest { VolumeId = id, TargetPath = target, Pod = new PodRef { Uid = "pod-data", Name = "data", Namespace = "bench" } }, deadline: DateTime.UtcNow.AddSeconds(60), cancellationToken: ct);
            bare = await BareS3fs.MountAsync(rgw, new BareTarget(Bucket, "bare", scratch.Combine("bare")), TimeSpan.FromSeconds(30), ct);
            var dirs = new Dictionary<string, string> { ["bare"] = bare.MountPoint, ["published"] = target };

            // (1) Sequential I/O, alternating which goes first.
            for (var round = 1; round <= options.Rounds; round++)
            {
                foreach (var which in round % 2 == 1 ? new[] { "bare", "published" } : ["published", "bare"])
                {
                    Out.Progress($"data path round {round}/{options.Rounds}: {FileMiB} MiB through the {which} mount");
                    var file = Path.Combine(dirs[which], $"seq-{round}.bin");
                    writes[which].Add(FileMiB / (await DdAsync("/dev/zero", file, "conv=fsync", ct)).TotalSeconds);
                    // Nothing from the page cache (s3fs has no local cache here): the read goes to S3.
                    await File.WriteAllTextAsync("/proc/sys/vm/drop_caches", "3", ct);
                    reads[which].Add(FileMiB / (await DdAsync(file, "/dev/null", null, ct)).TotalSeconds);
                }
            }

            // (2) Heal inside a container: kill -9 of the s3fs, until the container's view answers.
            container = await StandInContainer.StartAsync("bench-heal", [new VolumeMountSpec(target, "/data")], ct);
            for (var round = 1; round <= options.Rounds; round++)
            {
                Out.Progress($"heal round {round}/{options.Rounds}: kill -9 of the s3fs behind a container's volume");
                var before = await supervisor.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = id }, cancellationToken: ct);
                var clock = Stopwatch.StartNew();
                ProcessTree.Signal(before.Pid, 9);
                while (true)
                {
                    ct.ThrowIfCancellationRequested();
                    var (code, _, _) = await container.ExecAsync("/bin/sh", "-c", "ls /data >/dev/null 2>&1");
                    var now = await supervisor.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = id }, cancellationToken: ct);
                    if (code == 0 && now.Pid != before.Pid && now.State == VolumeState.Ready)
                    {
                        heals.Add(clock.Elapsed);
                        break;
                    }
                    if (clock.Elapsed > options.Timeout)
                    {
                        throw new TimeoutException($"the container's view did not come back within {options.Timeout.TotalSeconds:0} s after the kill:\n{supervisor.Output}");
                    }
                    await Task.Delay(TimeSpan.FromMilliseconds(5), ct);
                }
                Out.Progress($"heal round {round}: bare s3fs mount for the baseline");
                var baseline = await BareS3fs.MountAsync(rgw, new BareTarget(Bucket, "bare-heal", scratch.Combine($"bare-heal-{round}")), TimeSpan.FromSeconds(30), ct);
                bareMounts.Add(baseline.MountTime);
                await baseline.DisposeAsync();
            }
        }
        finally
        {
            healLog = supervisor?.Output ?? string.Empty;
            if (container is not null)
            {
                await Cleanup.StepAsync("the stand-in container", async () => await container.DisposeAsync());
            }
            if (supervisor is not null)
            {
                await Cleanup.StepAsync("the supervisor", async () => await supervisor.DisposeAsync());
            }
            await Cleanup.StepAsync("mounts under the supervisor layout", () => SupervisorProcess.CleanUpAsync(layout));
            if (bare is not null)
            {
                await Cleanup.StepAsync("the bare s3fs", async () => await bare.DisposeAsync());
            }
        }

        Out.Section($"Data path and heal (supervisor {kind}; median of {options.Rounds} rounds)");
        var table = new Table("what", "bare s3fs", "through the supervisor", "ratio", "samples: bare", "samples: supervisor");
        static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
        string Samples(List<double> values) => string.Join(" ", values.Select(v => v.ToString("0", CultureInfo.InvariantCulture)));
        table.Add($"sequential write, {FileMiB} MiB + fsync (MiB/s)", Median(writes["bare"]).ToString("0.0", CultureInfo.InvariantCulture), Median(writes["published"]).ToString("0.0", CultureInfo.InvariantCulture),
            (Median(writes["published"]) / Median(writes["bare"])).ToString("0.00", CultureInfo.InvariantCulture) + "x", Samples(writes["bare"]), Samples(writes["published"]));
        table.Add($"sequential read, {FileMiB} MiB, page cache dropped (MiB/s)", Median(reads["bare"]).ToString("0.0", CultureInfo.InvariantCulture), Median(reads["published"]).ToString("0.0", CultureInfo.InvariantCulture),
            (Median(reads["published"]) / Median(reads["bare"])).ToString("0.00", CultureInfo.InvariantCulture) + "x", Samples(reads["bare"]), Samples(reads["published"]));
        var heal = Fmt.Median(heals);
        table.Add("one s3fs killed -> container view answers, new s3fs Ready (vs a bare mount)", Fmt.Ms(Fmt.Median(bareMounts)), Fmt.Ms(heal), Fmt.Ratio(heal, Fmt.Median(bareMounts)), Fmt.Samples(bareMounts), Fmt.Samples(heals));
        table.Add("  of it: the supervisor's own heal (its log: exit seen -> Ready)", string.Empty, HealLog(healLog), string.Empty, string.Empty, string.Empty);
        Out.Write(table);
        Out.Note("  data: dd bs=1M; the published target is the supervisor's s3fs through its staging bind and the target bind; the bare mount is the same s3fs options on another prefix.");
        Out.Note("  ratio for I/O: supervisor / bare throughput (1.00x = the same). Heal: polled every 5 ms (`ls` inside the container, GetVolume shows a new pid and Ready).");
    }

    /// <summary>The supervisor's "... again after N ms" of each heal.</summary>
    private static string HealLog(string output) =>
        string.Join(" ", System.Text.RegularExpressions.Regex.Matches(output, @"again after (\d+) ms").Select(m => m.Groups[1].Value + " ms"));

    private static async Task<TimeSpan> DdAsync(string input, string output, string? extra, CancellationToken ct)
    {
        string[] args = [$"if={input}", $"of={output}", "bs=1M", .. input == "/dev/zero" ? new[] { $"count={FileMiB}" } : [], .. extra is null ? Array.Empty<string>() : [extra]];
        var clock = Stopwatch.StartNew();
        var result = await ProcessRunner.RunAsync("dd", args, null, ct);
        var elapsed = clock.Elapsed;
        return result.ExitCode == 0 ? elapsed : throw new InvalidOperationException($"dd {string.Join(' ', args)} failed (exit {result.ExitCode}): {result.Stderr.Trim()}");
    }
}

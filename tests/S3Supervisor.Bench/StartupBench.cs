using System.Diagnostics;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.Bench;

/// <summary>
/// Start-to-listening time and idle memory of the supervisor, next to a bare s3fs mount measured in
/// the same run: (1) bare s3fs mount time, (2) supervisor start until its socket answers ListVolumes,
/// each one untimed warm-up then the median of <see cref="BenchOptions.Repeat"/> runs; (3) resident
/// memory of an idle supervisor, then with <see cref="BenchOptions.Volumes"/> volumes staged (its
/// s3fs children counted apart), next to an idle bare s3fs.
/// </summary>
internal static class StartupBench
{
    private const string Bucket = "bench-startup";

    public static async Task RunAsync(BenchContext context, BenchOptions options, CancellationToken ct)
    {
        var rgw = context.Rgw;
        await rgw.CreateBucketAsync(Bucket, ct);
        await using var scratch = await ScratchDirectory.CreateAsync("bench-startup", ct);
        var mountTimeout = TimeSpan.FromSeconds(30);

        // 1. bare s3fs
        var bare = new List<TimeSpan>();
        for (var i = 0; i <= options.Repeat; i++)
        {
            Out.Progress($"bare s3fs mount {(i == 0 ? "warm-up" : $"{i}/{options.Repeat}")}");
            var mount = await BareS3fs.MountAsync(rgw, new BareTarget(Bucket, null, scratch.Combine($"bare-{i}")), mountTimeout, ct);
            await mount.DisposeAsync();
            if (i > 0)
            {
                bare.Add(mount.MountTime);
            }
        }

        // 2. supervisor start to listening
        var starts = new List<TimeSpan>();
        for (var i = 0; i <= options.Repeat; i++)
        {
            Out.Progress($"supervisor start {(i == 0 ? "warm-up" : $"{i}/{options.Repeat}")}");
            var layout = new SupervisorLayout(scratch.Combine($"sv-{i}"));
            try
            {
                var clock = Stopwatch.StartNew();
                var started = await SupervisorProbe.StartAsync(layout, settings: null, clock, ct);
                await started.Supervisor.DisposeAsync();
                if (i > 0)
                {
                    starts.Add(started.Listening);
                }
            }
            finally
            {
                SupervisorProcess.CleanUp(layout);
            }
        }

        // 3. memory, and the latency of StageVolume (one s3fs through the supervisor)
        Out.Progress($"memory: idle supervisor, then {options.Volumes} volumes staged");
        var memory = await MeasureMemoryAsync(context, options, scratch, mountTimeout, ct);

        var bareMedian = Fmt.Median(bare);
        var startMedian = Fmt.Median(starts);
        var stageMedian = Fmt.Median(memory.StageTimes);
        Out.Section($"Startup (median of {options.Repeat} runs after 1 warm-up; stage: median of {options.Volumes} calls)");
        var table = new Table("what", "median", "min", "max", "samples (ms)", "vs bare s3fs mount");
        table.Add("bare s3fs mount: spawn -> in mountinfo + stat ok", Fmt.Ms(bareMedian), Fmt.Ms(bare.Min()), Fmt.Ms(bare.Max()), Fmt.Samples(bare), "1.00x");
        table.Add("supervisor: spawn -> socket answers ListVolumes", Fmt.Ms(startMedian), Fmt.Ms(starts.Min()), Fmt.Ms(starts.Max()), Fmt.Samples(starts), Fmt.Ratio(startMedian, bareMedian));
        table.Add("StageVolume call (supervisor spawns + checks s3fs)", Fmt.Ms(stageMedian), Fmt.Ms(memory.StageTimes.Min()), Fmt.Ms(memory.StageTimes.Max()), Fmt.Samples(memory.StageTimes), Fmt.Ratio(stageMedian, bareMedian));
        Out.Write(table);
        Out.Note("  bare s3fs: same core options as the supervisor's children (url, endpoint, passwd_file, use_path_request_style, allow_other), polled every 2 ms.");
        Out.Note("  supervisor: `dotnet s3supervisor.dll` (JIT), fresh state directory, no API server configured; its socket polled every 2 ms.");
        Out.Note("  StageVolume also stats a missing name through the mount (an S3 HEAD, the credentials check) and polls every 20 ms.");

        var bareMemory = memory.Bare;
        var children = memory.Children;
        var k = children.Count;
        var childTotal = children.Aggregate(default(Memory), (a, b) => a + b);
        Out.Section($"Memory (/proc/<pid>/status and smaps_rollup, read after {options.Settle.TotalSeconds:0} s idle)");
        var mem = new Table("process", "VmRSS", "PSS", "RssAnon", "VmHWM (peak)", "baseline", "RSS vs baseline", "PSS vs baseline");
        void Row(string what, Memory m, int bareCount)
        {
            var baseline = bareCount == 1 ? "1 bare s3fs" : $"{bareCount} bare s3fs";
            mem.Add(what, Fmt.MiB(m.RssKiB), Fmt.MiB(m.PssKiB), Fmt.MiB(m.AnonKiB), Fmt.MiB(m.PeakRssKiB), baseline,
                Fmt.Ratio(m.RssKiB, (double)bareMemory.RssKiB * bareCount), Fmt.Ratio(m.PssKiB, (double)bareMemory.PssKiB * bareCount));
        }
        Row("bare s3fs, 1 idle mount", bareMemory, 1);
        Row("supervisor, idle after start (0 volumes)", memory.Idle, 1);
        Row($"supervisor, {options.Volumes} volumes staged (own process)", memory.Staged, 1);
        Row($"its s3fs children, mean of {k}", childTotal.DividedBy(k), 1);
        Row($"its s3fs children, sum of {k}", childTotal, k);
        Row($"supervisor + its {k} children", memory.Staged + childTotal, k);
        Out.Write(mem);
        Out.Note("  VmRSS counts shared library pages in every process; PSS divides them among the processes sharing them, so PSS sums are the honest totals.");
        if (children.Count != options.Volumes)
        {
            throw new InvalidOperationException($"expected {options.Volumes} s3fs children, found {children.Count}");
        }
    }

    private sealed record MemoryResult(Memory Bare, Memory Idle, Memory Staged, IReadOnlyList<Memory> Children, IReadOnlyList<TimeSpan> StageTimes);

    private static async Task<MemoryResult> MeasureMemoryAsync(BenchContext context, BenchOptions options, ScratchDirectory scratch, TimeSpan mountTimeout, CancellationToken ct)
    {
        var rgw = context.Rgw;
        var layout = new SupervisorLayout(scratch.Combine("sv-mem"));
        S3fsMount? bare = null;
        SupervisorProcess? supervisor = null;
        try
        {
            bare = await BareS3fs.MountAsync(rgw, new BareTarget(Bucket, null, scratch.Combine("bare-mem")), mountTimeout, ct);
            supervisor = (await SupervisorProbe.StartAsync(layout, settings: null, Stopwatch.StartNew(), ct)).Supervisor;
            await Task.Delay(options.Settle, ct);
            var idle = Read(supervisor.Pid, "supervisor");

            var stageTimes = new List<TimeSpan>();
            for (var v = 0; v < options.Volumes; v++)
            {
                var prefix = $"vol-{v:00}";
                var id = $"{Bucket}/{prefix}";
                var staging = layout.StagingPath(id);
                Directory.CreateDirectory(staging);
                var clock = Stopwatch.StartNew();
                await supervisor.Client.StageVolumeAsync(new StageVolumeRequest
                {
                    VolumeId = id,
                    StagingPath = staging,
                    Source = new VolumeSource { Bucket = Bucket, Prefix = prefix, Endpoint = rgw.Endpoint, Region = rgw.Region },
                    Credentials = new Credentials { AccessKeyId = rgw.AccessKey, SecretAccessKey = rgw.SecretKey },
                }, deadline: DateTime.UtcNow.AddSeconds(60), cancellationToken: ct);
                stageTimes.Add(clock.Elapsed);
            }
            await Task.Delay(options.Settle, ct);
            var staged = Read(supervisor.Pid, "supervisor");
            var children = supervisor.Children()
                .Where(pid => ProcStatus.Command(pid) == "s3fs")
                .Select(pid => ProcStatus.Read(pid))
                .OfType<Memory>()
                .ToList();
            var bareMemory = Read(bare.Pid, "bare s3fs");
            return new MemoryResult(bareMemory, idle, staged, children, stageTimes);
        }
        finally
        {
            if (supervisor is not null)
            {
                await Cleanup.StepAsync("the supervisor", async () => await supervisor.DisposeAsync());
            }
            await Cleanup.StepAsync("mounts under the supervisor layout", () => SupervisorProcess.CleanUp(layout));
            if (bare is not null)
            {
                await Cleanup.StepAsync("the bare s3fs", async () => await bare.DisposeAsync());
            }
        }
    }

    private static Memory Read(int pid, string what) =>
        ProcStatus.Read(pid) ?? throw new InvalidOperationException($"{what} (pid {pid}) is gone; cannot read its memory");
}

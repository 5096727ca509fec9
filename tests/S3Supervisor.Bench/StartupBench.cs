using System.Diagnostics;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.Bench;

/// <summary>
/// Start-to-listening time and idle memory of the supervisor, next to a bare s3fs mount measured in
/// the same run, for the NativeAOT binaries that ship and the JIT build side by side (AOT only when
/// scripts/publish.sh has published them): (1) bare s3fs mount time, (2) supervisor start until its
/// socket answers ListVolumes, (3) plugin start until Probe says ready, each one untimed warm-up then
/// the median of <see cref="BenchOptions.Repeat"/> runs; (4) resident memory of an idle supervisor,
/// then with <see cref="BenchOptions.Volumes"/> volumes staged (its s3fs children counted apart),
/// next to an idle bare s3fs.
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

        // The binaries that ship (NativeAOT) beside the JIT build, when they are published.
        BinaryKind[] kinds = ProductBinary.AotAvailable(out var aotMissing) ? [BinaryKind.Aot, BinaryKind.Jit] : [BinaryKind.Jit];
        if (aotMissing is not null)
        {
            Out.Note($"  NativeAOT not measured: {aotMissing}");
        }

        // 2. supervisor start to listening, each kind in turn
        var starts = new Dictionary<BinaryKind, List<TimeSpan>>();
        foreach (var kind in kinds)
        {
            starts[kind] = [];
            for (var i = 0; i <= options.Repeat; i++)
            {
                Out.Progress($"supervisor ({kind}) start {(i == 0 ? "warm-up" : $"{i}/{options.Repeat}")}");
                var layout = new SupervisorLayout(scratch.Combine($"sv-{kind}-{i}"));
                try
                {
                    var clock = Stopwatch.StartNew();
                    var started = await SupervisorProbe.StartAsync(layout, settings: null, clock, ct, kind);
                    await started.Supervisor.DisposeAsync();
                    if (i > 0)
                    {
                        starts[kind].Add(started.Listening);
                    }
                }
                finally
                {
                    await SupervisorProcess.CleanUpAsync(layout);
                }
            }
        }

        // 3. plugin start to Probe ready (node mode, a live supervisor behind it), each kind in turn
        var probes = await MeasurePluginAsync(options, scratch, kinds, ct);

        // 3b. supervisor restart under a running plugin: new supervisor listening -> the plugin's next call succeeds
        var reconnects = new Dictionary<BinaryKind, List<TimeSpan>>();
        foreach (var kind in kinds)
        {
            reconnects[kind] = await PluginProbe.ReconnectAfterSupervisorRestartAsync(options, scratch.Combine($"reconnect-{kind}"), kind, ct);
        }

        // 4. memory, and the latency of StageVolume (one s3fs through the supervisor)
        var memory = new Dictionary<BinaryKind, MemoryResult>();
        foreach (var kind in kinds)
        {
            Out.Progress($"memory: idle supervisor ({kind}), then {options.Volumes} volumes staged");
            memory[kind] = await MeasureMemoryAsync(context, options, scratch, mountTimeout, kind, ct);
        }

        var bareMedian = Fmt.Median(bare);
        Out.Section($"Startup (median of {options.Repeat} runs after 1 warm-up; stage: median of {options.Volumes} calls)");
        var table = new Table("what", "median", "min", "max", "samples (ms)", "vs bare s3fs mount");
        void Timed(string what, IReadOnlyList<TimeSpan> samples)
        {
            var median = Fmt.Median(samples);
            table.Add(what, Fmt.Ms(median), Fmt.Ms(samples.Min()), Fmt.Ms(samples.Max()), Fmt.Samples(samples), Fmt.Ratio(median, bareMedian));
        }
        Timed("bare s3fs mount: spawn -> in mountinfo + stat ok", bare);
        foreach (var kind in kinds)
        {
            Timed($"supervisor ({kind}): spawn -> socket answers ListVolumes", starts[kind]);
        }
        foreach (var kind in kinds)
        {
            Timed($"plugin ({kind}): spawn -> Probe ready", probes[kind]);
        }
        foreach (var kind in kinds)
        {
            table.Add($"plugin ({kind}): new supervisor listening -> plugin's next Probe ready", Fmt.Ms(Fmt.Median(reconnects[kind])), Fmt.Ms(reconnects[kind].Min()), Fmt.Ms(reconnects[kind].Max()), Fmt.Samples(reconnects[kind]), string.Empty);
        }
        foreach (var kind in kinds)
        {
            Timed($"StageVolume call, supervisor ({kind})", memory[kind].StageTimes);
        }
        Out.Write(table);
        Out.Note("  bare s3fs: same core options as the supervisor's children (url, endpoint, passwd_file, use_path_request_style, allow_other), polled every 2 ms.");
        foreach (var kind in kinds)
        {
            Out.Note($"  {kind}: supervisor {ProductBinary.ForSupervisor(kind).Describe()}, plugin {ProductBinary.ForPlugin(kind).Describe()}.");
        }
        Out.Note("  supervisor: fresh state directory, no API server configured; its socket polled every 2 ms.");
        Out.Note("  plugin: node mode, a supervisor (the first kind above) already listening; Probe polled every 2 ms until ready.");
        Out.Note($"  reconnect: the plugin runs on; its supervisor is killed, a new one started {SupervisorProcess.RestartDelay.TotalSeconds:0} s later; one long-lived client calls Probe every 2 ms (the plugin's Probe asks the supervisor).");
        Out.Note("  StageVolume also stats a missing name through the mount (an S3 HEAD, the credentials check) and polls every 20 ms.");

        var reference = memory[kinds[0]];
        var bareMemory = reference.Bare;
        Out.Section($"Memory (/proc/<pid>/status and smaps_rollup, read after {options.Settle.TotalSeconds:0} s idle)");
        var mem = new Table("process", "VmRSS", "PSS", "RssAnon", "VmHWM (peak)", "baseline", "RSS vs baseline", "PSS vs baseline");
        void Row(string what, Memory m, int bareCount)
        {
            var baseline = bareCount == 1 ? "1 bare s3fs" : $"{bareCount} bare s3fs";
            mem.Add(what, Fmt.MiB(m.RssKiB), Fmt.MiB(m.PssKiB), Fmt.MiB(m.AnonKiB), Fmt.MiB(m.PeakRssKiB), baseline,
                Fmt.Ratio(m.RssKiB, (double)bareMemory.RssKiB * bareCount), Fmt.Ratio(m.PssKiB, (double)bareMemory.PssKiB * bareCount));
        }
        Row("bare s3fs, 1 idle mount", bareMemory, 1);
        foreach (var kind in kinds)
        {
            Row($"supervisor ({kind}), idle after start (0 volumes)", memory[kind].Idle, 1);
        }
        foreach (var kind in kinds)
        {
            Row($"supervisor ({kind}), {options.Volumes} volumes staged (own process)", memory[kind].Staged, 1);
        }
        var children = reference.Children;
        var k = children.Count;
        var childTotal = children.Aggregate(default(Memory), (a, b) => a + b);
        Row($"its s3fs children, mean of {k}", childTotal.DividedBy(k), 1);
        Row($"its s3fs children, sum of {k}", childTotal, k);
        foreach (var kind in kinds)
        {
            Row($"supervisor ({kind}) + its {k} children", memory[kind].Staged + childTotal, k);
        }
        Out.Write(mem);
        Out.Note($"  children: those of the {kinds[0]} supervisor (s3fs is the same program under either).");
        Out.Note("  VmRSS counts shared library pages in every process; PSS divides them among the processes sharing them, so PSS sums are the honest totals.");
        foreach (var kind in kinds)
        {
            if (memory[kind].Children.Count != options.Volumes)
            {
                throw new InvalidOperationException($"expected {options.Volumes} s3fs children of the {kind} supervisor, found {memory[kind].Children.Count}");
            }
        }
    }

    /// <summary>Plugin spawn to the first Probe that says ready, for each kind, against one supervisor started first.</summary>
    private static async Task<Dictionary<BinaryKind, List<TimeSpan>>> MeasurePluginAsync(BenchOptions options, ScratchDirectory scratch, BinaryKind[] kinds, CancellationToken ct)
    {
        var layout = new SupervisorLayout(scratch.Combine("sv-plugin"));
        var result = new Dictionary<BinaryKind, List<TimeSpan>>();
        var supervisor = (await SupervisorProbe.StartAsync(layout, settings: null, Stopwatch.StartNew(), ct, kinds[0])).Supervisor;
        try
        {
            foreach (var kind in kinds)
            {
                result[kind] = [];
                for (var i = 0; i <= options.Repeat; i++)
                {
                    Out.Progress($"plugin ({kind}) start {(i == 0 ? "warm-up" : $"{i}/{options.Repeat}")}");
                    var clock = Stopwatch.StartNew();
                    var started = await PluginProbe.StartAsync(scratch.Combine($"csi-{kind}-{i}", "csi.sock"), layout.SocketPath, kind, clock, ct);
                    await started.Plugin.DisposeAsync();
                    if (i > 0)
                    {
                        result[kind].Add(started.ProbeReady);
                    }
                }
            }
        }
        finally
        {
            await Cleanup.StepAsync("the supervisor behind the plugin", async () => await supervisor.DisposeAsync());
            await Cleanup.StepAsync("mounts under its layout", () => SupervisorProcess.CleanUpAsync(layout));
        }
        return result;
    }

    private sealed record MemoryResult(Memory Bare, Memory Idle, Memory Staged, IReadOnlyList<Memory> Children, IReadOnlyList<TimeSpan> StageTimes);

    private static async Task<MemoryResult> MeasureMemoryAsync(BenchContext context, BenchOptions options, ScratchDirectory scratch, TimeSpan mountTimeout, BinaryKind kind, CancellationToken ct)
    {
        var rgw = context.Rgw;
        var layout = new SupervisorLayout(scratch.Combine($"sv-mem-{kind}"));
        S3fsMount? bare = null;
        SupervisorProcess? supervisor = null;
        try
        {
            bare = await BareS3fs.MountAsync(rgw, new BareTarget(Bucket, null, scratch.Combine($"bare-mem-{kind}")), mountTimeout, ct);
            supervisor = (await SupervisorProbe.StartAsync(layout, settings: null, Stopwatch.StartNew(), ct, kind)).Supervisor;
            await Task.Delay(options.Settle, ct);
            var idle = Read(supervisor.Pid, "supervisor");

            var stageTimes = new List<TimeSpan>();
            for (var v = 0; v < options.Volumes; v++)
            {
                var prefix = $"{kind}-vol-{v:00}";
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
            await Cleanup.StepAsync("mounts under the supervisor layout", () => SupervisorProcess.CleanUpAsync(layout));
            if (bare is not null)
            {
                await Cleanup.StepAsync("the bare s3fs", async () => await bare.DisposeAsync());
            }
        }
    }

    private static Memory Read(int pid, string what) =>
        ProcStatus.Read(pid) ?? throw new InvalidOperationException($"{what} (pid {pid}) is gone; cannot read its memory");
}

using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using k8s.Models;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Kubernetes;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.Bench;

/// <summary>
/// The rebuild after a supervisor restart, for each N: N volumes (one prefix each in one bucket)
/// staged and published to 2 stand-in containers (one read-write, one read-only, each holding all N),
/// the supervisor killed with its s3fs children, a new one started against the test API server seeded
/// with the matching objects; timed from its spawn to (a) all N volumes Ready and (b) every container
/// view answering again. Next to it, in the same run: N bare s3fs of the same prefixes mounted in parallel.
/// </summary>
internal static partial class RebuildBench
{
    private const string NodeName = "bench-node";
    private const string Namespace = "bench";
    private const string ViewCheck = """for d in "$@"; do stat -t "$d" >/dev/null 2>&1 || exit 1; done""";
    private const string CountStale = """n=0; for d in "$@"; do stat -t "$d" >/dev/null 2>&1 || n=$((n+1)); done; echo $n""";
    private const string WriteMarkers = """for d in "$@"; do printf '%s\n' "$d" > "$d/bench.txt" || exit 1; done""";
    private const string ReadMarkers = """for d in "$@"; do cat "$d/bench.txt" || exit 1; done""";
    private static readonly TimeSpan ReadyPoll = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan ViewPoll = TimeSpan.FromMilliseconds(50);

    // During the rebuild a caller far busier than kubelet or an operator's `watch` (one call every
    // 10 ms), not a back-to-back hammer: that would take a core of its own from the rebuild it measures.
    private static readonly TimeSpan ListVolumesPace = TimeSpan.FromMilliseconds(10);

    private sealed record Result(
        int N,
        TimeSpan Setup,
        int StaleBefore,
        TimeSpan Listening,
        TimeSpan FirstReady,
        TimeSpan AllReady,
        IReadOnlyList<TimeSpan> Views,
        TimeSpan SlowestListVolumes,
        TimeSpan BareAll,
        TimeSpan BareMedian,
        bool ReadOnlyKept,
        double? RebuildLogMs,
        Latencies ListDuringRebuild,
        Latencies ListIdle,
        string FromJournal)
    {
        public TimeSpan AllViews => Views.Max();
    }

    public static async Task RunAsync(BenchContext context, BenchOptions options, CancellationToken ct)
    {
        var results = new List<(int N, IReadOnlyList<Result> Rounds)>();
        foreach (var n in options.Ns)
        {
            var rounds = new List<Result>();
            for (var round = 1; round <= options.Rounds; round++)
            {
                rounds.Add(await RunOnceAsync(context, n, round, options, ct));
            }
            results.Add((n, rounds));
        }

        var parallelism = options.Parallelism?.ToString(CultureInfo.InvariantCulture) ?? "64 (supervisor default)";
        Out.Section($"Rebuild after kill -9 of the supervisor (median of {options.Rounds} rounds; RestoreParallelism {parallelism}; times from the new supervisor's spawn)");
        var table = new Table("N", "bare s3fs xN parallel", "listening", "first Ready", "all N Ready", "all views restored", "Ready - listening", "Ready vs bare", "views vs bare");
        foreach (var (n, rounds) in results)
        {
            TimeSpan M(Func<Result, TimeSpan> pick) => Fmt.Median(rounds.Select(pick).ToArray());
            table.Add(Fmt.Int(n), Fmt.Ms(M(r => r.BareAll)), Fmt.Ms(M(r => r.Listening)), Fmt.Ms(M(r => r.FirstReady)), Fmt.Ms(M(r => r.AllReady)), Fmt.Ms(M(r => r.AllViews)),
                Fmt.Ms(M(r => r.AllReady - r.Listening)), Fmt.Ratio(M(r => r.AllReady), M(r => r.BareAll)), Fmt.Ratio(M(r => r.AllViews), M(r => r.BareAll)));
        }
        Out.Write(table);
        Out.Note(string.Empty);
        var lists = new Table("N", "ListVolumes during the rebuild: calls", "p50", "p99", "max", "idle after it: calls", "p50", "p99", "max");
        foreach (var (n, rounds) in results)
        {
            var during = Latencies.Of(rounds.SelectMany(r => r.ListDuringRebuild.Samples));
            var idle = Latencies.Of(rounds.SelectMany(r => r.ListIdle.Samples));
            lists.Add(Fmt.Int(n), Fmt.Int(during.Samples.Count), Fmt.Ms(during.P(50)), Fmt.Ms(during.P(99)), Fmt.Ms(during.P(100)),
                Fmt.Int(idle.Samples.Count), Fmt.Ms(idle.P(50)), Fmt.Ms(idle.P(99)), Fmt.Ms(idle.P(100)));
        }
        Out.Write(lists);
        Out.Note("  ListVolumes: one client calls it every 10 ms from the moment the new supervisor listens until every volume is Ready and every view restored (all rounds pooled),");
        Out.Note("  then 500 calls back to back on the idle supervisor; each call's time on the client, over the unix socket (a client's gRPC and protobuf work included).");
        Out.Note(string.Empty);
        var details = new Table("N", "round", "setup", "stale after kill", "bare xN", "bare each (median)", "listening", "all Ready", "views (rw / ro)", "slowest ListVolumes", "ro still ro", "supervisor log", "from the journal");
        foreach (var (n, rounds) in results)
        {
            foreach (var (r, i) in rounds.Select((r, i) => (r, i + 1)))
            {
                details.Add(Fmt.Int(n), Fmt.Int(i), Fmt.Ms(r.Setup), $"{r.StaleBefore}/{2 * r.N}", Fmt.Ms(r.BareAll), Fmt.Ms(r.BareMedian), Fmt.Ms(r.Listening), Fmt.Ms(r.AllReady),
                    string.Join(" / ", r.Views.Select(Fmt.Ms)), Fmt.Ms(r.SlowestListVolumes), r.ReadOnlyKept ? "yes" : "NO", r.RebuildLogMs is { } ms ? Fmt.Ms(ms) : "n/a", r.FromJournal);
            }
        }
        Out.Write(details);
        Out.Note("  Ready: ListVolumes (polled every 20 ms) shows all N volumes Ready with both publish targets; \"slowest ListVolumes\" is the longest of those calls during the rebuild.");
        Out.Note("  views: inside each stand-in container (own mount namespace, binds made before the kill) `stat` of all N mounts succeeds, polled every 50 ms through nsenter;");
        Out.Note("         afterwards every marker file written before the kill is read back through both containers, and a write to the read-only one must fail.");
        Out.Note("  setup: stage + publish N volumes to 2 pods + start 2 stand-in containers + write N marker files (not part of any ratio).");
        Out.Note("  bare: N `s3fs -f` spawned at once, same bucket and prefixes, until every one is in mountinfo and stat works (polled every 2 ms), after the rebuild's clean-up.");
        Out.Note("  supervisor log: its own \"Rebuild: N volume(s) handled in X ms\" (from its RebuildService start, not from process spawn); the whole log is in .work/bench-logs/.");
        Out.Note("  from the journal: volumes its fast path remounted with their stored passwd files (of those it could), while the API server was asked about the rest.");
    }

    private static async Task<Result> RunOnceAsync(BenchContext context, int n, int round, BenchOptions options, CancellationToken ct)
    {
        var rgw = context.Rgw;
        var bucket = $"bench-rebuild-{n}-{round}";
        await rgw.CreateBucketAsync(bucket, ct);
        await using var scratch = await ScratchDirectory.CreateAsync($"bench-rebuild-{n}-{round}", ct);
        var layout = new SupervisorLayout(scratch.Combine("sv"));

        var scenario = TestObjects.Scenario(NodeName, n, podsPerVolume: 0, rgw.Endpoint, bucket, rgw.Region, Namespace, rgw.AccessKey, rgw.SecretKey);
        var paths = Enumerable.Range(0, n).Select(i => string.Create(CultureInfo.InvariantCulture, $"/data/v{i:00}")).ToArray();
        var podRw = TestObjects.Pod(Namespace, "bench-rw", NodeName, scenario.Volumes.Select((v, i) => new PodVolumeMount(v.Claim.Metadata.Name, paths[i])));
        var podRo = TestObjects.Pod(Namespace, "bench-ro", NodeName, scenario.Volumes.Select((v, i) => new PodVolumeMount(v.Claim.Metadata.Name, paths[i], ReadOnly: true)));

        var containers = new List<StandInContainer>();
        SupervisorProcess? first = null;
        SupervisorProcess? second = null;
        TestCluster? cluster = null;
        Result result;
        try
        {
            cluster = await TestCluster.StartAsync(scratch.Combine("kubeconfig"), ct);
            cluster.Api.UpsertAll(scenario.Objects);
            cluster.Api.Upsert(podRw);
            cluster.Api.Upsert(podRo);
            var settings = cluster.SupervisorSettings(NodeName, layout.KubeletRoot);
            settings["Kubernetes__DriverName"] = NodeSimulator.DriverName;
            if (options.Parallelism is { } parallelism)
            {
                settings["Supervisor__RestoreParallelism"] = parallelism.ToString(CultureInfo.InvariantCulture);
            }

            // Setup (not timed for the result): what kubelet and the plugin would have done.
            Out.Progress($"rebuild N={n} round {round}/{options.Rounds}: staging and publishing {n} volumes to 2 stand-in containers");
            var setup = Stopwatch.StartNew();
            first = await SupervisorProcess.StartAsync(layout, settings, TimeSpan.FromSeconds(60));
            var node = new NodeSimulator(layout.KubeletRoot, NodeName);
            var client = first.Client;
            await Parallel.ForEachAsync(scenario.Volumes, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (v, _) =>
                await node.StageAsync(client, v.Volume, v.Secret));
            var byClaim = scenario.Volumes.ToDictionary(v => v.Claim.Metadata.Name, v => v.Volume);
            foreach (var pod in new[] { podRw, podRo })
            {
                var published = await node.PublishPodAsync(client, pod, byClaim);
                containers.Add(await NodeSimulator.StartContainerAsync(pod, published));
            }
            var rw = containers[0];
            var ro = containers[1];
            await ExecCheckedAsync(rw, WriteMarkers, paths, "writing a marker file in every volume", ct);
            await VerifyMarkersAsync(containers, paths, ct);
            setup.Stop();

            // The crash.
            Out.Progress($"rebuild N={n} round {round}/{options.Rounds}: kill -9 of the supervisor and its {first.Children().Count} children");
            await first.KillAsync();
            var stale = 0;
            foreach (var container in containers)
            {
                var counted = await ExecCheckedAsync(container, CountStale, paths, "counting stale mounts", ct);
                stale += int.Parse(counted.Trim(), CultureInfo.InvariantCulture);
            }

            // The measurement.
            Out.Progress($"rebuild N={n} round {round}/{options.Rounds}: starting a new supervisor");
            var clock = Stopwatch.StartNew();
            var started = await SupervisorProbe.StartAsync(layout, settings, clock, ct);
            second = started.Supervisor;
            var ids = scenario.Volumes.Select(v => v.Volume.Spec.Csi.VolumeHandle).ToHashSet(StringComparer.Ordinal);
            using var failed = CancellationTokenSource.CreateLinkedTokenSource(ct);
            using var sampling = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var sampler = SampleListVolumesAsync(second, until: null, ListVolumesPace, sampling.Token);
            var ready = WaitAllReadyAsync(second, ids, clock, options.Timeout, failed.Token);
            var views = containers.Select(c => WaitViewsAsync(c, paths, second, clock, options.Timeout, failed.Token)).ToArray();
            await Cleanup.WhenAllOrFirstFailureAsync(views.Cast<Task>().Append(ready), failed);
            await sampling.CancelAsync();
            var duringRebuild = await sampler;
            var idle = await SampleListVolumesAsync(second, until: 500, pace: null, ct);
            var (firstReady, allReady, slowest) = await ready;
            var viewTimes = views.Select(v => v.Result).ToList();
            Out.Progress($"rebuild N={n} round {round}/{options.Rounds}: all Ready after {Fmt.Ms(allReady)}, all views after {Fmt.Ms(viewTimes.Max())}");

            // The views are really back: every marker reads back, and read-only stayed read-only.
            await VerifyMarkersAsync(containers, paths, ct);
            var write = await ro.ExecAsync(["/bin/sh", "-c", "echo x > \"$1/ro-probe.txt\"", "sh", paths[0]], null, TimeSpan.FromSeconds(30), ct);
            if (write.Succeeded || !write.Stderr.Contains("Read-only file system", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"container {ro.Name}: {paths[0]} is not read-only after the rebuild (exit {write.ExitCode}: {write.Stderr.Trim()}); it was published read-only");
            }
            result = new Result(n, setup.Elapsed, stale, started.Listening, firstReady, allReady, viewTimes, slowest, TimeSpan.Zero, TimeSpan.Zero, ReadOnlyKept: true, RebuildMilliseconds(second.Output), duringRebuild, idle, FromJournal(second.Output));
            // The rebuilt supervisor's own log, to see where its time went (timestamps to the millisecond), in
            // the repository's .work/ (six levels up from the bench's build output).
            var logs = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "..", ".work", "bench-logs");
            Directory.CreateDirectory(logs);
            await File.WriteAllTextAsync(Path.Combine(logs, $"rebuild-{n}-{round}.log"), second.Output, ct);
        }
        finally
        {
            // Containers first (their namespaces hold copies of the mounts), then the supervisors, then
            // every mount left under the layout, then the API server.
            foreach (var container in containers)
            {
                await Cleanup.StepAsync($"container {container.Name}", async () => await container.DisposeAsync());
            }
            if (second is not null)
            {
                await Cleanup.StepAsync("the new supervisor", async () => await second.DisposeAsync());
            }
            if (first is not null)
            {
                await Cleanup.StepAsync("the first supervisor", async () => await first.DisposeAsync());
            }
            await Cleanup.StepAsync("mounts under the supervisor layout", () => SupervisorProcess.CleanUpAsync(layout));
            if (cluster is not null)
            {
                await Cleanup.StepAsync("the test API server", async () => await cluster.DisposeAsync());
            }
        }

        // The baseline, on a quiet machine: the same prefixes, N bare s3fs at once.
        Out.Progress($"rebuild N={n} round {round}/{options.Rounds}: baseline, {n} bare s3fs in parallel");
        var targets = scenario.Volumes.Select((v, i) => new BareTarget(bucket, v.Volume.Spec.Csi.VolumeAttributes["prefix"], scratch.Combine("bare", $"v{i:00}"))).ToArray();
        var bare = await BareS3fs.MountManyAsync(context.Rgw, targets, options.Timeout, ct);
        try
        {
            var times = bare.Select(m => m.MountTime).ToArray();
            return result with { BareAll = times.Max(), BareMedian = Fmt.Median(times) };
        }
        finally
        {
            await BareS3fs.DisposeAllAsync(bare);
        }
    }

    /// <summary>ListVolumes, each call timed, one every <paramref name="pace"/> (null: back to back): <paramref name="until"/> calls, or until cancelled.</summary>
    private static async Task<Latencies> SampleListVolumesAsync(SupervisorProcess supervisor, int? until, TimeSpan? pace, CancellationToken ct)
    {
        var samples = new List<TimeSpan>();
        try
        {
            while (until is null || samples.Count < until)
            {
                var call = Stopwatch.StartNew();
                await supervisor.Client.ListVolumesAsync(new ListVolumesRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct);
                samples.Add(call.Elapsed);
                if (pace is { } wait && wait > call.Elapsed)
                {
                    await Task.Delay(wait - call.Elapsed, ct);
                }
            }
        }
        catch (Exception) when (until is null && ct.IsCancellationRequested)
        {
            // Stopped: the rebuild is over.
        }
        return new Latencies(samples);
    }

    private static async Task<(TimeSpan First, TimeSpan All, TimeSpan SlowestCall)> WaitAllReadyAsync(SupervisorProcess supervisor, HashSet<string> ids, Stopwatch clock, TimeSpan timeout, CancellationToken ct)
    {
        TimeSpan? first = null;
        var slowest = TimeSpan.Zero;
        List<Volume> last = [];
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (supervisor.HasExited)
            {
                throw new InvalidOperationException($"the new supervisor exited during the rebuild:\n{Tail(supervisor.Output)}");
            }
            var called = clock.Elapsed;
            var reply = await supervisor.Client.ListVolumesAsync(new ListVolumesRequest(), deadline: DateTime.UtcNow.AddSeconds(10), cancellationToken: ct);
            slowest = TimeSpan.FromTicks(Math.Max(slowest.Ticks, (clock.Elapsed - called).Ticks));
            last = reply.Volumes.Where(v => ids.Contains(v.VolumeId)).ToList();
            var ready = last.Count(v => v.State == VolumeState.Ready && v.Targets.Count >= 2);
            if (ready > 0)
            {
                first ??= clock.Elapsed;
            }
            if (ready == ids.Count)
            {
                return (first ?? clock.Elapsed, clock.Elapsed, slowest);
            }
            if (clock.Elapsed > timeout)
            {
                var states = last.Count == 0 ? "none listed yet" : string.Join(", ", last.GroupBy(v => v.State).Select(g => $"{g.Key}: {g.Count()}"));
                var errors = string.Join("\n  ", last.Where(v => v.LastError.Length > 0).Take(5).Select(v => $"{v.VolumeId}: {v.LastError}"));
                throw new TimeoutException($"only {ready} of {ids.Count} volumes Ready after {timeout.TotalSeconds:0} s ({last.Count} known; {states})\n  {errors}\nsupervisor log tail:\n{Tail(supervisor.Output)}");
            }
            await Task.Delay(ReadyPoll, ct);
        }
    }

    private static async Task<TimeSpan> WaitViewsAsync(StandInContainer container, string[] paths, SupervisorProcess supervisor, Stopwatch clock, TimeSpan timeout, CancellationToken ct)
    {
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var result = await container.ExecAsync(["/bin/sh", "-c", ViewCheck, "sh", .. paths], null, TimeSpan.FromSeconds(30), ct);
            if (result.Succeeded)
            {
                return clock.Elapsed;
            }
            if (clock.Elapsed > timeout)
            {
                var stale = await container.ExecAsync(["/bin/sh", "-c", CountStale, "sh", .. paths], null, TimeSpan.FromSeconds(30), ct);
                throw new TimeoutException($"container {container.Name}: {stale.Stdout.Trim()} of {paths.Length} mounts still not answering after {timeout.TotalSeconds:0} s\nsupervisor log tail:\n{Tail(supervisor.Output)}");
            }
            await Task.Delay(ViewPoll, ct);
        }
    }

    private static async Task VerifyMarkersAsync(IEnumerable<StandInContainer> containers, string[] paths, CancellationToken ct)
    {
        var expected = string.Concat(paths.Select(p => p + "\n"));
        foreach (var container in containers)
        {
            var text = await ExecCheckedAsync(container, ReadMarkers, paths, "reading the marker files", ct);
            if (text != expected)
            {
                throw new InvalidOperationException($"container {container.Name}: the marker files read back differently:\n{text}");
            }
        }
    }

    private static async Task<string> ExecCheckedAsync(StandInContainer container, string script, string[] paths, string what, CancellationToken ct)
    {
        var result = await container.ExecAsync(["/bin/sh", "-c", script, "sh", .. paths], null, TimeSpan.FromSeconds(120), ct);
        return result.Succeeded
            ? result.Stdout
            : throw new InvalidOperationException($"container {container.Name}: {what} failed (exit {result.ExitCode}): {result.Stderr.Trim()}");
    }

    /// <summary>The supervisor's own "Rebuild: N volume(s) handled in X ms" (its RebuildService), for cross-checking.</summary>
    private static double? RebuildMilliseconds(string output) =>
        RebuildLog().Matches(output).LastOrDefault() is { } match ? double.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture) : null;

    /// <summary>The supervisor's "Rebuild: R of C volume(s) remounted from the journal ... in X ms".</summary>
    private static string FromJournal(string output) =>
        JournalLog().Matches(output).LastOrDefault() is { } match ? $"{match.Groups[1].Value}/{match.Groups[2].Value} in {match.Groups[3].Value.Split('.')[0]} ms" : "none";

    [GeneratedRegex(@"Rebuild: (\d+) of (\d+) volume\(s\) remounted from the journal[^0-9]*([0-9.]+) ms")]
    private static partial Regex JournalLog();

    [GeneratedRegex(@"Rebuild: (\d+) volume\(s\) handled in ([0-9.]+) ms")]
    private static partial Regex RebuildLog();

    private static string Tail(string output) => string.Join('\n', output.Split('\n').TakeLast(30));
}

/// <summary>Call times and their percentiles (nearest rank).</summary>
internal sealed record Latencies(IReadOnlyList<TimeSpan> Samples)
{
    public static Latencies Of(IEnumerable<TimeSpan> samples) => new(samples.ToArray());

    public TimeSpan P(int percent)
    {
        if (Samples.Count == 0)
        {
            return TimeSpan.Zero;
        }
        var sorted = Samples.Order().ToArray();
        var rank = (int)Math.Ceiling(percent / 100.0 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}

using System.Diagnostics;
using System.Globalization;
using Grpc.Core;
using Grpc.Net.Client;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;

namespace S3Supervisor.TestKit.Supervisor;

/// <summary>Where a test supervisor keeps its files; all under one throwaway root.</summary>
public sealed class SupervisorLayout
{
    public SupervisorLayout(string root)
    {
        Root = root;
    }

    public string Root { get; }

    /// <summary>Stands in for /var/lib/kubelet: the only allowed root for staging and target paths.</summary>
    public string KubeletRoot => Path.Combine(Root, "kubelet");

    public string StateDirectory => Path.Combine(Root, "state");

    public string RunDirectory => Path.Combine(Root, "run");

    public string SocketPath => Path.Combine(RunDirectory, "supervisor.sock");

    public string SecretsDirectory => Path.Combine(RunDirectory, "secrets");

    public string StagingPath(string volumeId) => Path.Combine(KubeletRoot, "plugins", "kubernetes.io", "csi", "s3.csi.s3supervisor.io", Hash(volumeId), "globalmount");

    public string TargetPath(string podUid, string volumeName) => Path.Combine(KubeletRoot, "pods", podUid, "volumes", "kubernetes.io~csi", volumeName, "mount");

    private static string Hash(string value) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(value)));
}

/// <summary>
/// A real s3supervisor process (<see cref="ProductBinary.ForSupervisor"/>: the NativeAOT binary that ships
/// when it is published, else `dotnet s3supervisor.dll`) on a socket
/// in a throwaway directory. <see cref="KillAsync"/> kills it and every child like a container
/// runtime does when the container dies; dispose stops it and clears every mount under its root.
/// Started with <c>ownCgroup</c>, it runs in a stand-in container's cgroup (<see cref="Cgroup"/>, every
/// hierarchy), and <see cref="KillCgroupLikeARuntimeAsync"/> kills what a runtime would: every process
/// in that cgroup, wherever it descends from, and none outside it.
/// </summary>
public sealed class SupervisorProcess : IAsyncDisposable
{
    private readonly CapturedProcess _process;
    private bool _disposed;

    private SupervisorProcess(CapturedProcess process, SupervisorLayout layout, TestCgroup? cgroup = null)
    {
        _process = process;
        Layout = layout;
        Cgroup = cgroup;
        Channel = UnixSocketChannel.Create(layout.SocketPath);
        Client = new S3Supervisor.Api.V1.Supervisor.SupervisorClient(Channel);
    }

    public SupervisorLayout Layout { get; }

    /// <summary>The stand-in container's cgroup the supervisor was started in, or null (started without <c>ownCgroup</c>).</summary>
    public TestCgroup? Cgroup { get; }

    public int Pid => _process.Pid;

    public GrpcChannel Channel { get; }

    public S3Supervisor.Api.V1.Supervisor.SupervisorClient Client { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>
    /// The first ListVolumes reply, the one <see cref="WaitReadyAsync"/> waited for: what a client that asked
    /// as soon as the socket answered was told (so "Ready at the first answer" is checked on it, not on a later
    /// call). Null before that, or when the supervisor answered PermissionDenied (a peer allow-list without us).
    /// </summary>
    public ListVolumesResponse? FirstListVolumes { get; private set; }

    /// <summary>Everything the supervisor wrote (JSON log lines), for assertions such as "no secret in the log".</summary>
    public string Output => _process.Output;

    /// <summary>The executable the tests run (the AOT binary when published; the JIT assembly is copied next to the test assembly by the project reference).</summary>
    public static ProductBinary Binary => ProductBinary.ForSupervisor();

    /// <summary>
    /// Starts a supervisor on <paramref name="layout"/> (a new temp root when null) and waits until its
    /// socket answers. With <paramref name="ownCgroup"/> it runs in a fresh <see cref="TestCgroup"/> of its
    /// own in every hierarchy, joined before the binary starts, like a container's first process (needs root);
    /// <paramref name="kind"/> chooses AOT or JIT (the benchmark compares them), <see cref="Binary"/> by default.
    /// </summary>
    public static async Task<SupervisorProcess> StartAsync(SupervisorLayout? layout = null, IDictionary<string, string>? settings = null, TimeSpan? timeout = null, bool ownCgroup = false, BinaryKind? kind = null)
    {
        var ownLayout = layout is null;
        layout ??= new SupervisorLayout(Directory.CreateTempSubdirectory("s3sv-").FullName);
        // Its children's cgroups (ChildCgroupParent) carry this process's name, so the watchdog sweeps them if it dies.
        await ScratchDirectory.EnsureGuardAsync(CancellationToken.None).ConfigureAwait(false);
        var cgroup = ownCgroup ? await TestCgroup.CreateAsync("container").ConfigureAwait(false) : null;
        SupervisorProcess supervisor;
        try
        {
            supervisor = new SupervisorProcess(CapturedProcess.Start(ProductBinary.ForSupervisor(kind), Environment(layout, settings), cgroup?.ProcsFiles), layout, cgroup);
        }
        catch
        {
            if (cgroup is not null)
            {
                await cgroup.DisposeAsync().ConfigureAwait(false);
            }
            throw;
        }
        try
        {
            await supervisor.WaitReadyAsync(timeout ?? TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch
        {
            // Nothing of a failed start may keep running, hold the socket or stay in (or keep) a test cgroup.
            await supervisor.DisposeAsync().ConfigureAwait(false);
            if (ownLayout)
            {
                // The caller never saw this layout, so nobody else would clean it up.
                await CleanUpAsync(layout).ConfigureAwait(false);
            }
            throw;
        }
        return supervisor;
    }

    /// <summary>
    /// Runs a supervisor that is expected to refuse to start (invalid configuration) and returns its
    /// exit code and output; throws <see cref="TimeoutException"/> (after stopping it) if it is still
    /// running after <paramref name="timeout"/>.
    /// </summary>
    public static async Task<(int ExitCode, string Output)> RunUntilExitAsync(SupervisorLayout layout, IDictionary<string, string>? settings, TimeSpan timeout)
    {
        using var process = CapturedProcess.Start(Binary, Environment(layout, settings));
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await process.StopAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            throw new TimeoutException($"the supervisor was still running after {timeout.TotalSeconds:0} s (stopped now):\n{process.Output}");
        }
        return (process.ExitCode, process.Output);
    }

    private static Dictionary<string, string> Environment(SupervisorLayout layout, IDictionary<string, string>? settings)
    {
        Directory.CreateDirectory(layout.KubeletRoot);
        var env = new Dictionary<string, string>
        {
            ["Supervisor__SocketPath"] = layout.SocketPath,
            ["Supervisor__AllowedUids__0"] = "0",
            ["Supervisor__AllowedRoots__0"] = layout.KubeletRoot,
            ["Supervisor__StateDirectory"] = layout.StateDirectory,
            ["Supervisor__SecretsDirectory"] = layout.SecretsDirectory,
            ["Supervisor__CacheDirectory"] = Path.Combine(layout.Root, "cache"),
            ["Supervisor__MountDirectory"] = Path.Combine(layout.RunDirectory, "mounts"),
            ["Supervisor__HealthCheckInterval"] = "00:00:01",
            ["Supervisor__BackoffInitial"] = "00:00:00.200",
            ["Supervisor__ShutdownGrace"] = "00:00:10",
            // Each test supervisor's children get cgroups of their own, removed by CleanUpAsync.
            ["Supervisor__ChildCgroupParent"] = ChildCgroupParent(layout),
            ["Logging__LogLevel__Default"] = "Information",
            ["Logging__LogLevel__Microsoft.AspNetCore"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            env[key] = value;
        }
        return env;
    }

    public async Task WaitReadyAsync(TimeSpan timeout)
    {
        var stopwatch = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"the supervisor exited with code {_process.ExitCode}:\n{Output}");
            }
            try
            {
                var reply = await Client.ListVolumesAsync(new ListVolumesRequest(), deadline: DateTime.UtcNow.AddSeconds(2)).ConfigureAwait(false);
                FirstListVolumes ??= reply;
                return;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.PermissionDenied)
            {
                // It answered: the test asked for a peer allow-list that excludes us.
                return;
            }
            catch (RpcException) when (stopwatch.Elapsed < timeout)
            {
                await Task.Delay(25).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Waits until a volume reaches a state (polling GetVolume).</summary>
    public Task<Volume> WaitForStateAsync(string volumeId, VolumeState state, TimeSpan timeout, Func<Volume, bool>? also = null) =>
        WaitForStateAsync(Client, volumeId, state, timeout, also, () => Task.FromResult(Output));

    /// <summary>
    /// Polls GetVolume on <paramref name="client"/> until the volume is in <paramref name="state"/> (and
    /// <paramref name="also"/> holds); a supervisor that is not answering yet, or does not know the
    /// volume yet, is waited for. On timeout the message carries the last answer and <paramref name="output"/>.
    /// </summary>
    public static async Task<Volume> WaitForStateAsync(S3Supervisor.Api.V1.Supervisor.SupervisorClient client, string volumeId, VolumeState state, TimeSpan timeout, Func<Volume, bool>? also, Func<Task<string>> output)
    {
        var stopwatch = Stopwatch.StartNew();
        Volume? last = null;
        while (stopwatch.Elapsed < timeout)
        {
            try
            {
                last = await client.GetVolumeAsync(new GetVolumeRequest { VolumeId = volumeId }, deadline: DateTime.UtcNow.AddSeconds(5)).ConfigureAwait(false);
                if (last.State == state && (also is null || also(last)))
                {
                    return last;
                }
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.NotFound or StatusCode.Unavailable or StatusCode.DeadlineExceeded)
            {
            }
            await Task.Delay(50).ConfigureAwait(false);
        }
        throw new TimeoutException($"volume {volumeId} did not reach {state} within {timeout}; last: {last}\n{await output().ConfigureAwait(false)}");
    }

    /// <summary>
    /// How long a test stays dead between killing a supervisor and starting the next one. kubelet's
    /// restart back-off is 10 s and more, so a real restart is never immediate; and restarted within
    /// about 1 s, a dead FUSE mount still answers a plain stat from FUSE's attribute cache, which once
    /// hid a rebuild bug (staged volumes dropped because Directory.Exists is false on a dead mount).
    /// </summary>
    public static readonly TimeSpan RestartDelay = TimeSpan.FromSeconds(3);

    /// <summary>
    /// The node without a supervisor between one supervisor's end and the next one's start: <paramref name="delay"/>
    /// (<see cref="RestartDelay"/> unless given, never less), and as long as <paramref name="whileDown"/> takes when
    /// given (what the test watches happen meanwhile, e.g. "containers keep doing I/O"; started at once).
    /// Every restart gap of a test goes through here or one of the helpers built on it
    /// (<see cref="KillAndWaitLikeARuntimeAsync"/>, <see cref="KillCgroupAndWaitLikeARuntimeAsync"/>,
    /// <see cref="StopAndWaitLikeARuntimeAsync"/>, <see cref="KillSupervisorOnlyAndWaitAsync"/>).
    /// </summary>
    public static async Task RestartGapAsync(TimeSpan? delay = null, Func<Task>? whileDown = null)
    {
        var gap = CheckGap(delay);
        // Not a sleep before an assertion: the gap is the scenario (the node without a supervisor).
        await Task.WhenAll(Task.Delay(gap), whileDown is null ? Task.CompletedTask : whileDown()).ConfigureAwait(false);
    }

    private static TimeSpan CheckGap(TimeSpan? delay)
    {
        var gap = delay ?? RestartDelay;
        if (gap < RestartDelay)
        {
            throw new ArgumentOutOfRangeException(nameof(delay), gap, $"a restart gap under {RestartDelay.TotalSeconds} s does not model a real restart");
        }
        return gap;
    }

    /// <summary>
    /// What a container runtime does to a dead supervisor before kubelet starts the next one: SIGKILL
    /// to it and its children (<see cref="KillAsync"/>), then the gap (<see cref="RestartGapAsync"/>).
    /// </summary>
    public async Task KillAndWaitLikeARuntimeAsync(TimeSpan? delay = null, Func<Task>? whileDown = null)
    {
        CheckGap(delay);
        await KillAsync().ConfigureAwait(false);
        await RestartGapAsync(delay, whileDown).ConfigureAwait(false);
    }

    /// <summary>SIGKILL to the supervisor and every descendant (its s3fs children), as when its container dies.</summary>
    public async Task KillAsync()
    {
        var victims = ProcessTree.Descendants(Pid).Prepend(Pid).ToArray();
        foreach (var pid in victims)
        {
            ProcessTree.Signal(pid, 9);
        }
        await _process.WaitForExitAsync().ConfigureAwait(false);
        await ProcessTree.WaitGoneAsync(victims, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
    }

    /// <summary>
    /// What a container runtime does when the supervisor's container dies (runc kill --all, podman
    /// kill): SIGKILL to every process in the container's cgroup until its cgroup.procs is empty in
    /// every hierarchy, then the cgroup is removed. Unlike <see cref="KillAsync"/> this follows
    /// cgroups, not the process tree: a child moved out of the container's cgroups survives, and a
    /// process inside dies whoever its parent is. Needs <c>ownCgroup</c> at start.
    /// </summary>
    public async Task KillCgroupLikeARuntimeAsync()
    {
        var cgroup = Cgroup ?? throw new InvalidOperationException("the supervisor was started without ownCgroup: true, so it has no container cgroup to kill");
        await cgroup.KillAllAsync().ConfigureAwait(false);
        await _process.WaitForExitAsync().ConfigureAwait(false);
        await cgroup.RemoveAsync().ConfigureAwait(false);
    }

    /// <summary><see cref="KillCgroupLikeARuntimeAsync"/>, then the gap before the next start (<see cref="RestartGapAsync"/>).</summary>
    public async Task KillCgroupAndWaitLikeARuntimeAsync(TimeSpan? delay = null, Func<Task>? whileDown = null)
    {
        CheckGap(delay);
        await KillCgroupLikeARuntimeAsync().ConfigureAwait(false);
        await RestartGapAsync(delay, whileDown).ConfigureAwait(false);
    }

    /// <summary>SIGTERM (graceful shutdown) and wait.</summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
        {
            ProcessTree.Signal(Pid, 15);
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(40));
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        return _process.ExitCode;
    }

    /// <summary>
    /// What kubelet does for a restart or an upgrade: SIGTERM (<see cref="StopAsync"/>; the children live on),
    /// then the gap before the next start (<see cref="RestartGapAsync"/>). Returns the supervisor's exit code.
    /// </summary>
    public async Task<int> StopAndWaitLikeARuntimeAsync(TimeSpan? delay = null, Func<Task>? whileDown = null)
    {
        CheckGap(delay);
        var code = await StopAsync().ConfigureAwait(false);
        await RestartGapAsync(delay, whileDown).ConfigureAwait(false);
        return code;
    }

    /// <summary>SIGKILL to the supervisor alone (its children live on, as when they run outside its container's cgroup), and wait until it is gone.</summary>
    public async Task KillSupervisorOnlyAsync()
    {
        ProcessTree.Signal(Pid, 9);
        await _process.WaitForExitAsync().ConfigureAwait(false);
    }

    /// <summary><see cref="KillSupervisorOnlyAsync"/>, then the gap before the next start (<see cref="RestartGapAsync"/>).</summary>
    public async Task KillSupervisorOnlyAndWaitAsync(TimeSpan? delay = null, Func<Task>? whileDown = null)
    {
        CheckGap(delay);
        await KillSupervisorOnlyAsync().ConfigureAwait(false);
        await RestartGapAsync(delay, whileDown).ConfigureAwait(false);
    }

    /// <summary>The Drain call (every s3fs stopped gracefully), then the supervisor's own exit.</summary>
    public async Task<int> DrainAsync(TimeSpan? timeout = null)
    {
        var response = await Client.DrainAsync(new DrainRequest(), deadline: DateTime.UtcNow.Add(timeout ?? TimeSpan.FromSeconds(60))).ConfigureAwait(false);
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        return response.Stopped;
    }

    /// <summary>pids of the s3fs children right now.</summary>
    public IReadOnlyList<int> Children() => ProcessTree.Descendants(Pid).ToArray();

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        try
        {
            if (!_process.HasExited)
            {
                await StopAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            await KillAsync().ConfigureAwait(false);
        }
        Channel.Dispose();
        _process.Dispose();
        if (Cgroup is not null)
        {
            // Whatever is still in the stand-in container (children a test left inside) goes with it.
            await Cgroup.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The parent of a test supervisor's per-volume cgroups: one segment, a <see cref="TestCgroup"/> name
    /// (this test process, "volumes", a hash of the layout's root), so parallel tests never share one,
    /// every supervisor started on the same root (a restart) finds its predecessor's, and the sweep
    /// removes it when this process dies before <see cref="CleanUpAsync"/>.
    /// </summary>
    public static string ChildCgroupParent(SupervisorLayout layout)
    {
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(layout.Root));
        return TestCgroup.NameFor("volumes", Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(root)))[..12]);
    }

    /// <summary>
    /// Kills every process that names a path under the layout's root (the s3fs children: a supervisor
    /// stopped with SIGTERM leaves them running, and an adopted one is no longer its descendant), then
    /// lazily unmounts everything under the root (deepest first), kills what is left in the layout's
    /// per-volume cgroups and removes them in every hierarchy, and deletes the root.
    /// </summary>
    public static async Task CleanUpAsync(SupervisorLayout layout)
    {
        ProcessTree.KillNaming(layout.Root);
        MountCleaner.UnmountUnder(layout.Root);
        var children = TestCgroup.For(ChildCgroupParent(layout));
        await children.KillAllAsync().ConfigureAwait(false);
        await children.RemoveAsync().ConfigureAwait(false);
        try
        {
            Directory.Delete(layout.Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>The one process-tree question the test kit's <see cref="ProcessInfo"/> does not answer: who descends from whom.</summary>
public static class ProcessTree
{
    public static IEnumerable<int> Descendants(int pid)
    {
        var parents = new Dictionary<int, List<int>>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var child))
            {
                continue;
            }
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                var parent = int.Parse(fields[1], CultureInfo.InvariantCulture);
                if (!parents.TryGetValue(parent, out var list))
                {
                    parents[parent] = list = [];
                }
                list.Add(child);
            }
            catch (IOException)
            {
            }
        }
        var result = new List<int>();
        var queue = new Queue<int>([pid]);
        while (queue.Count > 0)
        {
            foreach (var child in parents.GetValueOrDefault(queue.Dequeue()) ?? [])
            {
                result.Add(child);
                queue.Enqueue(child);
            }
        }
        return result;
    }

    public static void Signal(int pid, int signal) => ProcessInfo.Signal(pid, signal);

    /// <summary>The processes whose command line names a path at or under <paramref name="root"/>.</summary>
    public static IReadOnlyList<int> Naming(string root)
    {
        var prefix = root.TrimEnd('/') + "/";
        var result = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == System.Environment.ProcessId)
            {
                continue;
            }
            try
            {
                var argv = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                if (argv.Any(a => a.StartsWith(prefix, StringComparison.Ordinal) || a.Contains("=" + prefix, StringComparison.Ordinal) || a.Contains("," + prefix, StringComparison.Ordinal)))
                {
                    result.Add(pid);
                }
            }
            catch (IOException)
            {
            }
        }
        return result;
    }

    /// <summary>SIGKILL to every process naming a path under <paramref name="root"/>, and wait (bounded) until they are gone.</summary>
    public static void KillNaming(string root)
    {
        var victims = Naming(root);
        foreach (var pid in victims)
        {
            Signal(pid, 9);
        }
        WaitGoneAsync(victims, TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
    }

    public static bool Alive(int pid) => ProcessInfo.IsRunning(pid);

    public static async Task WaitGoneAsync(IEnumerable<int> pids, TimeSpan timeout)
    {
        var stopwatch = Stopwatch.StartNew();
        while (pids.Any(ProcessInfo.IsRunning) && stopwatch.Elapsed < timeout)
        {
            await Task.Delay(20).ConfigureAwait(false);
        }
    }
}

/// <summary>Clears mounts a test left behind.</summary>
public static class MountCleaner
{
    /// <summary>Lazily unmounts everything at or below <paramref name="root"/>, deepest (and topmost layer) first.</summary>
    public static void UnmountUnder(string root)
    {
        for (var pass = 0; pass < 5; pass++)
        {
            var mounts = MountTable.Under(root);
            if (mounts.Count == 0)
            {
                return;
            }
            foreach (var mount in mounts.Reverse().OrderByDescending(m => m.MountPoint.Length))
            {
                _ = Interop.Native.UnmountDetach(mount.MountPoint);
            }
        }
    }
}

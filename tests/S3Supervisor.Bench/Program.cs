using System.Diagnostics;
using System.Runtime.InteropServices;
using S3Supervisor.Bench;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"bench: {e.Message}\n\n{BenchOptions.Usage}");
    return 2;
}
if (options.Help)
{
    Console.Out.WriteLine(BenchOptions.Usage);
    return 0;
}

// Ctrl-C / SIGTERM: stop measuring and run every clean-up below (mounts, containers, processes, RGW).
using var stop = new CancellationTokenSource();
void OnSignal(PosixSignalContext context)
{
    context.Cancel = true;
    Out.Progress($"{context.Signal}: stopping and cleaning up");
    stop.Cancel();
}
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
var ct = stop.Token;

var missing = Prerequisites.RootMissing() ?? Prerequisites.FuseMissing() ?? Prerequisites.S3fsMissing() ?? Prerequisites.RadosgwMissing() ?? Prerequisites.MountNamespacesMissing();
if (missing is not null)
{
    Console.Error.WriteLine($"bench: cannot run: {missing}");
    return 2;
}
foreach (var jit in new[] { ProductBinary.ForSupervisor(BinaryKind.Jit), ProductBinary.ForPlugin(BinaryKind.Jit) })
{
    if (!File.Exists(jit.Path))
    {
        Console.Error.WriteLine($"bench: {jit.Path} is missing (build tests/S3Supervisor.Bench, which references the supervisor and the plugin)");
        return 2;
    }
}

var total = Stopwatch.StartNew();
Out.Note("S3Supervisor benchmark: every figure below was measured in this run; ratios are against bare s3fs measured in this same run.");
await HostFacts.PrintAsync(ct);

RgwServer? rgw = null;
var exitCode = 0;
try
{
    Out.Progress("starting the S3 test server (Ceph RGW on loopback)");
    rgw = await RgwServer.StartAsync(cancellationToken: ct);
    Out.Note($"S3 server: Ceph RGW at {rgw.Endpoint}, up in {Fmt.Ms(rgw.StartupTime)}");
    var context = new BenchContext(rgw);

    if (options.Startup)
    {
        await StartupBench.RunAsync(context, options, ct);
    }
    if (options.DataPath)
    {
        await DataPathBench.RunAsync(context, options, ct);
    }
    if (options.Rebuild)
    {
        await RebuildBench.RunAsync(context, options, ct);
    }
}
catch (Exception e) when (ct.IsCancellationRequested)
{
    // A signal to the process group also reaches our children (containers, supervisors), so what
    // breaks first need not be an OperationCanceledException.
    Console.Error.WriteLine($"bench: interrupted ({e.GetType().Name}: {e.Message.Split('\n')[0]})");
    exitCode = 130;
}
catch (Exception e)
{
    Console.Error.WriteLine($"bench: FAILED: {e}");
    exitCode = 1;
}
finally
{
    Out.Progress("cleaning up");
    if (rgw is not null)
    {
        await rgw.DisposeAsync();
    }
}

Out.Note(string.Empty);
Out.Note($"load average at the end: {HostFacts.LoadAverage} (other work on this host slows every figure, the supervisor's JIT start most; compare runs made on a quiet host)");
Out.Note(exitCode == 0 ? $"bench: OK in {total.Elapsed.TotalSeconds:0} s" : $"bench: FAILED (exit {exitCode}) after {total.Elapsed.TotalSeconds:0} s");
return exitCode;

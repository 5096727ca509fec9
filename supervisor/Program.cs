// s3supervisor: the one long-lived process on a node that mounts S3 volumes.
//
// It owns every s3fs child (one per volume, mounted at the CSI staging path), every bind mount
// of a staging path onto a pod's target path, and the private tmpfs holding each volume's
// credentials. The CSI plugin, a separate restartable container, only calls this process's
// gRPC API on a unix socket, so a plugin crash or upgrade never touches a mount.
//
// What survives what:
//   - plugin restart/upgrade: everything (mounts live here);
//   - an s3fs crash: the volume is healed here (new s3fs, binds re-made, containers repaired);
//   - this process's restart or upgrade (SIGTERM, a crash, its container killed): every s3fs lives on
//     in its own session and cgroup and is adopted by the next start; what died with it is rebuilt
//     from the journal (StateDirectory), kubelet's directories and the Kubernetes API server;
//   - `s3supervisor drain`: the one way to stop every child (before removing the driver from a node).
//
// `s3supervisor` with no verb serves; `s3supervisor list|get|watch|remount|drain` is the operator CLI.
using Microsoft.Extensions.Options;
using S3Supervisor.Common;
using S3Supervisor.Supervisor.Api;
using S3Supervisor.Supervisor.Cli;
using S3Supervisor.Supervisor.Hosting;
using S3Supervisor.Supervisor.Interop;

if (OperatorCli.IsCommandLine(args))
{
    return await OperatorCli.RunAsync(args);
}

// A parent that ignored SIGCHLD would make the kernel reap our children behind .NET's back.
Libc.ResetSigchldToDefault();
// Nothing inherited (or opened later without O_CLOEXEC) may leak into an s3fs child.
Libc.CloseRangeCloexec(3);

// Much of a mount's life is a blocking system call on a pool thread (posix_spawn, mount(2) and friends,
// cgroupfs writes, statx through FUSE that waits for s3fs): with the pool's default minimum (one thread
// per core) a rebuild of 50 volumes on 2 cores started them about one at a time, and ListVolumes
// queued behind them for up to 0.8 s. Threads beyond the minimum are only made when work waits.
ThreadPool.GetMinThreads(out var minWorkers, out var minIo);
ThreadPool.SetMinThreads(Math.Max(minWorkers, 64), minIo);

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.Logging.AddJsonConsole(o => o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ");
builder.Services.AddSupervisor(builder.Configuration);

var app = builder.Build();
// A malformed protobuf message is INVALID_ARGUMENT: grpc-dotnet decodes before any interceptor runs
// and would answer UNKNOWN.
app.UseRequestFrameValidation(S3Supervisor.Api.V1.Supervisor.Descriptor, Grpc.Health.V1.Health.Descriptor);
app.MapGrpcService<SupervisorService>();
app.MapGrpcHealthChecksService();
app.MapGet("/metrics", (S3Supervisor.Supervisor.Observability.SupervisorMetrics metrics, S3Supervisor.Supervisor.Mounts.VolumeManager volumes) =>
    Results.Text(metrics.Render(volumes.List()), "text/plain; version=0.0.4; charset=utf-8"));

try
{
    await app.StartAsync();
}
catch (OptionsValidationException e)
{
    Console.Error.WriteLine($"s3supervisor: invalid configuration: {string.Join(" ", e.Failures)}");
    return 2;
}
catch (AggregateException e) when (e.InnerExceptions.All(i => i is OptionsValidationException))
{
    // More than one section is invalid: the host validated them all, list every problem.
    Console.Error.WriteLine($"s3supervisor: invalid configuration: {string.Join(" ", e.InnerExceptions.Cast<OptionsValidationException>().SelectMany(i => i.Failures))}");
    return 2;
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
{
    Console.Error.WriteLine($"s3supervisor: cannot start: {e.Message}");
    return 1;
}
var options = app.Services.GetRequiredService<IOptions<SupervisorOptions>>().Value;
SupervisorHosting.SecureSocket(options);
app.Logger.LogInformation("s3supervisor listening on {Socket}", options.SocketPath);
StartupMemory.ReleaseWhenStarted(app.Lifetime);
await app.WaitForShutdownAsync();
// Disposing the host flushes the console logger's queue: without it the last lines of a stop (what
// was left running, what was unmounted) can be lost when the process exits (the NativeAOT binary exits
// fast enough to lose them). Safe since SIGTERM no longer stops children: disposing the volume manager
// after its shutdown does nothing more.
await app.DisposeAsync();
return 0;

using System.Globalization;
using Grpc.Core;
using S3Supervisor.Api.V1;
using S3Supervisor.Common;
using S3Supervisor.Supervisor.Mounts;
using S3Supervisor.Supervisor.Observability;

namespace S3Supervisor.Supervisor.Cli;

/// <summary>
/// The operator's view of a node: `s3supervisor list|get ID|watch [ID]|remount ID|remount --all --rolling|drain [--socket PATH] [--json]`.
/// Talks to the supervisor's socket like the plugin does (the caller's uid must be allowed).
/// </summary>
public static class OperatorCli
{
    private const string Usage = "usage: s3supervisor list|get VOLUME_ID|watch [VOLUME_ID]|remount VOLUME_ID|remount --all --rolling|drain [--socket PATH] [--json]";
    private static readonly string[] Verbs = ["list", "get", "watch", "remount", "drain", "help", "--help"];

    /// <summary>
    /// Whether a command line is the CLI's: a verb first, or one of its flags first (`--socket PATH list`).
    /// Anything else starts the server, which takes only configuration there (`--Section:Key=value`):
    /// a CLI flag must never start a second supervisor with the default paths.
    /// </summary>
    public static bool IsCommandLine(string[] args) => args.Length > 0 && (Verbs.Contains(args[0]) || args[0] is "--socket" or "--json");

    public static async Task<int> RunAsync(string[] args)
    {
        var socket = Environment.GetEnvironmentVariable("S3SUPERVISOR_SOCKET") ?? "/run/s3supervisor/supervisor.sock";
        var json = false;
        var rest = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--socket" when i + 1 < args.Length:
                    socket = args[++i];
                    break;
                case "--json":
                    json = true;
                    break;
                default:
                    rest.Add(args[i]);
                    break;
            }
        }
        if (rest.Count == 0)
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        if (rest[0] is "help" or "--help")
        {
            Console.WriteLine(Usage);
            return 0;
        }
        using var channel = UnixSocketChannel.Create(socket);
        var client = new S3Supervisor.Api.V1.Supervisor.SupervisorClient(channel);
        try
        {
            switch (rest[0])
            {
                case "list":
                    var list = await client.ListVolumesAsync(new ListVolumesRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
                    if (json)
                    {
                        Console.WriteLine(Google.Protobuf.JsonFormatter.Default.Format(list));
                    }
                    else
                    {
                        PrintTable(list.Volumes);
                    }
                    return 0;
                case "get" when rest.Count == 2:
                    var volume = await client.GetVolumeAsync(new GetVolumeRequest { VolumeId = rest[1] }, deadline: DateTime.UtcNow.AddSeconds(10));
                    Console.WriteLine(new Google.Protobuf.JsonFormatter(Google.Protobuf.JsonFormatter.Settings.Default.WithIndentation()).Format(volume));
                    return 0;
                case "remount" when rest.Count == 3 && rest.Contains("--all") && rest.Contains("--rolling"):
                    return await RollingRemountAsync(client);
                case "drain" when rest.Count == 1:
                    var drained = await client.DrainAsync(new DrainRequest(), deadline: DateTime.UtcNow.AddMinutes(10));
                    Console.WriteLine($"drained: {drained.Stopped} s3fs stopped; the supervisor exits, and the next one rebuilds every volume");
                    return 0;
                case "remount" when rest.Count == 2 && rest[1] != "--all":
                    var healed = await client.RemountVolumeAsync(new RemountVolumeRequest { VolumeId = rest[1] }, deadline: DateTime.UtcNow.AddMinutes(2));
                    Console.WriteLine($"{healed.VolumeId}: {VolumeStates.Name(healed.State)} (s3fs pid {healed.Pid}, restarts {healed.RestartCount})");
                    return 0;
                case "watch":
                    using (var call = client.WatchVolumes(new WatchVolumesRequest { VolumeId = rest.Count > 1 ? rest[1] : string.Empty, IncludeCurrent = true }))
                    {
                        await foreach (var e in call.ResponseStream.ReadAllAsync())
                        {
                            Console.WriteLine(json
                                ? Google.Protobuf.JsonFormatter.Default.Format(e)
                                : $"{e.Time.ToDateTimeOffset().ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} {e.VolumeId} {VolumeStates.Name(e.State)} {e.Reason}: {e.Message}");
                        }
                    }
                    return 0;
                default:
                    Console.Error.WriteLine(Usage);
                    return 2;
            }
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && !File.Exists(socket))
        {
            // The transport's own words ("Cannot assign requested address (localhost:80)") name neither
            // the socket nor the likely cause.
            Console.Error.WriteLine($"s3supervisor: no supervisor socket at {socket}: is the supervisor running on this node (kubectl exec into its container), or is the socket elsewhere (--socket PATH)?");
            return 1;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
        {
            Console.Error.WriteLine($"s3supervisor: the supervisor at {socket} does not answer (it may be starting or stopped): {e.Status.Detail}");
            return 1;
        }
        catch (RpcException e)
        {
            Console.Error.WriteLine($"s3supervisor: {e.StatusCode}: {e.Status.Detail}");
            return 1;
        }
    }

    /// <summary>
    /// One volume at a time, each remount followed by the repair of the containers that use it, so a new
    /// s3fs binary (an upgraded image) reaches every volume while at most one is briefly remounting.
    /// Stops at the first failure and says which volume it was.
    /// </summary>
    private static async Task<int> RollingRemountAsync(S3Supervisor.Api.V1.Supervisor.SupervisorClient client)
    {
        var volumes = (await client.ListVolumesAsync(new ListVolumesRequest(), deadline: DateTime.UtcNow.AddSeconds(10))).Volumes;
        var done = 0;
        foreach (var volume in volumes)
        {
            var started = System.Diagnostics.Stopwatch.StartNew();
            Volume healed;
            try
            {
                healed = await client.RemountVolumeAsync(new RemountVolumeRequest { VolumeId = volume.VolumeId, WaitForContainerRepair = true }, deadline: DateTime.UtcNow.AddMinutes(5));
            }
            catch (RpcException e)
            {
                Console.Error.WriteLine($"[{done + 1}/{volumes.Count}] {volume.VolumeId}: {e.StatusCode}: {e.Status.Detail}; stopped here, {done} volume(s) remounted, {volumes.Count - done - 1} not yet");
                return 1;
            }
            done++;
            Console.WriteLine($"[{done}/{volumes.Count}] {healed.VolumeId}: {VolumeStates.Name(healed.State)} (s3fs pid {volume.Pid} -> {healed.Pid}) in {started.ElapsedMilliseconds} ms");
        }
        Console.WriteLine($"remounted {done} volume(s), one at a time");
        return 0;
    }

    private static void PrintTable(IEnumerable<Volume> volumes)
    {
        Console.WriteLine($"{"VOLUME",-40} {"STATE",-11} {"PID",7} {"RESTARTS",8} {"TARGETS",7}  SOURCE");
        foreach (var v in volumes)
        {
            var source = S3Location.Of(v.Source);
            Console.WriteLine($"{v.VolumeId,-40} {VolumeStates.Name(v.State),-11} {v.Pid,7} {v.RestartCount,8} {v.Targets.Count,7}  {source}{(v.LastError.Length > 0 ? "  last error: " + v.LastError : string.Empty)}");
        }
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace S3Supervisor.TestKit;

/// <summary>
/// A throwaway S3 server for tests and the demo: a single-node Ceph cluster (one mon, one OSD on
/// the in-memory memstore, no mgr) plus radosgw, all on 127.0.0.1, every file (conf, logs, admin
/// sockets, pid files, data) under one scratch directory passed with <c>-c</c>, ports picked at run
/// time. RGW checks request signatures, so credential tests mean something against it.
/// <para>
/// Configuration and order of steps follow the measured recipe in S3-TEST-SERVER.md: auth none only
/// works together with crc messenger modes; paxos propose interval 0.05 s (radosgw creates its pools
/// one map epoch at a time: 3 s instead of 16 s); <c>tcp_nodelay=1</c> on the beast frontend (every s3fs
/// listing otherwise waits ~40 ms for Nagle and delayed ACKs).
/// </para>
/// Dispose stops exactly the daemons this instance started (newest first: SIGTERM, short grace,
/// SIGKILL) and deletes the directory. If the test process dies instead, the
/// <see cref="ScratchDirectory"/> watchdog kills them within about a second.
/// </summary>
public sealed class RgwServer : IAsyncDisposable
{
    /// <summary>The user created at start.</summary>
    public const string UserId = "test";

    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(3);
    private readonly ScratchDirectory directory;
    private readonly RgwOptions options;
    private readonly List<Daemon> daemons = [];
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private readonly int monV2Port;
    private readonly int monV1Port;
    private int disposed;

    private RgwServer(ScratchDirectory directory, RgwOptions options, int port, int monV2Port, int monV1Port)
    {
        this.directory = directory;
        this.options = options;
        Port = port;
        this.monV2Port = monV2Port;
        this.monV1Port = monV1Port;
        Endpoint = $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";
        AccessKey = options.AccessKey;
        SecretKey = options.SecretKey;
    }

    /// <summary>http://127.0.0.1:PORT</summary>
    public string Endpoint { get; }

    public int Port { get; }

    public string AccessKey { get; }

    public string SecretKey { get; }

    /// <summary>Signing region; RGW's default zonegroup accepts us-east-1.</summary>
    public string Region { get; } = "us-east-1";

    /// <summary>The cluster's directory (conf, log/, run/, data/).</summary>
    public string Directory => directory.FullPath;

    /// <summary>ceph.conf of this cluster, for <c>ceph -c</c> / <c>radosgw-admin -c</c> by hand.</summary>
    public string ConfigPath => directory.Combine("ceph.conf");

    /// <summary>Wall time from <see cref="StartAsync"/> to the first answer of radosgw (buckets included).</summary>
    public TimeSpan StartupTime { get; private set; }

    /// <summary>PIDs of the daemons this instance started (mon, osd, rgw), oldest first.</summary>
    public IReadOnlyList<int> ProcessIds => daemons.Select(d => d.Pid).ToList();

    /// <summary>
    /// What a demo or a shell needs to use this server (RGW_ENDPOINT, RGW_ACCESS_KEY, RGW_SECRET_KEY,
    /// RGW_REGION, CEPH_CONF, RGW_PIDS), the same names the reference start script prints.
    /// </summary>
    public IReadOnlyDictionary<string, string> EnvironmentVariables => new Dictionary<string, string>
    {
        ["RGW_ENDPOINT"] = Endpoint,
        ["RGW_ACCESS_KEY"] = AccessKey,
        ["RGW_SECRET_KEY"] = SecretKey,
        ["RGW_REGION"] = Region,
        ["CEPH_CONF"] = ConfigPath,
        ["RGW_PIDS"] = string.Join(' ', ProcessIds),
    };

    /// <summary>
    /// Brings a fresh cluster up and returns once radosgw answers and the requested buckets exist.
    /// Throws <see cref="RgwStartException"/> (with the tail of the Ceph logs) on failure, after
    /// stopping whatever it had started.
    /// </summary>
    public static async Task<RgwServer> StartAsync(RgwOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new RgwOptions();
        var missing = Prerequisites.RootMissing() ?? Prerequisites.RadosgwMissing();
        if (missing is not null)
        {
            throw new RgwStartException($"cannot start RGW: {missing}", "");
        }

        for (var attempt = 1; ; attempt++)
        {
            var directory = await ScratchDirectory.CreateAsync("rgw", cancellationToken).ConfigureAwait(false);
            var ports = LoopbackPorts.Free(3);
            var server = new RgwServer(directory, options, ports[0], ports[1], ports[2]);
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(options.StartTimeout);
                try
                {
                    await server.BootAsync(timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"RGW did not come up within {options.StartTimeout.TotalSeconds:0} s");
                }

                return server;
            }
            catch (Exception e)
            {
                var tail = server.LogTail();
                await server.DisposeAsync().ConfigureAwait(false);
                if (e is OperationCanceledException)
                {
                    throw;
                }

                // Ports are probed free, yet another process may take one before a daemon binds it.
                if (attempt < 3 && (tail.Contains("Address already in use", StringComparison.Ordinal) || tail.Contains("unable to bind", StringComparison.Ordinal)))
                {
                    options.Log?.Invoke($"port collision, retrying with other ports: {e.Message}");
                    continue;
                }

                throw new RgwStartException($"RGW start failed: {e.Message}", tail, e);
            }
        }
    }

    /// <summary>An S3 client for this server (path-style, plain HTTP, signed for <see cref="Region"/>); other keys for credential tests.</summary>
    public IAmazonS3 CreateClient(string? accessKey = null, string? secretKey = null) =>
        CreateClient(Endpoint, accessKey ?? AccessKey, secretKey ?? SecretKey, Region);

    /// <summary>An S3 client for any S3 endpoint, configured the way RGW (and most non-AWS S3 servers) need it.</summary>
    public static IAmazonS3 CreateClient(string endpoint, string accessKey, string secretKey, string region)
    {
        var config = new AmazonS3Config
        {
            ServiceURL = endpoint,
            ForcePathStyle = true,
            AuthenticationRegion = region,
            // AWSSDK v4 adds CRC trailers to every upload by default; Ceph 16 does not understand them.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            MaxErrorRetry = 2,
            Timeout = TimeSpan.FromSeconds(30),
        };
        return new AmazonS3Client(new BasicAWSCredentials(accessKey, secretKey), config);
    }

    public async Task CreateBucketAsync(string bucket, CancellationToken cancellationToken = default)
    {
        using var client = CreateClient();
        await client.PutBucketAsync(new PutBucketRequest { BucketName = bucket }, cancellationToken).ConfigureAwait(false);
    }

    public async Task PutObjectTextAsync(string bucket, string key, string text, CancellationToken cancellationToken = default)
    {
        using var client = CreateClient();
        await client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = key, ContentBody = text, UseChunkEncoding = false }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<string> GetObjectTextAsync(string bucket, string key, CancellationToken cancellationToken = default)
    {
        using var client = CreateClient();
        using var response = await client.GetObjectAsync(bucket, key, cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(response.ResponseStream, Encoding.UTF8);
        return await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>True if the object exists (HEAD 200), false on 404.</summary>
    public async Task<bool> ObjectExistsAsync(string bucket, string key, CancellationToken cancellationToken = default)
    {
        using var client = CreateClient();
        try
        {
            await client.GetObjectMetadataAsync(bucket, key, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>All keys in <paramref name="bucket"/> (under <paramref name="prefix"/>), in S3 order.</summary>
    public async Task<IReadOnlyList<string>> ListKeysAsync(string bucket, string? prefix = null, CancellationToken cancellationToken = default)
    {
        using var client = CreateClient();
        var keys = new List<string>();
        var request = new ListObjectsV2Request { BucketName = bucket, Prefix = prefix };
        ListObjectsV2Response response;
        do
        {
            response = await client.ListObjectsV2Async(request, cancellationToken).ConfigureAwait(false);
            keys.AddRange((response.S3Objects ?? []).Select(o => o.Key));
            request.ContinuationToken = response.NextContinuationToken;
        }
        while (response.IsTruncated == true);
        return keys;
    }

    /// <summary>Creates another S3 user (e.g. to test that one user's keys cannot reach another's bucket).</summary>
    public async Task CreateUserAsync(string userId, string accessKey, string secretKey, CancellationToken cancellationToken = default)
    {
        var result = await RunAsync(
            "radosgw-admin",
            ["-c", ConfigPath, "user", "create", $"--uid={userId}", $"--display-name={userId}", $"--access-key={accessKey}", $"--secret={secretKey}"],
            TimeSpan.FromSeconds(60),
            cancellationToken).ConfigureAwait(false);
        result.EnsureSuccess($"radosgw-admin user create --uid={userId}");
    }

    /// <summary>The last lines of every Ceph log of this cluster, for failure messages.</summary>
    public string LogTail(int linesPerFile = 15)
    {
        var log = directory.Combine("log");
        if (!System.IO.Directory.Exists(log))
        {
            return "";
        }

        var text = new StringBuilder();
        foreach (var file in System.IO.Directory.GetFiles(log).Order(StringComparer.Ordinal))
        {
            string[] lines;
            try
            {
                lines = File.ReadAllLines(file);
            }
            catch (IOException)
            {
                continue;
            }

            lines = lines.Where(l => l.Length > 0).ToArray();
            if (lines.Length == 0)
            {
                continue;
            }

            text.Append("==> ").Append(Path.GetFileName(file)).Append(" <==\n");
            foreach (var line in lines.TakeLast(linesPerFile))
            {
                text.Append(line.Length > 400 ? line[..400] : line).Append('\n');
            }
        }

        return text.ToString();
    }

    /// <summary>Stops the daemons (rgw, osd, mon: SIGTERM, 3 s grace, SIGKILL) and deletes the directory.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        // Newest first: the OSD shuts down fast only while the mon is still up.
        for (var i = daemons.Count - 1; i >= 0; i--)
        {
            var daemon = daemons[i];
            var killed = await ProcessInfo.TerminateAsync(daemon.Pid, StopGrace, () => IsOurs(daemon)).ConfigureAwait(false);
            Trace(killed ? $"{daemon.Name} (pid {daemon.Pid}) killed after {StopGrace.TotalSeconds:0} s" : $"{daemon.Name} (pid {daemon.Pid}) stopped");
            daemon.Process.Dispose();
        }

        await directory.DisposeAsync().ConfigureAwait(false);
    }

    private async Task BootAsync(CancellationToken ct)
    {
        if (Encoding.UTF8.GetByteCount(directory.Combine("run", "client.rgw.a.asok")) > 107)
        {
            throw new InvalidOperationException($"{directory.FullPath} is too long for unix socket paths inside it; set {ScratchDirectory.RootVariable} to a shorter directory");
        }

        foreach (var sub in new[] { "run", "log", "crash", "data/mon.a", "data/osd.0", "data/rgw.a", "data/mgr.x" })
        {
            directory.CreateSubdirectory(sub.Split('/'));
        }

        var fsid = Guid.NewGuid().ToString();
        var osdUuid = Guid.NewGuid().ToString();
        var monAddress = $"[v2:127.0.0.1:{monV2Port.ToString(CultureInfo.InvariantCulture)},v1:127.0.0.1:{monV1Port.ToString(CultureInfo.InvariantCulture)}]";
        await File.WriteAllTextAsync(ConfigPath, Config(fsid, monAddress), ct).ConfigureAwait(false);
        await File.WriteAllTextAsync(directory.Combine("pids"), "", ct).ConfigureAwait(false);

        // mon
        var monmap = directory.Combine("monmap");
        (await RunAsync("monmaptool", ["--create", "--fsid", fsid, "--addv", "a", monAddress, monmap], TimeSpan.FromSeconds(30), ct).ConfigureAwait(false))
            .EnsureSuccess("monmaptool --create");
        await RunLoggedAsync("mon.a.mkfs", "ceph-mon", ["-c", ConfigPath, "--mkfs", "-i", "a", "--monmap", monmap], ct).ConfigureAwait(false);
        var mon = await SpawnAsync("mon.a", "ceph-mon", ["-c", ConfigPath, "-i", "a"], ct).ConfigureAwait(false);
        await WaitForStateAsync(mon, "mon_status", "leader", ct).ConfigureAwait(false);
        Trace($"mon.a up (pid {mon.Pid}) on 127.0.0.1:{monV2Port}/{monV1Port}");

        // osd (memstore: objects live in the OSD's RAM)
        (await RunAsync("ceph", ["-c", ConfigPath, "--connect-timeout", "25", "osd", "new", osdUuid], TimeSpan.FromSeconds(30), ct).ConfigureAwait(false))
            .EnsureSuccess("ceph osd new");
        await RunLoggedAsync("osd.0.mkfs", "ceph-osd", ["-c", ConfigPath, "-i", "0", "--mkfs", "--osd-uuid", osdUuid], ct).ConfigureAwait(false);
        var osd = await SpawnAsync("osd.0", "ceph-osd", ["-c", ConfigPath, "-i", "0"], ct).ConfigureAwait(false);
        await WaitForStateAsync(osd, "status", "active", ct).ConfigureAwait(false);
        Trace($"osd.0 up (pid {osd.Pid})");

        // S3 user (this also creates the default realm, zone and the RGW pools)
        var user = await RunAsync(
            "radosgw-admin",
            ["-c", ConfigPath, "user", "create", $"--uid={UserId}", $"--display-name={UserId}", $"--access-key={AccessKey}", $"--secret={SecretKey}"],
            TimeSpan.FromSeconds(120),
            ct).ConfigureAwait(false);
        await File.WriteAllTextAsync(directory.Combine("log", "user-create.err"), user.Stderr, ct).ConfigureAwait(false);
        user.EnsureSuccess("radosgw-admin user create");
        Trace($"user {UserId} created");

        // radosgw
        var rgw = await SpawnAsync("rgw.a", "radosgw", ["-c", ConfigPath, "-n", "client.rgw.a"], ct).ConfigureAwait(false);
        await WaitForHttpAsync(rgw, ct).ConfigureAwait(false);
        Trace($"radosgw answering on {Endpoint} (pid {rgw.Pid})");

        foreach (var bucket in options.Buckets)
        {
            await CreateBucketAsync(bucket, ct).ConfigureAwait(false);
        }

        if (options.Buckets.Count > 0)
        {
            Trace($"buckets created: {string.Join(' ', options.Buckets)}");
        }

        StartupTime = clock.Elapsed;
    }

    private string Config(string fsid, string monAddress)
    {
        var d = directory.FullPath;
        var memstore = options.MemstoreBytes.ToString(CultureInfo.InvariantCulture);
        var port = Port.ToString(CultureInfo.InvariantCulture);
        return $"""
            [global]
            fsid = {fsid}
            mon host = {monAddress}
            public addr = 127.0.0.1
            cluster addr = 127.0.0.1
            ms bind ipv6 = false
            # throwaway test cluster: no cephx; "none" only works with crc (not secure) msgr2 mode
            auth cluster required = none
            auth service required = none
            auth client required = none
            ms mon client mode = crc
            ms mon service mode = crc
            ms mon cluster mode = crc
            ms client mode = crc
            ms service mode = crc
            ms cluster mode = crc
            run dir = {d}/run
            admin socket = {d}/run/$name.asok
            pid file = {d}/run/$name.pid
            log file = {d}/log/$name.log
            crash dir = {d}/crash
            osd pool default size = 1
            osd pool default min size = 1
            osd pool default pg num = 8
            osd pool default pgp num = 8
            osd pool default pg autoscale mode = off
            osd crush chooseleaf type = 0
            mon allow pool size one = true
            mon allow pool delete = true
            mon warn on pool no redundancy = false
            mon max pg per osd = 1000
            mon warn on insecure global id reclaim = false
            mon warn on insecure global id reclaim allowed = false

            [mon]
            mon data = {d}/data/mon.$id
            mon cluster log file = {d}/log/$channel.log
            # commit map changes every 50 ms instead of 1 s (each RGW pool creation = 1 osdmap epoch)
            paxos propose interval = 0.05
            mon data avail warn = 1

            [mgr]
            mgr data = {d}/data/mgr.$id

            [osd]
            osd data = {d}/data/osd.$id
            osd objectstore = memstore
            memstore device bytes = {memstore}

            [client.rgw.a]
            rgw data = {d}/data/rgw.a
            rgw frontends = beast endpoint=127.0.0.1:{port} tcp_nodelay=1
            rgw thread pool size = 64
            # data is in RAM: reclaim deleted/overwritten objects quickly
            rgw gc obj min wait = 10
            rgw gc processor period = 30
            rgw dynamic resharding = false

            """;
    }

    /// <summary>
    /// Starts a daemon in the foreground (-f) in its own session (setsid: no terminal signal reaches
    /// it), stdio on a log file, and records its pid. sh execs setsid, which execs the daemon without
    /// forking (sh is not a group leader), so the pid .NET sees is the daemon's.
    /// </summary>
    private async Task<Daemon> SpawnAsync(string name, string tool, IReadOnlyList<string> arguments, CancellationToken ct)
    {
        var exe = Prerequisites.Which(tool) ?? throw new InvalidOperationException($"{tool} not found");
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("log=$1; shift; exec setsid \"$@\" >\"$log\" 2>&1 </dev/null");
        start.ArgumentList.Add("sh");
        start.ArgumentList.Add(directory.Combine("log", name + ".out"));
        start.ArgumentList.Add(exe);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.ArgumentList.Add("-f");
        start.Environment["CEPH_CONF"] = ConfigPath;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {tool}");
        var daemon = new Daemon(name, exe, process.Id, process);
        daemons.Add(daemon);
        await File.AppendAllTextAsync(directory.Combine("pids"), $"{daemon.Pid} {name} {exe} {ConfigPath}\n", ct).ConfigureAwait(false);

        // until the exec chain has reached the daemon, its cmdline is still sh's
        for (var i = 0; i < 500 && !IsOurs(daemon); i++)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{name} exited at once with code {process.ExitCode}");
            }

            await Task.Delay(2, ct).ConfigureAwait(false);
        }

        return daemon;
    }

    private bool IsOurs(Daemon daemon)
    {
        var argv = ProcessInfo.CommandLine(daemon.Pid);
        return argv.Count > 2 && argv[0] == daemon.Exe && argv.Contains(ConfigPath);
    }

    private async Task WaitForStateAsync(Daemon daemon, string command, string state, CancellationToken ct)
    {
        var socket = directory.Combine("run", daemon.Name + ".asok");
        while (true)
        {
            if (!ProcessInfo.IsRunning(daemon.Pid))
            {
                throw new InvalidOperationException($"{daemon.Name} exited during start-up");
            }

            if (await CephAdminSocket.StateAsync(socket, command, ct).ConfigureAwait(false) == state)
            {
                return;
            }

            await Task.Delay(25, ct).ConfigureAwait(false);
        }
    }

    private async Task WaitForHttpAsync(Daemon rgw, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        while (true)
        {
            if (!ProcessInfo.IsRunning(rgw.Pid))
            {
                throw new InvalidOperationException("radosgw exited during start-up");
            }

            try
            {
                using var response = await http.GetAsync(new Uri(Endpoint + "/"), ct).ConfigureAwait(false);
                if ((int)response.StatusCode < 500)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                // no answer within 2 s yet
            }

            await Task.Delay(25, ct).ConfigureAwait(false);
        }
    }

    private async Task RunLoggedAsync(string logName, string tool, IReadOnlyList<string> arguments, CancellationToken ct)
    {
        var result = await RunAsync(tool, arguments, TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
        await File.WriteAllTextAsync(directory.Combine("log", logName), result.Stdout + result.Stderr, ct).ConfigureAwait(false);
        result.EnsureSuccess($"{tool} {string.Join(' ', arguments.Skip(2))}");
    }

    private Task<ProcessResult> RunAsync(string tool, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken ct) =>
        ProcessRunner.RunAsync(
            Prerequisites.Which(tool) ?? tool,
            arguments,
            new ProcessRunOptions { Timeout = timeout, Environment = new Dictionary<string, string?> { ["CEPH_CONF"] = ConfigPath } },
            ct);

    private void Trace(string message) =>
        options.Log?.Invoke(string.Create(CultureInfo.InvariantCulture, $"[{clock.Elapsed.TotalSeconds,7:0.000}s] {message}"));

    private sealed record Daemon(string Name, string Exe, int Pid, Process Process);
}

/// <summary>RGW could not be started; <see cref="LogTail"/> holds the end of every Ceph log.</summary>
public sealed class RgwStartException : Exception
{
    public RgwStartException(string message, string logTail, Exception? inner = null)
        : base(logTail.Length == 0 ? message : $"{message}\n--- ceph logs ---\n{logTail}", inner)
    {
        LogTail = logTail;
    }

    public string LogTail { get; }
}

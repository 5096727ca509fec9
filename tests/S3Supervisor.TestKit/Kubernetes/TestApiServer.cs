using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using k8s;
using k8s.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace S3Supervisor.TestKit.Kubernetes;

/// <summary>
/// A Kubernetes API server for tests: plain HTTP on 127.0.0.1, serving the REST paths KubernetesClient
/// calls (get/list pods, PVCs, PVs, StorageClasses, Secrets; create core/v1 and events.k8s.io/v1
/// Events; /version) with bodies made of KubernetesClient's own model types and serializer, and the
/// real server's Status bodies for failures. Why not a real one: none can run on these machines, and
/// the rebuild must be tested against an API server that is down, slow or forbidding on demand.
/// </summary>
/// <remarks>
/// Not a real API server: no watch, no patch, no admission, no garbage collection; both Event APIs
/// are stored separately (a real server shows one Event through both).
/// </remarks>
public sealed class TestApiServer : IAsyncDisposable
{
    private const string KubeconfigName = "s3supervisor-test";

    private readonly Lock _gate = new();
    private readonly Dictionary<ApiResource, SortedDictionary<string, IKubernetesObject<V1ObjectMeta>>> _store = [];
    private readonly List<Corev1Event> _events = [];
    private readonly List<RecordedRequest> _requests = [];
    private readonly List<(string Resource, string? Verb)> _forbidden = [];
    private readonly SemaphoreSlim _modeChange = new(1, 1);
    private readonly TestApiServerOptions _options;
    private long _resourceVersion = 1000;
    private ApiServerMode _mode = ApiServerMode.Normal;
    private WebApplication? _app;
    private CancellationTokenSource _listening = new();
    private TaskCompletionSource _changed = NewSignal();
    private bool _portFixed;
    private bool _disposed;

    private TestApiServer(TestApiServerOptions options)
    {
        _options = options;
        Port = options.Port;
        _portFixed = options.Port != 0;
    }

    /// <summary>The TCP port on 127.0.0.1; fixed after start, also while <see cref="ApiServerMode.Down"/>.</summary>
    public int Port { get; private set; }

    /// <summary><c>http://127.0.0.1:PORT/</c>.</summary>
    public Uri BaseUri => new($"http://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}/");

    public ApiServerMode Mode
    {
        get
        {
            lock (_gate)
            {
                return _mode;
            }
        }
    }

    /// <summary>
    /// Every Event created over HTTP, oldest first, through either API. events.k8s.io/v1 Events are
    /// mapped onto the core/v1 shape (regarding → involvedObject, note → message, reportingController →
    /// reportingComponent) and keep <c>apiVersion: events.k8s.io/v1</c>; core/v1 Events have <c>v1</c>.
    /// </summary>
    public IReadOnlyList<Corev1Event> Events
    {
        get
        {
            lock (_gate)
            {
                return [.. _events];
            }
        }
    }

    /// <summary>Every request received, oldest first.</summary>
    public IReadOnlyList<RecordedRequest> Requests
    {
        get
        {
            lock (_gate)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>Starts a server on 127.0.0.1 (<paramref name="port"/> 0 picks a free port), without authentication.</summary>
    public static Task<TestApiServer> StartAsync(int port = 0, CancellationToken ct = default) =>
        StartAsync(new TestApiServerOptions { Port = port }, ct);

    public static async Task<TestApiServer> StartAsync(TestApiServerOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var server = new TestApiServer(options);
        try
        {
            await server.ListenAsync(ct);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Switches behaviour. Entering <see cref="ApiServerMode.Down"/> stops listening and drops open
    /// connections; leaving it listens again on the same <see cref="Port"/>.
    /// </summary>
    public async Task SetModeAsync(ApiServerMode mode, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(mode);
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _modeChange.WaitAsync(ct);
        try
        {
            var wasDown = Mode is ApiServerMode.DownMode;
            var goingDown = mode is ApiServerMode.DownMode;
            if (!goingDown && wasDown)
            {
                await ListenAsync(ct);
            }
            lock (_gate)
            {
                _mode = mode;
            }
            if (goingDown && !wasDown)
            {
                await StopListeningAsync();
            }
        }
        finally
        {
            _modeChange.Release();
        }
    }

    /// <summary>
    /// Answers 403 Forbidden for <paramref name="resource"/> ("secrets", "storageclasses" or
    /// "storageclasses.storage.k8s.io"), for every verb or only <paramref name="verb"/> (get, list, create, ...).
    /// </summary>
    public void ForbidResource(string resource, string? verb = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(resource);
        lock (_gate)
        {
            _forbidden.Add((resource, verb));
        }
    }

    /// <summary>Undoes every <see cref="ForbidResource"/> for <paramref name="resource"/>.</summary>
    public void AllowResource(string resource)
    {
        lock (_gate)
        {
            _forbidden.RemoveAll(f => f.Resource == resource);
        }
    }

    /// <summary>Adds an object; throws if one with that namespace and name exists. Returns what is stored (uid, resourceVersion set).</summary>
    public T Add<T>(T obj)
        where T : class, IKubernetesObject<V1ObjectMeta> => (T)Write(obj, mustNotExist: true);

    /// <summary>Adds or replaces an object (keeping the stored uid unless <paramref name="obj"/> has its own). Returns what is stored.</summary>
    public T Upsert<T>(T obj)
        where T : class, IKubernetesObject<V1ObjectMeta> => (T)Write(obj, mustNotExist: false);

    /// <summary>Upserts every object, whatever its type (e.g. <see cref="TestScenario.Objects"/>).</summary>
    public void UpsertAll(IEnumerable<IKubernetesObject<V1ObjectMeta>> objects)
    {
        ArgumentNullException.ThrowIfNull(objects);
        foreach (var obj in objects)
        {
            Write(obj, mustNotExist: false);
        }
    }

    /// <summary>Removes an object; later reads get 404. <paramref name="ns"/> is ignored for cluster-scoped types.</summary>
    public bool Remove<T>(string name, string? ns = null)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var resource = ApiResources.ForType(typeof(T));
        lock (_gate)
        {
            return Table(resource).Remove(Key(resource, ns, name));
        }
    }

    public bool Remove<T>(T obj)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        ArgumentNullException.ThrowIfNull(obj);
        return Remove<T>(obj.Metadata?.Name ?? string.Empty, obj.Metadata?.NamespaceProperty);
    }

    /// <summary>A copy of a stored object, or null.</summary>
    public T? Get<T>(string name, string? ns = null)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var resource = ApiResources.ForType(typeof(T));
        lock (_gate)
        {
            return Table(resource).TryGetValue(Key(resource, ns, name), out var stored) ? (T)resource.Clone(stored) : null;
        }
    }

    /// <summary>Copies of every stored object of one type, ordered by namespace and name.</summary>
    public IReadOnlyList<T> List<T>()
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var resource = ApiResources.ForType(typeof(T));
        lock (_gate)
        {
            return Table(resource).Values.Select(o => (T)resource.Clone(o)).ToList();
        }
    }

    public void ClearEvents()
    {
        lock (_gate)
        {
            _events.Clear();
        }
    }

    public void ClearRequests()
    {
        lock (_gate)
        {
            _requests.Clear();
        }
    }

    /// <summary>Waits until an Event matching <paramref name="predicate"/> has been created; throws <see cref="TimeoutException"/> listing what did arrive.</summary>
    public Task<Corev1Event> WaitForEventAsync(Func<Corev1Event, bool> predicate, TimeSpan timeout, CancellationToken ct = default) =>
        WaitForAsync(() => _events.FirstOrDefault(predicate), () => $"events: [{string.Join("; ", _events.Select(e => $"{e.Type} {e.Reason} {e.InvolvedObject?.Name}: {e.Message}"))}]", timeout, ct);

    /// <summary>Waits until a request matching <paramref name="predicate"/> has arrived; throws <see cref="TimeoutException"/> listing what did arrive.</summary>
    public Task<RecordedRequest> WaitForRequestAsync(Func<RecordedRequest, bool> predicate, TimeSpan timeout, CancellationToken ct = default) =>
        WaitForAsync(() => _requests.FirstOrDefault(predicate), () => $"requests: [{string.Join("; ", _requests)}]", timeout, ct);

    /// <summary>
    /// Writes a kubeconfig for this server (a bearer token only if the server requires one) and returns
    /// <paramref name="path"/>; for a separate process using <c>KubernetesClientConfiguration.BuildConfigFromConfigFile</c>.
    /// </summary>
    public string WriteKubeconfig(string path, string defaultNamespace = "default")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }
        // KubernetesClient refuses a user entry without any credentials, so an unchecked placeholder
        // token stands in when the server does not authenticate.
        var token = _options.BearerToken ?? "unchecked";
        var yaml = $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: {KubeconfigName}
              cluster:
                server: {BaseUri.ToString().TrimEnd('/')}
            contexts:
            - name: {KubeconfigName}
              context:
                cluster: {KubeconfigName}
                user: {KubeconfigName}
                namespace: {defaultNamespace}
            current-context: {KubeconfigName}
            users:
            - name: {KubeconfigName}
              user:
                token: {token}

            """;
        File.WriteAllText(path, yaml, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    /// <summary>A client configuration pointing at this server.</summary>
    public KubernetesClientConfiguration CreateClientConfiguration() => new()
    {
        Host = BaseUri.ToString(),
        AccessToken = _options.BearerToken,
    };

    /// <summary>A KubernetesClient for this server; the caller disposes it.</summary>
    public k8s.Kubernetes CreateClient() => new(CreateClientConfiguration());

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        await StopListeningAsync();
        _listening.Dispose();
        _modeChange.Dispose();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static string Key(ApiResource resource, string? ns, string name) =>
        resource.Namespaced ? $"{(string.IsNullOrEmpty(ns) ? "default" : ns)}/{name}" : name;

    private static string NextRandomSuffix()
    {
        // The alphabet apimachinery uses for generateName (no vowels, no confusable digits).
        const string alphabet = "bcdfghjklmnpqrstvwxz2456789";
        return string.Create(5, 0, (span, _) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = alphabet[System.Security.Cryptography.RandomNumberGenerator.GetInt32(alphabet.Length)];
            }
        });
    }

    private SortedDictionary<string, IKubernetesObject<V1ObjectMeta>> Table(ApiResource resource)
    {
        if (!_store.TryGetValue(resource, out var table))
        {
            table = new SortedDictionary<string, IKubernetesObject<V1ObjectMeta>>(StringComparer.Ordinal);
            _store[resource] = table;
        }
        return table;
    }

    private IKubernetesObject<V1ObjectMeta> Write(IKubernetesObject<V1ObjectMeta> obj, bool mustNotExist)
    {
        ArgumentNullException.ThrowIfNull(obj);
        var resource = ApiResources.ForType(obj.GetType());
        if (string.IsNullOrEmpty(obj.Metadata?.Name))
        {
            throw new ArgumentException($"A {resource.Kind} needs metadata.name.", nameof(obj));
        }
        lock (_gate)
        {
            var table = Table(resource);
            var key = Key(resource, obj.Metadata.NamespaceProperty, obj.Metadata.Name);
            table.TryGetValue(key, out var existing);
            if (existing is not null && mustNotExist)
            {
                throw new InvalidOperationException($"{resource.QualifiedPlural} \"{key}\" already exists.");
            }
            var stored = Stamp(resource, obj, existing);
            table[key] = stored;
            return resource.Clone(stored);
        }
    }

    /// <summary>What the API server fills in on a write: type meta, namespace, uid, creation time, resourceVersion.</summary>
    private IKubernetesObject<V1ObjectMeta> Stamp(ApiResource resource, IKubernetesObject<V1ObjectMeta> source, IKubernetesObject<V1ObjectMeta>? existing)
    {
        var obj = resource.Clone(source);
        obj.ApiVersion = resource.ApiVersion;
        obj.Kind = resource.Kind;
        var meta = obj.Metadata ??= new V1ObjectMeta();
        meta.NamespaceProperty = resource.Namespaced ? (string.IsNullOrEmpty(meta.NamespaceProperty) ? "default" : meta.NamespaceProperty) : null;
        meta.Uid = !string.IsNullOrEmpty(meta.Uid) ? meta.Uid : existing?.Metadata?.Uid ?? Guid.NewGuid().ToString();
        var now = DateTime.UtcNow;
        meta.CreationTimestamp ??= existing?.Metadata?.CreationTimestamp ?? new DateTime(now.Ticks - (now.Ticks % TimeSpan.TicksPerSecond), DateTimeKind.Utc);
        meta.ResourceVersion = (++_resourceVersion).ToString(CultureInfo.InvariantCulture);
        if (obj is V1Secret secret)
        {
            // stringData is write-only: the server merges it into data.
            if (secret.StringData is { Count: > 0 })
            {
                secret.Data ??= new Dictionary<string, byte[]>();
                foreach (var (k, v) in secret.StringData)
                {
                    secret.Data[k] = Encoding.UTF8.GetBytes(v);
                }
            }
            secret.StringData = null;
            secret.Type ??= "Opaque";
        }
        return obj;
    }

    private async Task<T> WaitForAsync<T>(Func<T?> find, Func<string> describe, TimeSpan timeout, CancellationToken ct)
        where T : class
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (find() is { } hit)
                {
                    return hit;
                }
                changed = _changed.Task;
            }
            try
            {
                await changed.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                string seen;
                lock (_gate)
                {
                    seen = describe();
                }
                throw new TimeoutException($"Nothing matched within {timeout}; {seen}");
            }
        }
    }

    private void SignalChangeLocked()
    {
        var previous = _changed;
        _changed = NewSignal();
        previous.TrySetResult();
    }

    private async Task ListenAsync(CancellationToken ct)
    {
        // Once chosen, the port is kept: a port just released by the previous Kestrel instance can
        // take a moment to be free again, so that case is retried for a while.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        var attempts = 0;
        while (true)
        {
            var port = _portFixed ? Port : PickPort();
            var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
            builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
            {
                k.AddServerHeader = false;
                k.Listen(IPAddress.Loopback, port);
            });
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
            var app = builder.Build();
            app.Run(HandleAsync);
            // The previous instance's requests are all finished or aborted by now.
            _listening.Dispose();
            _listening = new CancellationTokenSource();
            try
            {
                await app.StartAsync(ct);
            }
            catch (IOException e) when (e.InnerException is AddressInUseException && (_portFixed ? DateTime.UtcNow < deadline : ++attempts < 50))
            {
                await app.DisposeAsync();
                if (_portFixed)
                {
                    await Task.Delay(100, ct);
                }
                continue;
            }
            catch
            {
                await app.DisposeAsync();
                throw;
            }
            Port = port != 0 ? port : new Uri(app.Urls.First()).Port;
            _portFixed = true;
            _app = app;
            return;
        }
    }

    /// <summary>
    /// A random port just below the kernel's ephemeral range. Not port 0: the kernel hands out ports
    /// from that range to other listeners and to outgoing connections, and one of them could take
    /// this server's port while it is Down, so that it could not come back on the same port.
    /// </summary>
    private static int PickPort()
    {
        const string rangeFile = "/proc/sys/net/ipv4/ip_local_port_range";
        var range = File.Exists(rangeFile) ? File.ReadAllText(rangeFile).Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries) : [];
        var low = range.Length > 0 && int.TryParse(range[0], CultureInfo.InvariantCulture, out var parsed) ? parsed : 32768;
        var start = Math.Max(1024, low - 12000);
        return start >= low ? 0 : System.Security.Cryptography.RandomNumberGenerator.GetInt32(start, low);
    }

    private async Task StopListeningAsync()
    {
        var app = _app;
        _app = null;
        if (app is null)
        {
            return;
        }
        // Slow requests in flight are dropped rather than answered, as when a real server dies.
        await _listening.CancelAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await app.StopAsync(timeout.Token);
        }
        finally
        {
            await app.DisposeAsync();
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var path = request.Path.Value ?? "/";
        ApiServerMode mode;
        lock (_gate)
        {
            _requests.Add(new RecordedRequest(request.Method, path, request.QueryString.Value ?? string.Empty, DateTimeOffset.UtcNow));
            SignalChangeLocked();
            mode = _mode;
        }
        if (mode is ApiServerMode.DownMode)
        {
            // Arrived while the server was being stopped.
            context.Abort();
            return;
        }
        using var aborted = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _listening.Token);
        try
        {
            if (mode is ApiServerMode.SlowMode slow)
            {
                await Task.Delay(slow.Delay, aborted.Token);
            }
            await RespondAsync(context, path, mode, aborted.Token);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            context.Abort();
        }
    }

    private async Task RespondAsync(HttpContext context, string path, ApiServerMode mode, CancellationToken ct)
    {
        var request = context.Request;
        if (_options.BearerToken is { } token && request.Headers.Authorization.ToString() != $"Bearer {token}")
        {
            await WriteStatusAsync(context, ApiStatus.Unauthorized(), ct);
            return;
        }
        var route = Route.Parse(path);
        var verb = Verb(request.Method, route, request.Query["watch"].ToString());
        if (mode is ApiServerMode.ForbiddenMode || (route.Resource is not null && IsForbidden(route.Resource, verb)))
        {
            await WriteStatusAsync(context, ApiStatus.Forbidden(route.Resource, verb, route.Namespace, route.Name, path), ct);
            return;
        }
        if (mode is ApiServerMode.FailingMode failing)
        {
            await WriteStatusAsync(context, ApiStatus.Injected(failing.StatusCode), ct);
            return;
        }
        try
        {
            await DispatchAsync(context, route, verb, ct);
        }
        catch (SelectorException e)
        {
            await WriteStatusAsync(context, ApiStatus.BadRequest(e.Message), ct);
        }
        catch (JsonException e)
        {
            await WriteStatusAsync(context, ApiStatus.BadRequest($"the body of the request could not be decoded: {e.Message}"), ct);
        }
    }

    private async Task DispatchAsync(HttpContext context, Route route, string verb, CancellationToken ct)
    {
        switch (route)
        {
            case { Special: "version" } when verb == "get":
                await WriteJsonAsync(context, HttpStatusCode.OK, BuildVersionInfo(), ct);
                return;
            case { Special: "api" } when verb == "get":
                await WriteJsonAsync(context, HttpStatusCode.OK, new V1APIVersions
                {
                    Kind = "APIVersions",
                    Versions = ["v1"],
                    ServerAddressByClientCIDRs = [new V1ServerAddressByClientCIDR { ClientCIDR = "0.0.0.0/0", ServerAddress = $"127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}" }],
                }, ct);
                return;
            case { Special: "health" } when verb == "get":
                context.Response.ContentType = "text/plain; charset=utf-8";
                await context.Response.WriteAsync("ok", ct);
                return;
            case { Resource: null }:
                await WriteStatusAsync(context, ApiStatus.PathNotFound(), ct);
                return;
        }
        var resource = route.Resource!;
        switch (verb)
        {
            case "get":
                await GetAsync(context, resource, route, ct);
                break;
            case "list":
                await ListAsync(context, resource, route, ct);
                break;
            case "create":
                await CreateAsync(context, resource, route, ct);
                break;
            case "update":
                await UpdateAsync(context, resource, route, ct);
                break;
            case "delete":
                await DeleteAsync(context, resource, route, ct);
                break;
            case "watch":
                await WriteStatusAsync(context, ApiStatus.BadRequest("watch is not supported by the test API server"), ct);
                break;
            default:
                await WriteStatusAsync(context, ApiStatus.MethodNotAllowed(), ct);
                break;
        }
    }

    private async Task GetAsync(HttpContext context, ApiResource resource, Route route, CancellationToken ct)
    {
        IKubernetesObject<V1ObjectMeta>? found;
        lock (_gate)
        {
            found = Table(resource).GetValueOrDefault(Key(resource, route.Namespace, route.Name!));
        }
        if (found is null)
        {
            await WriteStatusAsync(context, ApiStatus.NotFound(resource, route.Name!), ct);
            return;
        }
        await WriteJsonAsync(context, HttpStatusCode.OK, found, ct);
    }

    private async Task ListAsync(HttpContext context, ApiResource resource, Route route, CancellationToken ct)
    {
        var fields = FieldSelector.Parse(context.Request.Query["fieldSelector"].ToString(), resource);
        var labels = LabelSelector.Parse(context.Request.Query["labelSelector"].ToString());
        object list;
        lock (_gate)
        {
            var items = Table(resource).Values
                .Where(o => route.Namespace is null || o.Metadata.NamespaceProperty == route.Namespace)
                .Where(fields)
                .Where(o => labels(o.Metadata.Labels))
                .ToList();
            list = resource.MakeList(items, _resourceVersion.ToString(CultureInfo.InvariantCulture));
        }
        await WriteJsonAsync(context, HttpStatusCode.OK, list, ct);
    }

    private async Task CreateAsync(HttpContext context, ApiResource resource, Route route, CancellationToken ct)
    {
        var body = await resource.ReadAsync(context.Request.Body, ct);
        if (body is null)
        {
            await WriteStatusAsync(context, ApiStatus.BadRequest("the body of the request was empty"), ct);
            return;
        }
        var meta = body.Metadata ??= new V1ObjectMeta();
        if (resource.Namespaced)
        {
            if (!string.IsNullOrEmpty(meta.NamespaceProperty) && meta.NamespaceProperty != route.Namespace)
            {
                await WriteStatusAsync(context, ApiStatus.BadRequest("the namespace of the provided object does not match the namespace sent on the request"), ct);
                return;
            }
            meta.NamespaceProperty = route.Namespace;
        }
        if (string.IsNullOrEmpty(meta.Name) && !string.IsNullOrEmpty(meta.GenerateName))
        {
            meta.Name = meta.GenerateName + NextRandomSuffix();
        }
        var causes = string.IsNullOrEmpty(meta.Name)
            ? [new V1StatusCause { Field = "metadata.name", Message = "Required value: name or generateName is required", Reason = "FieldValueRequired" }]
            : body switch
            {
                Corev1Event e => EventRules.ValidateCore(e, route.Namespace ?? string.Empty),
                Eventsv1Event e => EventRules.ValidateEventsV1(e, route.Namespace ?? string.Empty),
                _ => [],
            };
        if (causes.Count > 0)
        {
            await WriteStatusAsync(context, ApiStatus.Invalid(resource, meta.Name ?? string.Empty, causes), ct);
            return;
        }
        // A client never sets these; the server does.
        meta.Uid = null;
        meta.ResourceVersion = null;
        meta.CreationTimestamp = null;
        IKubernetesObject<V1ObjectMeta>? stored = null;
        lock (_gate)
        {
            var table = Table(resource);
            var key = Key(resource, route.Namespace, meta.Name!);
            if (!table.ContainsKey(key))
            {
                stored = Stamp(resource, body, existing: null);
                table[key] = stored;
                switch (stored)
                {
                    case Corev1Event e:
                        _events.Add((Corev1Event)resource.Clone(e));
                        break;
                    case Eventsv1Event e:
                        _events.Add(EventRules.ToCore((Eventsv1Event)resource.Clone(e)));
                        break;
                }
                SignalChangeLocked();
            }
        }
        if (stored is null)
        {
            await WriteStatusAsync(context, ApiStatus.AlreadyExists(resource, meta.Name!), ct);
            return;
        }
        await WriteJsonAsync(context, HttpStatusCode.Created, stored, ct);
    }

    private async Task UpdateAsync(HttpContext context, ApiResource resource, Route route, CancellationToken ct)
    {
        var body = await resource.ReadAsync(context.Request.Body, ct);
        if (body?.Metadata is null || body.Metadata.Name != route.Name)
        {
            await WriteStatusAsync(context, ApiStatus.BadRequest($"the name of the object ({body?.Metadata?.Name}) does not match the name on the URL ({route.Name})"), ct);
            return;
        }
        if (resource.Namespaced)
        {
            body.Metadata.NamespaceProperty ??= route.Namespace;
            if (body.Metadata.NamespaceProperty != route.Namespace)
            {
                await WriteStatusAsync(context, ApiStatus.BadRequest("the namespace of the provided object does not match the namespace sent on the request"), ct);
                return;
            }
        }
        IKubernetesObject<V1ObjectMeta>? stored = null;
        lock (_gate)
        {
            var table = Table(resource);
            var key = Key(resource, route.Namespace, route.Name!);
            if (table.TryGetValue(key, out var existing))
            {
                body.Metadata.Uid = null;
                body.Metadata.CreationTimestamp = null;
                stored = Stamp(resource, body, existing);
                table[key] = stored;
            }
        }
        if (stored is null)
        {
            await WriteStatusAsync(context, ApiStatus.NotFound(resource, route.Name!), ct);
            return;
        }
        await WriteJsonAsync(context, HttpStatusCode.OK, stored, ct);
    }

    private async Task DeleteAsync(HttpContext context, ApiResource resource, Route route, CancellationToken ct)
    {
        IKubernetesObject<V1ObjectMeta>? removed;
        lock (_gate)
        {
            Table(resource).Remove(Key(resource, route.Namespace, route.Name!), out removed);
        }
        if (removed is null)
        {
            await WriteStatusAsync(context, ApiStatus.NotFound(resource, route.Name!), ct);
            return;
        }
        await WriteJsonAsync(context, HttpStatusCode.OK, removed, ct);
    }

    private bool IsForbidden(ApiResource resource, string verb)
    {
        lock (_gate)
        {
            return _forbidden.Any(f => (f.Resource == resource.Plural || f.Resource == resource.QualifiedPlural) && (f.Verb is null || f.Verb == verb));
        }
    }

    private static string Verb(string method, Route route, string watch) => method switch
    {
        "GET" when route.Name is null && watch is "true" or "1" => "watch",
        "GET" when route.Name is null && route.Resource is not null => "list",
        "GET" => "get",
        "POST" when route.Name is null && (route.Namespace is not null || route.Resource is { Namespaced: false }) => "create",
        "PUT" when route.Name is not null => "update",
        "DELETE" when route.Name is not null => "delete",
        "PATCH" when route.Name is not null => "patch",
        _ => method.ToLowerInvariant(),
    };

    private VersionInfo BuildVersionInfo()
    {
        var parts = _options.KubernetesVersion.Split('.');
        return new VersionInfo
        {
            Major = parts[0],
            Minor = parts.Length > 1 ? parts[1] : "0",
            EmulationMajor = parts[0],
            EmulationMinor = parts.Length > 1 ? parts[1] : "0",
            MinCompatibilityMajor = parts[0],
            MinCompatibilityMinor = parts.Length > 1 ? parts[1] : "0",
            GitVersion = $"v{_options.KubernetesVersion}",
            GitCommit = "0000000000000000000000000000000000000000",
            GitTreeState = "clean",
            BuildDate = "2025-01-01T00:00:00Z",
            GoVersion = "go1.24.0",
            Compiler = "gc",
            Platform = "linux/amd64",
        };
    }

    private static async Task WriteStatusAsync(HttpContext context, V1Status status, CancellationToken ct)
    {
        context.Response.StatusCode = status.Code ?? 500;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(ApiStatus.ToJson(status), ct);
    }

    private static async Task WriteJsonAsync(HttpContext context, HttpStatusCode code, object body, CancellationToken ct)
    {
        context.Response.StatusCode = (int)code;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(KubernetesJson.Serialize(body), ct);
    }

    /// <summary>
    /// A parsed URL: <c>/api/v1[/namespaces/NS]/PLURAL[/NAME]</c> or <c>/apis/GROUP/VERSION[/namespaces/NS]/PLURAL[/NAME]</c>,
    /// or one of the few non-resource paths.
    /// </summary>
    private sealed record Route(ApiResource? Resource, string? Namespace, string? Name, string? Special)
    {
        public static Route Parse(string path)
        {
            var segments = path.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString).ToArray();
            switch (segments)
            {
                case ["version"]:
                    return new Route(null, null, null, "version");
                case ["api"]:
                    return new Route(null, null, null, "api");
                case ["healthz" or "readyz" or "livez"]:
                    return new Route(null, null, null, "health");
                case ["api", var version, .. var rest]:
                    return Resolve(string.Empty, version, rest);
                case ["apis", var group, var version, .. var rest]:
                    return Resolve(group, version, rest);
                default:
                    return new Route(null, null, null, null);
            }
        }

        private static Route Resolve(string group, string version, string[] rest)
        {
            var none = new Route(null, null, null, null);
            switch (rest)
            {
                case ["namespaces", var ns, var plural, .. var tail] when tail.Length <= 1:
                    {
                        var resource = ApiResources.ForPath(group, version, plural);
                        return resource is { Namespaced: true } ? new Route(resource, ns, tail.FirstOrDefault(), null) : none;
                    }
                case [var plural, .. var tail] when tail.Length <= 1:
                    {
                        var resource = ApiResources.ForPath(group, version, plural);
                        // A namespaced resource by name without a namespace does not exist; listing it across namespaces does.
                        return resource is null || (resource.Namespaced && tail.Length == 1) ? none : new Route(resource, null, tail.FirstOrDefault(), null);
                    }
                default:
                    return none;
            }
        }
    }
}

using System.Globalization;
using k8s;
using k8s.Models;

namespace S3Supervisor.TestKit.Containers;

/// <summary>
/// How this test machine stands in for a node's kubelet when it runs a pod of deploy/ under podman:
/// where the manifests' host paths are here, the node's name, and the few settings that must differ.
/// </summary>
public sealed class PodHost
{
    /// <summary>The manifests' kubelet root.</summary>
    public const string ManifestKubeletRoot = "/var/lib/kubelet";

    /// <summary>
    /// This node's kubelet root. "/var/lib/kubelet" in any host path, mount path or environment value of
    /// the manifests means this path (a kubelet started with --root-dir), inside the containers too: kubelet
    /// passes host paths to the CSI calls, so they must be the same inside the node pod, as on a real node.
    /// </summary>
    public required string KubeletRoot { get; init; }

    /// <summary>Where the pod's emptyDir and projected volumes live (kubelet's pods/&lt;uid&gt;/volumes): they outlive container restarts, as kubelet's do.</summary>
    public required string PodDirectory { get; init; }

    /// <summary>Other hostPath paths of the manifests and where they are on this machine (e.g. /var/lib/s3supervisor); a path not listed is used as it is (/dev/fuse, /sys/fs/cgroup).</summary>
    public IReadOnlyDictionary<string, string> HostPaths { get; init; } = new Dictionary<string, string>();

    public string NodeName { get; init; } = "node-a";

    public string Namespace { get; init; } = "s3supervisor";

    /// <summary>The files of the pod's projected service-account volume (token, ca.crt, namespace, ...).</summary>
    public IReadOnlyDictionary<string, string> ServiceAccountFiles { get; init; } = new Dictionary<string, string>();

    /// <summary>Environment that differs on this test node, per container name, on top of the manifest's (each one is printed, see <see cref="PodmanPod.Overrides"/>).</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> EnvironmentOverrides { get; init; } = new Dictionary<string, IReadOnlyDictionary<string, string>>();

    /// <summary>Run a pod that is not hostNetwork in the host's network anyway (the only S3 server of a test is on the host's loopback).</summary>
    public bool HostNetwork { get; init; }

    /// <summary>A label on every container, so that a sweep finds the containers of a run that died.</summary>
    public string RunLabel { get; init; } = "s3supervisor-test";

    public string Rewrite(string path) =>
        path == ManifestKubeletRoot || path.StartsWith(ManifestKubeletRoot + "/", StringComparison.Ordinal)
            ? KubeletRoot + path[ManifestKubeletRoot.Length..]
            : path;
}

/// <summary>
/// One pod of deploy/ (the node DaemonSet's or the controller Deployment's template) run under podman
/// the way kubelet and a CRI runtime run it: the same images, environment, volumes, mount propagation,
/// users, groups, capabilities, read-only roots and memory limits, translated field by field from the
/// manifest (nothing written twice). What it cannot run here it says (<see cref="NotRun"/>: the CSI
/// sidecars come from registry.k8s.io, which no machine here reaches). A container can be killed
/// (<c>podman kill</c>: SIGKILL to every process in it), stopped (SIGTERM, then SIGKILL after the grace
/// period) and started again, from the same or another image tag, while the pod's volumes stay.
/// </summary>
public sealed class PodmanPod : IAsyncDisposable
{
    private readonly V1PodSpec _spec;
    private readonly PodHost _host;
    private readonly List<string> _tmpfs = [];
    private readonly HashSet<string> _started = [];
    private bool _prepared;

    public PodmanPod(string name, V1PodSpec spec, PodHost host)
    {
        Name = name;
        _spec = spec;
        _host = host;
    }

    public string Name { get; }

    /// <summary>Containers of the manifest this machine cannot run, with the reason.</summary>
    public IReadOnlyList<string> NotRun => _spec.Containers
        .Where(c => !IsOurs(c.Image))
        .Select(c => $"{c.Name} ({c.Image}: no image registry is reachable here)")
        .ToList();

    /// <summary>The environment this node sets on top of the manifest, as "container: NAME=value" lines.</summary>
    public IReadOnlyList<string> Overrides => _host.EnvironmentOverrides
        .SelectMany(c => c.Value.Select(kv => $"{c.Key}: {kv.Key}={kv.Value}"))
        .ToList();

    public static string ContainerName(string pod, string container) => $"{pod}-{container}";

    public string ContainerName(string container) => ContainerName(Name, container);

    /// <summary>Reads a manifest of deploy/ (e.g. "base/node-daemonset.yaml") into its model type.</summary>
    public static T Manifest<T>(string relativePath)
    {
        var root = Podman.RepositoryRoot ?? throw new InvalidOperationException("the repository is not above this test");
        return KubernetesYaml.Deserialize<T>(File.ReadAllText(Path.Combine(root, "deploy", relativePath)));
    }

    /// <summary>What kubelet does before the first container: the pod's volumes, then its init containers, in order, each to completion.</summary>
    public async Task PrepareAsync(string? tag = null)
    {
        if (_prepared)
        {
            return;
        }
        _prepared = true;
        foreach (var volume in _spec.Volumes ?? [])
        {
            await PrepareVolumeAsync(volume).ConfigureAwait(false);
        }
        foreach (var init in _spec.InitContainers ?? [])
        {
            var arguments = RunArguments(init, tag ?? Podman.ImageTag, detach: false);
            var result = await Podman.RunAsync(arguments).ConfigureAwait(false);
            await Podman.RunAsync(["rm", "-f", "-t", "0", ContainerName(init.Name)]).ConfigureAwait(false);
            if (!result.Succeeded)
            {
                throw new InvalidOperationException($"init container {init.Name} failed with {result.ExitCode}: {result.Stderr.Trim()} {result.Stdout.Trim()}");
            }
        }
    }

    /// <summary>Starts a container of the pod (replacing a dead one of the same name) from <paramref name="tag"/> of its image; returns its podman id.</summary>
    public async Task<string> StartAsync(string container, string? tag = null)
    {
        await PrepareAsync(tag).ConfigureAwait(false);
        var spec = Container(container);
        await Podman.RunAsync(["rm", "-f", "-t", "0", ContainerName(container)]).ConfigureAwait(false);
        _started.Add(container);
        return await Podman.CheckedAsync(RunArguments(spec, tag ?? Podman.ImageTag, detach: true)).ConfigureAwait(false);
    }

    /// <summary><c>podman kill</c>: SIGKILL to every process of the container (its cgroup), as a runtime kills a crashed or OOM-killed container; then waits until it is gone.</summary>
    public async Task KillAsync(string container)
    {
        await Podman.RunAsync(["kill", "--signal", "KILL", ContainerName(container)]).ConfigureAwait(false);
        await Podman.RunAsync(["wait", ContainerName(container)], TimeSpan.FromSeconds(60)).ConfigureAwait(false);
    }

    /// <summary><c>podman stop</c>: SIGTERM, SIGKILL after the pod's terminationGracePeriodSeconds, as kubelet stops a container for an upgrade. Returns the exit code.</summary>
    public async Task<int> StopAsync(string container)
    {
        var grace = (int)(_spec.TerminationGracePeriodSeconds ?? 30);
        await Podman.CheckedAsync(["stop", "-t", grace.ToString(CultureInfo.InvariantCulture), ContainerName(container)], TimeSpan.FromSeconds(grace + 60)).ConfigureAwait(false);
        var code = await Podman.CheckedAsync(["inspect", "--format", "{{.State.ExitCode}}", ContainerName(container)]).ConfigureAwait(false);
        return int.Parse(code, CultureInfo.InvariantCulture);
    }

    /// <summary>The host pid of the container's first process (0 when it is not running).</summary>
    public async Task<int> PidAsync(string container)
    {
        var result = await Podman.RunAsync(["inspect", "--format", "{{.State.Pid}}", ContainerName(container)]).ConfigureAwait(false);
        return result.Succeeded && int.TryParse(result.Stdout.Trim(), CultureInfo.InvariantCulture, out var pid) ? pid : 0;
    }

    /// <summary>The container's output (podman logs: stdout and stderr).</summary>
    public async Task<string> LogsAsync(string container)
    {
        var result = await Podman.RunAsync(["logs", ContainerName(container)]).ConfigureAwait(false);
        return result.Stdout + result.Stderr;
    }

    /// <summary>The podman run arguments of a container of this pod, from its manifest (public so that a test can show or check them).</summary>
    public IReadOnlyList<string> RunArguments(string container, string tag) => RunArguments(Container(container), tag, detach: true);

    private V1Container Container(string name) =>
        _spec.Containers.FirstOrDefault(c => c.Name == name) ?? throw new ArgumentException($"the pod has no container {name}", nameof(name));

    private static bool IsOurs(string image) => image.StartsWith("s3supervisor/", StringComparison.Ordinal);

    private List<string> RunArguments(V1Container container, string tag, bool detach)
    {
        if (!IsOurs(container.Image))
        {
            throw new InvalidOperationException($"container {container.Name}: image {container.Image} cannot be run here (no registry)");
        }
        var pod = _spec.SecurityContext;
        var security = container.SecurityContext;
        var args = new List<string> { "run", "--name", ContainerName(container.Name), "--pull=never", "--label", _host.RunLabel };
        if (detach)
        {
            args.Add("-d");
        }
        args.Add(_spec.HostNetwork == true || _host.HostNetwork ? "--network=host" : "--network=none");
        if (_spec.HostPID == true)
        {
            args.Add("--pid=host");
        }
        if (security?.Privileged == true)
        {
            args.Add("--privileged");
        }
        var user = security?.RunAsUser ?? pod?.RunAsUser;
        var group = security?.RunAsGroup ?? pod?.RunAsGroup;
        if ((security?.RunAsNonRoot ?? pod?.RunAsNonRoot) == true && user is null or 0)
        {
            // kubelet refuses to start it ("container has runAsNonRoot and image will run as root").
            throw new InvalidOperationException($"container {container.Name}: runAsNonRoot with user {user?.ToString(CultureInfo.InvariantCulture) ?? "of the image"}");
        }
        if (user is not null)
        {
            args.Add($"--user={user}{(group is null ? "" : $":{group}")}");
        }
        if (pod?.FsGroup is { } fsGroup)
        {
            args.Add($"--group-add={fsGroup}");
        }
        if (security?.ReadOnlyRootFilesystem == true)
        {
            // Without --read-only-tmpfs=false podman would put a tmpfs on /tmp, /run and /var/tmp, which
            // kubelet does not: a directory the manifests forgot would work here and fail in a cluster.
            args.AddRange(["--read-only", "--read-only-tmpfs=false"]);
        }
        if (security?.Capabilities?.Drop?.Contains("ALL") == true)
        {
            args.Add("--cap-drop=all");
        }
        foreach (var capability in security?.Capabilities?.Add ?? [])
        {
            args.Add($"--cap-add={capability}");
        }
        if (security?.AllowPrivilegeEscalation == false)
        {
            args.Add("--security-opt=no-new-privileges");
        }
        if (container.Resources?.Limits is { } limits && limits.TryGetValue("memory", out var memory))
        {
            args.Add($"--memory={memory.ToInt64().ToString(CultureInfo.InvariantCulture)}b");
        }
        foreach (var (key, value) in Environment(container))
        {
            args.AddRange(["--env", $"{key}={value}"]);
        }
        foreach (var mount in container.VolumeMounts ?? [])
        {
            args.AddRange(MountArguments(mount));
        }
        if (container.Command is { Count: > 0 } command)
        {
            args.Add("--entrypoint=" + System.Text.Json.JsonSerializer.Serialize(command));
        }
        args.Add(Podman.LocalImage(container.Image, tag));
        args.AddRange(container.Args ?? []);
        return args;
    }

    private List<KeyValuePair<string, string>> Environment(V1Container container)
    {
        var env = new List<KeyValuePair<string, string>>();
        foreach (var variable in container.Env ?? [])
        {
            string value;
            if (variable.ValueFrom?.FieldRef is { } field)
            {
                value = field.FieldPath switch
                {
                    "spec.nodeName" => _host.NodeName,
                    "metadata.namespace" => _host.Namespace,
                    "metadata.name" => Name,
                    _ => throw new NotSupportedException($"container {container.Name}: env {variable.Name} from field {field.FieldPath}"),
                };
            }
            else if (variable.ValueFrom is not null)
            {
                throw new NotSupportedException($"container {container.Name}: env {variable.Name} from a source other than a field");
            }
            else
            {
                value = _host.Rewrite(variable.Value ?? "");
            }
            env.Add(new(variable.Name, value));
        }
        if (_host.EnvironmentOverrides.TryGetValue(container.Name, out var overrides))
        {
            foreach (var (key, value) in overrides)
            {
                env.RemoveAll(kv => kv.Key == key);
                env.Add(new(key, value));
            }
        }
        return env;
    }

    private IEnumerable<string> MountArguments(V1VolumeMount mount)
    {
        var volume = (_spec.Volumes ?? []).FirstOrDefault(v => v.Name == mount.Name) ?? throw new InvalidOperationException($"volumeMount {mount.Name} names no volume");
        var source = SourceOf(volume);
        if (mount.SubPath is { Length: > 0 } subPath)
        {
            source = Path.Combine(source, subPath);
        }
        var options = new List<string>();
        if (mount.ReadOnlyProperty == true)
        {
            options.Add("ro");
        }
        switch (mount.MountPropagation)
        {
            case "Bidirectional":
                options.Add("rshared");
                break;
            case "HostToContainer":
                options.Add("rslave");
                break;
            default:
                break;
        }
        var target = _host.Rewrite(mount.MountPath);
        return ["-v", $"{source}:{target}{(options.Count == 0 ? "" : ":" + string.Join(',', options))}"];
    }

    private string VolumeDirectory(string kind, string name) => Path.Combine(_host.PodDirectory, "volumes", kind, name);

    private string SourceOf(V1Volume volume)
    {
        if (volume.HostPath is { } hostPath)
        {
            return _host.HostPaths.TryGetValue(hostPath.Path, out var mapped) ? mapped : _host.Rewrite(hostPath.Path);
        }
        if (volume.EmptyDir is not null)
        {
            return VolumeDirectory("kubernetes.io~empty-dir", volume.Name);
        }
        if (volume.Projected is not null)
        {
            return VolumeDirectory("kubernetes.io~projected", volume.Name);
        }
        throw new NotSupportedException($"volume {volume.Name}: only hostPath, emptyDir and projected volumes are run here");
    }

    private async Task PrepareVolumeAsync(V1Volume volume)
    {
        var source = SourceOf(volume);
        if (volume.HostPath is { } hostPath)
        {
            switch (hostPath.Type)
            {
                case "DirectoryOrCreate":
                    Directory.CreateDirectory(source);
                    break;
                case "Directory" when !Directory.Exists(source):
                    throw new InvalidOperationException($"hostPath volume {volume.Name}: {source} is not a directory (type Directory)");
                case "CharDevice" when !File.Exists(source):
                    throw new InvalidOperationException($"hostPath volume {volume.Name}: {source} is missing (type CharDevice)");
                default:
                    break;
            }
            return;
        }
        Directory.CreateDirectory(source);
        if (volume.EmptyDir is { } emptyDir)
        {
            if (emptyDir.Medium == "Memory")
            {
                var size = emptyDir.SizeLimit?.ToInt64() ?? 64L << 20;
                await ProcessRunner.RunCheckedAsync("mount", ["-t", "tmpfs", "-o", $"size={size},mode=0777", "tmpfs", source]).ConfigureAwait(false);
                _tmpfs.Add(source);
            }
            // kubelet's emptyDir: 0777; with an fsGroup, owned by that group with setgid.
            if (_spec.SecurityContext?.FsGroup is { } fsGroup)
            {
                await ProcessRunner.RunCheckedAsync("chgrp", [fsGroup.ToString(CultureInfo.InvariantCulture), source]).ConfigureAwait(false);
                await ProcessRunner.RunCheckedAsync("chmod", ["2777", source]).ConfigureAwait(false);
            }
            else
            {
                await ProcessRunner.RunCheckedAsync("chmod", ["0777", source]).ConfigureAwait(false);
            }
        }
        else if (volume.Projected is not null)
        {
            foreach (var (name, content) in _host.ServiceAccountFiles)
            {
                await File.WriteAllTextAsync(Path.Combine(source, name), content).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Removes every container of the pod and unmounts its memory-backed volumes; the host paths stay (the caller's).</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var container in _started)
        {
            await Podman.RunAsync(["rm", "-f", "-t", "0", ContainerName(container)]).ConfigureAwait(false);
        }
        foreach (var tmpfs in _tmpfs)
        {
            await ProcessRunner.RunAsync("umount", ["-l", tmpfs]).ConfigureAwait(false);
        }
    }
}

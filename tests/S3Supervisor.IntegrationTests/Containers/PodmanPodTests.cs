using k8s.Models;
using S3Supervisor.TestKit.Containers;

namespace S3Supervisor.IntegrationTests.Containers;

/// <summary>
/// What the manifests of deploy/base turn into under podman (no podman needed): the translation the
/// container scenario relies on, and through it the manifests' promises (an unprivileged plugin that
/// shares only the socket directory, a privileged supervisor with Bidirectional kubelet propagation).
/// </summary>
public sealed class PodmanPodTests
{
    private static PodmanPod NodePod() => new("node", PodmanPod.Manifest<V1DaemonSet>("base/node-daemonset.yaml").Spec.Template.Spec, new PodHost
    {
        KubeletRoot = "/srv/node/kubelet",
        PodDirectory = "/srv/node/pod",
        HostPaths = new Dictionary<string, string> { ["/var/lib/s3supervisor"] = "/srv/node/state" },
        NodeName = "node-x",
    });

    private static List<string> Volumes(IReadOnlyList<string> args) =>
        args.Select((a, i) => (a, i)).Where(x => x.a == "-v").Select(x => args[x.i + 1]).ToList();

    private static List<string> Environment(IReadOnlyList<string> args) =>
        args.Select((a, i) => (a, i)).Where(x => x.a == "--env").Select(x => args[x.i + 1]).ToList();

    [Fact]
    public void Plugin_RunsAs65532ReadOnlyNoCapabilities_SharesOnlyTheSocketDirectory()
    {
        var args = NodePod().RunArguments("plugin", "1.2.3");

        Assert.Contains("--user=65532:65532", args);
        Assert.Contains("--group-add=65532", args);
        Assert.Contains("--read-only", args);
        Assert.Contains("--read-only-tmpfs=false", args);
        Assert.Contains("--cap-drop=all", args);
        Assert.Contains("--security-opt=no-new-privileges", args);
        Assert.DoesNotContain("--privileged", args);
        Assert.Equal(
            ["/srv/node/kubelet/plugins/s3.csi.s3supervisor.io:/csi", "/srv/node/pod/volumes/kubernetes.io~empty-dir/socket-dir:/run/s3supervisor", "/srv/node/pod/volumes/kubernetes.io~empty-dir/plugin-tmp:/tmp"],
            Volumes(args));
        Assert.Contains("Csi__NodeId=node-x", Environment(args));
        Assert.Contains("localhost/s3supervisor/plugin:1.2.3", args);
    }

    [Fact]
    public void Supervisor_PrivilegedHostPidAndNetwork_KubeletRootBidirectionalAtTheSamePath()
    {
        var args = NodePod().RunArguments("supervisor", "1.2.3");

        Assert.Contains("--privileged", args);
        Assert.Contains("--pid=host", args);
        Assert.Contains("--network=host", args);
        var volumes = Volumes(args);
        // kubelet passes host paths to the CSI calls: the kubelet root is the same path inside.
        Assert.Contains("/srv/node/kubelet:/srv/node/kubelet:rshared", volumes);
        Assert.Contains("/srv/node/state:/var/lib/s3supervisor", volumes);
        Assert.Contains("/var/cache/s3supervisor:/var/cache/s3supervisor", volumes);
        Assert.Contains("/sys/fs/cgroup:/host/sys/fs/cgroup", volumes);
        Assert.Contains("/srv/node/pod/volumes/kubernetes.io~empty-dir/secrets-dir:/run/s3supervisor/secrets", volumes);
        Assert.Contains("/srv/node/pod/volumes/kubernetes.io~projected/kube-api-access:/var/run/secrets/kubernetes.io/serviceaccount:ro", volumes);
        var env = Environment(args);
        Assert.Contains("Kubernetes__KubeletRoot=/srv/node/kubelet", env);
        Assert.Contains("Supervisor__AllowedRoots__0=/srv/node/kubelet", env);
        Assert.Contains("Kubernetes__NodeName=node-x", env);
        Assert.Contains(args, a => a.StartsWith("--memory=", StringComparison.Ordinal));
    }

    [Fact]
    public void Sidecars_FromRegistryK8sIo_AreListedAsNotRunWithTheReason()
    {
        var notRun = NodePod().NotRun;

        Assert.Equal(2, notRun.Count);
        Assert.All(notRun, n => Assert.Contains("registry.k8s.io", n, StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => NodePod().RunArguments("no-such-container", "1"));
    }
}

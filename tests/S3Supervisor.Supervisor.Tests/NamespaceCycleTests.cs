using S3Supervisor.Supervisor.Mounts;
using S3Supervisor.TestKit.Architecture;

namespace S3Supervisor.Supervisor.Tests;

/// <summary>A folder is a feature and a namespace: features may lean on each other one way only.</summary>
public sealed class NamespaceCycleTests
{
    private static readonly NamespaceGraph Graph = NamespaceGraph.Of(typeof(VolumeManager).Assembly, "S3Supervisor.Supervisor");

    [Fact]
    public void Namespaces_SupervisorAssembly_HaveNoCycles()
    {
        var cycles = Graph.Cycles().Select(c => string.Join(" -> ", c)).ToArray();

        Assert.True(cycles.Length == 0, "namespace cycles: " + string.Join("; ", cycles));
    }

    [Fact]
    public void NamespaceGraph_SupervisorAssembly_SeesDependenciesFromBodiesAndSignatures()
    {
        // Hosting registers the volume manager (a method body); Recovery's notifier implements a Mounts interface.
        Assert.Contains("S3Supervisor.Supervisor.Mounts", Graph.Edges["S3Supervisor.Supervisor.Hosting"]);
        Assert.Contains("S3Supervisor.Supervisor.Mounts", Graph.Edges["S3Supervisor.Supervisor.Recovery"]);
        Assert.Contains("S3Supervisor.Supervisor.Interop", Graph.Edges["S3Supervisor.Supervisor.Mounts"]);
    }
}

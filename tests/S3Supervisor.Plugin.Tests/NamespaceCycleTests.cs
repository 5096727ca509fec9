using S3Supervisor.Plugin.Csi;
using S3Supervisor.TestKit.Architecture;

namespace S3Supervisor.Plugin.Tests;

/// <summary>A folder is a feature and a namespace: features may lean on each other one way only.</summary>
public sealed class NamespaceCycleTests
{
    private static readonly NamespaceGraph Graph = NamespaceGraph.Of(typeof(NodeService).Assembly, "S3Supervisor.Plugin");

    [Fact]
    public void Namespaces_PluginAssembly_HaveNoCycles()
    {
        var cycles = Graph.Cycles().Select(c => string.Join(" -> ", c)).ToArray();

        Assert.True(cycles.Length == 0, "namespace cycles: " + string.Join("; ", cycles));
    }

    [Fact]
    public void NamespaceGraph_PluginAssembly_SeesDependenciesFromBodiesAndSignatures()
    {
        // Hosting maps the CSI services; the controller service hands requests to Storage's provisioner.
        Assert.Contains("S3Supervisor.Plugin.Csi", Graph.Edges["S3Supervisor.Plugin.Hosting"]);
        Assert.Contains("S3Supervisor.Plugin.Storage", Graph.Edges["S3Supervisor.Plugin.Csi"]);
    }
}

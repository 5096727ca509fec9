using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Containers;
using Xunit.Abstractions;

namespace S3Supervisor.IntegrationTests.Containers;

/// <summary>
/// The node pod of deploy/ under podman, from the images scripts/images.sh built (scripts/test.sh
/// builds them with --prebuilt before the tests): the whole <see cref="ContainerScenario"/>, the same
/// one `bash scripts/local-node.sh --containers` prints. Skipped (strict: failed) where podman or the
/// images are missing.
/// </summary>
[CollectionDefinition(Name)]
public sealed class ContainerCollection
{
    public const string Name = "Containers";
}

[Collection(ContainerCollection.Name)]
public sealed class ContainerNodeTests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task NodePodOfDeploy_UnderPodman_EveryScenarioCheckHolds()
    {
        Requires.Check(await ContainerScenario.MissingAsync());
        var scenario = new ContainerScenario(output.WriteLine);
        try
        {
            await scenario.RunAsync();
        }
        finally
        {
            await scenario.DisposeAsync();
        }
        var failed = scenario.Report.Failed.ToList();
        Assert.True(failed.Count == 0, $"{failed.Count} of {scenario.Report.Checks.Count} checks failed: {string.Join("; ", failed.Select(c => $"{c.Step}: {c.Detail}"))}");
        Assert.True(scenario.Report.Checks.Count >= 20, $"only {scenario.Report.Checks.Count} checks ran");
    }
}

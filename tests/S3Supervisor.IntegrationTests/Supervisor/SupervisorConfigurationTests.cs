using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Kubernetes;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.IntegrationTests.Supervisor;

/// <summary>
/// Invalid configuration stops the supervisor at start, with a message and a non-zero exit; in
/// particular a kubeconfig the rebuild could never use, which otherwise only shows after a restart.
/// </summary>
public sealed class SupervisorConfigurationTests : IAsyncLifetime
{
    private readonly SupervisorLayout _layout = new(Directory.CreateTempSubdirectory("s3sv-cfg-").FullName);

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => SupervisorProcess.CleanUpAsync(_layout);

    [SkippableFact]
    public async Task Start_KubeconfigUserWithoutCredentials_ExitsNonZeroNamingIt()
    {
        Requires.Root();
        var kubeconfig = Path.Combine(_layout.Root, "kubeconfig");
        // A cluster and a context, but a user with no token, certificate, password, exec or auth-provider.
        await File.WriteAllTextAsync(kubeconfig, """
            apiVersion: v1
            kind: Config
            clusters:
            - name: local
              cluster:
                server: http://127.0.0.1:6443
            contexts:
            - name: local
              context:
                cluster: local
                user: nobody
            current-context: local
            users:
            - name: nobody
              user: {}

            """);

        var (code, output) = await SupervisorProcess.RunUntilExitAsync(_layout, Settings(kubeconfig), Eventually.DefaultTimeout);

        Assert.NotEqual(0, code);
        Assert.Contains("invalid configuration", output, StringComparison.Ordinal);
        Assert.Contains($"Kubernetes:Kubeconfig '{kubeconfig}'", output, StringComparison.Ordinal);
        Assert.Contains("user 'nobody' of context 'local' has no user credentials", output, StringComparison.Ordinal);
        Assert.False(File.Exists(_layout.SocketPath));
        Assert.Empty(MountTable.Under(_layout.Root));
    }

    [SkippableFact]
    public async Task Start_TestApiServerKubeconfig_Accepted()
    {
        Requires.Root();
        await using var api = await TestApiServer.StartAsync();
        var kubeconfig = api.WriteKubeconfig(Path.Combine(_layout.Root, "kubeconfig"));

        await using var supervisor = await SupervisorProcess.StartAsync(_layout, Settings(kubeconfig));

        Assert.False(supervisor.HasExited, supervisor.Output);
        Assert.DoesNotContain("invalid configuration", supervisor.Output, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Start_ChildCgroupSettingsInvalid_ExitsNonZeroNamingEach()
    {
        Requires.Root();
        var settings = new Dictionary<string, string>
        {
            ["Supervisor__ChildMemoryMax"] = "lots",
            ["Supervisor__ChildCgroupParent"] = "../escape",
            ["Supervisor__CgroupRoot"] = "sys/fs/cgroup",
        };

        var (code, output) = await SupervisorProcess.RunUntilExitAsync(_layout, settings, Eventually.DefaultTimeout);

        Assert.NotEqual(0, code);
        Assert.Contains("Supervisor:ChildMemoryMax 'lots' is not a Kubernetes quantity", output, StringComparison.Ordinal);
        Assert.Contains("Supervisor:ChildCgroupParent '../escape' has the segment '..'", output, StringComparison.Ordinal);
        Assert.Contains("Supervisor:CgroupRoot 'sys/fs/cgroup' must be an absolute path", output, StringComparison.Ordinal);
        Assert.False(File.Exists(_layout.SocketPath));
    }

    private Dictionary<string, string> Settings(string kubeconfig) => new()
    {
        ["Kubernetes__Kubeconfig"] = kubeconfig,
        ["Kubernetes__NodeName"] = "node-a",
        ["Kubernetes__KubeletRoot"] = _layout.KubeletRoot,
    };
}

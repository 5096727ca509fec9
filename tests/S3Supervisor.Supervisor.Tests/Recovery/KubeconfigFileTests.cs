using Microsoft.Extensions.Options;
using S3Supervisor.Supervisor.Recovery;
using S3Supervisor.TestKit.Kubernetes;

namespace S3Supervisor.Supervisor.Tests.Recovery;

public sealed class KubeconfigFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("s3sv-kc-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Theory]
    [InlineData("token: abc")]
    [InlineData("tokenFile: /var/run/secrets/token")]
    [InlineData("client-certificate-data: QUJD\n    client-key-data: QUJD")]
    [InlineData("client-certificate: /etc/k/c.crt\n    client-key: /etc/k/c.key")]
    [InlineData("client-certificate: /etc/k/c.crt\n    client-key-data: QUJD")]
    [InlineData("username: admin\n    password: secret")]
    [InlineData("exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws")]
    [InlineData("auth-provider:\n      name: oidc")]
    public void Check_UserWithACredential_NoFailure(string user)
    {
        Assert.Empty(KubeconfigFile.Check(Write(Config(user))));
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("")]
    [InlineData("client-certificate-data: QUJD")]
    [InlineData("client-key: /etc/k/c.key")]
    [InlineData("username: admin")]
    [InlineData("token: \"\"")]
    [InlineData("exec: {}")]
    public void Check_UserWithoutCredentials_NamesTheUserAndTheFields(string user)
    {
        var path = Write(Config(user.Length == 0 || user == "{}" ? null : user, inline: user == "{}"));

        var failure = Assert.Single(KubeconfigFile.Check(path));

        Assert.StartsWith($"Kubernetes:Kubeconfig '{path}'", failure, StringComparison.Ordinal);
        Assert.Contains("user 'u' of context 'c' has no user credentials", failure, StringComparison.Ordinal);
        Assert.Contains("token, tokenFile", failure, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("current-context: c", "current-context: other", "current-context 'other' is not in its contexts")]
    [InlineData("current-context: c\n", "\n", "has no current-context")]
    [InlineData("    server: http://127.0.0.1:6443", "    insecure-skip-tls-verify: true", "cluster 'k' has no http(s) server URL")]
    [InlineData("    user: u", "    user: missing", "context 'c' names no user that is in its users")]
    [InlineData("    cluster: k", "    cluster: missing", "context 'c' names no cluster that is in its clusters")]
    [InlineData("kind: Config", "kind: [Config", "is not valid YAML")]
    public void Check_BrokenStructure_SaysWhat(string from, string to, string expected)
    {
        var text = Config("token: abc").Replace(from, to, StringComparison.Ordinal);

        var failure = Assert.Single(KubeconfigFile.Check(Write(text)));

        Assert.Contains(expected, failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_JsonKubeconfig_Parsed()
    {
        var json = """
            {"apiVersion":"v1","kind":"Config","current-context":"c",
             "clusters":[{"name":"k","cluster":{"server":"https://127.0.0.1:6443"}}],
             "contexts":[{"name":"c","context":{"cluster":"k","user":"u"}}],
             "users":[{"name":"u","user":{}}]}
            """;

        Assert.Contains("has no user credentials", Assert.Single(KubeconfigFile.Check(Write(json))), StringComparison.Ordinal);
        Assert.Empty(KubeconfigFile.Check(Write(json.Replace("\"user\":{}", "\"user\":{\"token\":\"t\"}", StringComparison.Ordinal))));
    }

    [Fact]
    public async Task Check_TestApiServerKubeconfig_NoFailure()
    {
        await using var api = await TestApiServer.StartAsync();

        Assert.Empty(KubeconfigFile.Check(api.WriteKubeconfig(Path.Combine(_dir, "test-api"))));
    }

    [Fact]
    public void Validate_KubeconfigWithoutCredentials_FailsTheOptions()
    {
        var options = new KubernetesOptions { Kubeconfig = Write(Config(null)), NodeName = "node-a" };

        var result = new KubernetesOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains("has no user credentials", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_KubeconfigWithoutNodeName_FailsTheOptions()
    {
        var options = new KubernetesOptions { Kubeconfig = Write(Config("token: abc")) };

        var result = new KubernetesOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains("Kubernetes:NodeName is required", result.FailureMessage, StringComparison.Ordinal);
        Assert.True(new KubernetesOptionsValidator().Validate(null, new KubernetesOptions { Kubeconfig = options.Kubeconfig, NodeName = "node-a" }).Succeeded);
    }

    /// <summary>A kubeconfig with cluster k, context c and user u whose fields are <paramref name="user"/> (YAML, indented under user:).</summary>
    private static string Config(string? user, bool inline = false) => $"""
        apiVersion: v1
        kind: Config
        clusters:
        - name: k
          cluster:
            server: http://127.0.0.1:6443
        contexts:
        - name: c
          context:
            cluster: k
            user: u
        current-context: c
        users:
        - name: u
          user:{(inline ? " {}" : user is null ? string.Empty : "\n    " + user)}

        """;

    private string Write(string text)
    {
        var path = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        File.WriteAllText(path, text);
        return path;
    }
}

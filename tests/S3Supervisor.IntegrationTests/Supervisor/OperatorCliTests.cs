using System.Diagnostics;
using S3Supervisor.Api.V1;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Supervisor;

namespace S3Supervisor.IntegrationTests.Supervisor;

/// <summary>The operator CLI (`s3supervisor list|get|watch|remount`) against a real supervisor's socket.</summary>
[Collection(RgwFixture.Collection)]
public sealed class OperatorCliTests : SupervisorTestBase
{
    public OperatorCliTests(RgwFixture rgw)
        : base(rgw)
    {
    }

    [SkippableFact]
    public async Task Cli_ListGetRemount_ShowAndSteerTheVolume()
    {
        var staged = await StageAsync("cli-vol", prefix: "cli");
        await PublishAsync("cli-vol", "pod-cli");

        var list = await RunAsync("list");
        Assert.Equal(0, list.Code);
        var row = Assert.Single(list.Stdout.Split('\n'), l => l.StartsWith("cli-vol ", StringComparison.Ordinal));
        Assert.Contains("Ready", row, StringComparison.Ordinal);
        Assert.Contains($"s3://{Bucket}/cli", row, StringComparison.Ordinal);

        var get = await RunAsync("get", "cli-vol");
        Assert.Equal(0, get.Code);
        Assert.Contains("\"volumeId\": \"cli-vol\"", get.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(S3.SecretKey, get.Stdout, StringComparison.Ordinal);

        var remount = await RunAsync("remount", "cli-vol");
        Assert.Equal(0, remount.Code);
        Assert.Contains("cli-vol: Ready", remount.Stdout, StringComparison.Ordinal);
        var after = await Supervisor.Client.GetVolumeAsync(new GetVolumeRequest { VolumeId = "cli-vol" });
        Assert.NotEqual(staged.Pid, after.Pid);
        Assert.Equal(1, after.RestartCount);

        var missing = await RunAsync("get", "no-such-volume");
        Assert.Equal(1, missing.Code);
        Assert.Contains("NotFound", missing.Stderr, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Cli_NoSocketAtThePath_SaysSoAndNamesThePath()
    {
        var nowhere = Path.Combine(Layout.Root, "elsewhere", "supervisor.sock");

        var list = await RunAtAsync(nowhere, "list");

        Assert.Equal(1, list.Code);
        Assert.Contains($"no supervisor socket at {nowhere}", list.Stderr, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task Cli_FlagsFirstWithoutAVerb_UsageNotAServer()
    {
        var info = SupervisorProcess.Binary.StartInfo("--socket", Layout.SocketPath);
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var exited = process.WaitForExitAsync();
        var finished = await Task.WhenAny(exited, Task.Delay(TimeSpan.FromSeconds(60))) == exited;
        if (!finished)
        {
            process.Kill(entireProcessTree: true);
        }

        Assert.True(finished, "`s3supervisor --socket PATH` kept running (it started a server)");
        Assert.Equal(2, process.ExitCode);
        Assert.Contains("usage: s3supervisor", await stderr, StringComparison.Ordinal);
    }

    // The verb-first form used by every case (a second overload taking the socket first would win
    // RunAsync("list") with socket = "list": C# prefers the overload with more declared parameters).
    private Task<(int Code, string Stdout, string Stderr)> RunAsync(params string[] args) => RunAtAsync(Layout.SocketPath, args);

    private static async Task<(int Code, string Stdout, string Stderr)> RunAtAsync(string socket, params string[] args)
    {
        // The CLI is a verb of the supervisor's own binary (NativeAOT when published).
        var info = SupervisorProcess.Binary.StartInfo([.. args, "--socket", socket]);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }
}

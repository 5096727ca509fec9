using Microsoft.Extensions.Options;
using S3Supervisor.Common;
using S3Supervisor.Supervisor.Hosting;

namespace S3Supervisor.Supervisor.Tests.Mounts;

/// <summary>Supervisor:ChildMemoryMax and its siblings: Kubernetes quantities in, bytes out, and start-up refusing what is not one.</summary>
public sealed class MemoryQuantityTests
{
    [Theory]
    [InlineData("512Mi", 512L << 20)]
    [InlineData("32Mi", 32L << 20)]
    [InlineData("1Gi", 1L << 30)]
    [InlineData("1.5Gi", 3L << 29)]
    [InlineData("1G", 1_000_000_000L)]
    [InlineData("500M", 500_000_000L)]
    [InlineData("64k", 64_000L)]
    [InlineData("64Ki", 65_536L)]
    [InlineData("2Ti", 2L << 40)]
    [InlineData("1E", 1_000_000_000_000_000_000L)]
    [InlineData("1Ei", 1L << 60)]
    [InlineData("128974848", 128974848L)]
    [InlineData("129e6", 129_000_000L)]
    [InlineData("129E6", 129_000_000L)]
    [InlineData("0.5", 1L)]
    public void TryParseBytes_Quantity_Bytes(string text, long bytes)
    {
        Assert.True(MemoryQuantity.TryParseBytes(text, out var parsed, out var problem), problem);
        Assert.Equal(bytes, parsed);
    }

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("0", "at least one byte")]
    [InlineData("0Mi", "at least one byte")]
    [InlineData("-1Gi", "is not a Kubernetes quantity")]
    [InlineData("lots", "is not a Kubernetes quantity")]
    [InlineData("1.2.3", "is not a Kubernetes quantity")]
    [InlineData("12Qi", "unknown suffix 'Qi'")]
    [InlineData("12 Mi", "unknown suffix ' Mi'")]
    [InlineData("12mi", "unknown suffix 'mi'")]
    [InlineData("8Ei", "too large")]
    [InlineData("1e19", "too large")]
    public void TryParseBytes_NotAPositiveQuantity_SaysWhy(string text, string problem)
    {
        Assert.False(MemoryQuantity.TryParseBytes(text, out _, out var reason));
        Assert.Contains(problem, reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_CgroupSettings_DefaultsAndQuantity_Accepted()
    {
        var options = Valid();
        options.ChildMemoryMax = "512Mi";

        Assert.True(new SupervisorOptionsValidator().Validate(null, options).Succeeded);
        Assert.Equal(512L << 20, options.ChildMemoryMaxBytes);
        Assert.Equal("/sys/fs/cgroup", options.CgroupRoot);
        Assert.Equal("s3supervisor", options.ChildCgroupParent);
        Assert.Null(Valid().ChildMemoryMaxBytes);
    }

    [Fact]
    public void Validate_BadCgroupSettings_EachNamed()
    {
        var options = Valid();
        options.CgroupRoot = "sys/fs/cgroup";
        options.ChildCgroupParent = "../escape";
        options.ChildMemoryMax = "lots";

        var result = new SupervisorOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        var failures = result.Failures!.ToList();
        Assert.Contains(failures, f => f.StartsWith("Supervisor:CgroupRoot 'sys/fs/cgroup' must be an absolute path", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Supervisor:ChildCgroupParent '../escape' has the segment '..'", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Supervisor:ChildMemoryMax 'lots' is not a Kubernetes quantity", StringComparison.Ordinal));
        Assert.Null(options.ChildMemoryMaxBytes);
    }

    private static SupervisorOptions Valid() => new() { AllowedRoots = ["/var/lib/kubelet"] };
}

namespace S3Supervisor.TestKit;

/// <summary>Settings of a throwaway RGW (see <see cref="RgwServer.StartAsync"/>). The defaults suit tests.</summary>
public sealed class RgwOptions
{
    /// <summary>Access key of the S3 user "test" that is created at start.</summary>
    public string AccessKey { get; init; } = "TESTKEY";

    public string SecretKey { get; init; } = "TESTSECRET";

    /// <summary>Buckets created at start (s3fs cannot create buckets).</summary>
    public IReadOnlyList<string> Buckets { get; init; } = [];

    /// <summary>Capacity of the in-RAM object store; objects live in the OSD's memory and are gone at stop.</summary>
    public long MemstoreBytes { get; init; } = 4L * 1024 * 1024 * 1024;

    /// <summary>How long the whole start may take before it is abandoned (it normally takes 2 to 4 s).</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(90);

    /// <summary>Progress lines ("[1.234s] osd.0 up"), e.g. Console.WriteLine for a demo or ITestOutputHelper.WriteLine.</summary>
    public Action<string>? Log { get; init; }
}

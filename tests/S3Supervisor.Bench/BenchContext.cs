using S3Supervisor.TestKit;

namespace S3Supervisor.Bench;

/// <summary>What every benchmark shares: the S3 server (the baseline's bare s3fs mounts use it too).</summary>
internal sealed record BenchContext(RgwServer Rgw);

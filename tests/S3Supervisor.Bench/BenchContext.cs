using S3Supervisor.TestKit;

namespace S3Supervisor.Bench;

/// <summary>What every benchmark shares: the S3 server and the baseline's s3fs settings.</summary>
internal sealed record BenchContext(RgwServer Rgw, BareSettings Bare);

namespace S3Supervisor.Common;

/// <summary>
/// The keys of a Kubernetes Secret that holds S3 credentials (node-stage, node-publish and
/// provisioner secrets alike). The plugin reads them from CSI requests; the supervisor reads the
/// same keys from the Secret itself when it rebuilds after a restart.
/// </summary>
public static class SecretKeys
{
    public const string AccessKeyId = "accessKeyID";
    public const string SecretAccessKey = "secretAccessKey";
    public const string SessionToken = "sessionToken";
}

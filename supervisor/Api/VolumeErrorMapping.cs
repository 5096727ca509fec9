using Grpc.Core;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Api;

/// <summary>The one place a domain error becomes a gRPC status; the detail is the error's message, unchanged.</summary>
public static class VolumeErrorMapping
{
    public static StatusCode StatusOf(VolumeErrorKind kind) => kind switch
    {
        VolumeErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        VolumeErrorKind.NotFound => StatusCode.NotFound,
        VolumeErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        VolumeErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
        VolumeErrorKind.PermissionDenied => StatusCode.PermissionDenied,
        VolumeErrorKind.Unavailable => StatusCode.Unavailable,
        VolumeErrorKind.Aborted => StatusCode.Aborted,
        _ => StatusCode.Internal,
    };

    public static RpcException ToRpc(VolumeException e) => new(new Status(StatusOf(e.Kind), e.Message));
}

using Grpc.Core;
using S3Supervisor.Api.V1;

namespace S3Supervisor.Plugin.Csi;

/// <summary>
/// Calls to the supervisor on behalf of a CSI request: the CO's deadline and cancellation carry over,
/// and the supervisor's status codes come back unchanged (they already follow the CSI tables).
/// Unavailable and DeadlineExceeded name the socket so that kubelet's events say what is wrong.
/// </summary>
public sealed class SupervisorCalls(Supervisor.SupervisorClient client, string socketPath)
{
    public Supervisor.SupervisorClient Client => client;

    /// <param name="fields">Supervisor field names to show as the CSI request's names when a detail starts with one ("staging_path:").</param>
    public async Task<T> Call<T>(Func<Supervisor.SupervisorClient, CallOptions, AsyncUnaryCall<T>> call, ServerCallContext context, IReadOnlyList<(string Supervisor, string Csi)>? fields = null)
    {
        var deadline = context.Deadline == DateTime.MaxValue ? (DateTime?)null : context.Deadline;
        try
        {
            return await call(client, new CallOptions(deadline: deadline, cancellationToken: context.CancellationToken)).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            throw Rename(Map(e, socketPath), fields);
        }
    }

    private static RpcException Rename(RpcException e, IReadOnlyList<(string Supervisor, string Csi)>? fields)
    {
        foreach (var (from, to) in fields ?? [])
        {
            if (e.Status.Detail.StartsWith(from + ":", StringComparison.Ordinal))
            {
                return new RpcException(new Status(e.StatusCode, to + e.Status.Detail[from.Length..]));
            }
        }
        return e;
    }

    public static RpcException Map(RpcException e, string socketPath) => e.StatusCode switch
    {
        StatusCode.Unavailable => new RpcException(new Status(StatusCode.Unavailable, $"supervisor at {socketPath} is unreachable: {e.Status.Detail}")),
        StatusCode.DeadlineExceeded => new RpcException(new Status(StatusCode.DeadlineExceeded, $"supervisor at {socketPath} did not answer in time: {e.Status.Detail}")),
        _ => new RpcException(new Status(e.StatusCode, e.Status.Detail)),
    };
}

using System.Collections.Concurrent;
using Grpc.Core;

namespace S3Supervisor.Plugin.Csi;

/// <summary>
/// One operation per volume (or per volume and target) at a time. A second call while the first
/// runs gets Aborted, as the CSI spec asks, and the CO retries it later. In memory only: after a
/// restart nothing is held, and the supervisor is the one that keeps volumes consistent.
/// </summary>
public sealed class VolumeLocks
{
    private readonly ConcurrentDictionary<string, byte> _held = new(StringComparer.Ordinal);

    /// <summary>Stage and unstage of one volume: the same key, so the two never overlap.</summary>
    public Lease AcquireVolume(string volumeId) => Acquire($"volume/{volumeId}", $"volume {volumeId}");

    /// <summary>Publish and unpublish of one volume at one target.</summary>
    public Lease AcquireTarget(string volumeId, string targetPath) => Acquire($"target/{volumeId}/{targetPath}", $"volume {volumeId} at {targetPath}");

    public Lease Acquire(string key, string what)
    {
        if (!_held.TryAdd(key, 0))
        {
            throw new RpcException(new Status(StatusCode.Aborted, $"an operation on {what} is already in progress"));
        }
        return new Lease(this, key);
    }

    public readonly struct Lease : IDisposable
    {
        private readonly VolumeLocks _owner;
        private readonly string _key;

        internal Lease(VolumeLocks owner, string key)
        {
            _owner = owner;
            _key = key;
        }

        public void Dispose() => _owner?._held.TryRemove(_key, out _);
    }
}

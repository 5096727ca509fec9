using Microsoft.Extensions.Hosting;

namespace S3Supervisor.Common;

/// <summary>
/// Gives the start-up garbage back to the OS once the server listens. Both servers are long-lived and
/// mostly idle, and the work of starting (configuration, DI, Kestrel, gRPC descriptors) allocates
/// megabytes that the first gen0 budget would otherwise keep resident for as long as nothing else
/// allocates: one aggressive collection, off the start path, returns them (measured in the README).
/// </summary>
public static class StartupMemory
{
    public static void ReleaseWhenStarted(IHostApplicationLifetime lifetime) =>
        lifetime.ApplicationStarted.Register(static () => ThreadPool.UnsafeQueueUserWorkItem(
            static _ => GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true), null));
}

using S3Supervisor.Supervisor.Interop;

namespace S3Supervisor.Supervisor.Recovery;

/// <summary>The live staging mount, held open for the whole repair so that every clone comes from the same mount.</summary>
internal sealed class LiveStagingSource : IDisposable
{
    private LiveStagingSource(string path, FileDescriptorHandle handle)
    {
        Path = path;
        Handle = handle;
    }

    public string Path { get; }

    public FileDescriptorHandle Handle { get; }

    public static LiveStagingSource Open(string path, string deadDevice)
    {
        var handle = Libc.OpenDirectoryPath(path);
        try
        {
            // fstat asks the new s3fs once: a staging path that still shows the dead
            // connection (not re-mounted yet) must not be cloned into containers.
            var device = Libc.DeviceName(Libc.StatIdentity(handle, path).Device);
            if (device == deadDevice)
            {
                throw new InteropException($"the staging path {path} still shows the dead device {deadDevice}; mount the new s3fs first");
            }
            return new LiveStagingSource(path, handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public void Dispose() => Handle.Dispose();
}

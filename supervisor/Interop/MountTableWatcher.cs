using System.Runtime.InteropServices;

namespace S3Supervisor.Supervisor.Interop;

/// <summary>
/// Wakes waiters when this process's mount table changes, instead of having them re-read mountinfo
/// on a timer: the kernel marks an open /proc/self/mountinfo with POLLPRI | POLLERR on every mount or
/// unmount in its namespace (proc(5), "/proc/pid/mounts"). The mark is reset by poll itself, so one
/// descriptor serves for good and nothing has to be read. A starting s3fs is noticed the moment its
/// mount exists, and 200 starting mounts do not each parse the whole mount table every 20 ms.
/// </summary>
internal static unsafe partial class Libc
{
    private const short POLLPRI = 0x2;
    private const short POLLERR = 0x8;

    internal sealed class MountTableWatcher : IDisposable
    {
        private readonly FileDescriptorHandle _mountinfo;
        private readonly Lock _lock = new();
        private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile bool _disposed;

        public MountTableWatcher()
        {
            _mountinfo = OpenReadOnly("/proc/self/mountinfo");
            new Thread(Loop) { IsBackground = true, Name = "mount table watcher" }.Start();
        }

        /// <summary>
        /// Completes at the next change of the mount table after this call. Take it before looking at
        /// the table and await it after, so that a change in between is never missed.
        /// </summary>
        public Task NextChange
        {
            get
            {
                lock (_lock)
                {
                    return _next.Task;
                }
            }
        }

        public void Dispose()
        {
            _disposed = true;
            _mountinfo.Dispose();
        }

        private void Loop()
        {
            while (!_disposed)
            {
                int count;
                int error;
                PollFd poll;
                try
                {
                    using var fd = new FdLease(_mountinfo);
                    poll = new PollFd { Fd = fd.Fd, Events = POLLPRI };
                    // A timeout, so that a disposed watcher's thread ends.
                    while (Interrupted(count = Poll(&poll, 1, 1000), out error) && !_disposed)
                    {
                    }
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                if (error != 0)
                {
                    // Cannot happen for a valid descriptor; waiters still have their own timeout.
                    return;
                }
                if (count > 0 && (poll.Revents & (POLLPRI | POLLERR)) != 0)
                {
                    TaskCompletionSource changed;
                    lock (_lock)
                    {
                        changed = _next;
                        _next = new(TaskCreationOptions.RunContinuationsAsynchronously);
                    }
                    changed.TrySetResult();
                }
            }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(PollFd* fds, nuint count, int timeout);
}

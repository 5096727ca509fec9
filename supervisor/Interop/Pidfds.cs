using System.Runtime.InteropServices;
using Tmds.Linux;

namespace S3Supervisor.Supervisor.Interop;

/// <summary>
/// Process file descriptors (Linux 5.4+): a pidfd names one process for good, so a signal sent
/// through it can never reach a later process that reused the pid, and it becomes readable when that
/// process exits whether or not it is our child. That is what lets a restarted supervisor watch the
/// s3fs processes its predecessor started (they are no longer its children).
/// </summary>
internal static unsafe partial class Libc
{
    private const int SYS_pidfd_send_signal = 424;
    private const int SYS_pidfd_open = 434;
    private const int P_PIDFD = 3;
    private const int WEXITED = 4;
    private const int WNOHANG = 1;
    private const int CLD_EXITED = 1;
    private const int CLD_KILLED = 2;
    private const int CLD_DUMPED = 3;

    /// <summary>pidfd_open(2); null when the process is gone.</summary>
    public static FileDescriptorHandle? PidfdOpen(int pid)
    {
        long fd;
        int error;
        while (Interrupted(fd = (long)LibC.syscall((syscall_arg)SYS_pidfd_open, (syscall_arg)pid, (syscall_arg)0), out error))
        {
        }
        if (error == Errno.ESRCH)
        {
            return null;
        }
        CheckIo(error, "pidfd_open", pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return new FileDescriptorHandle((int)fd);
    }

    /// <summary>pidfd_send_signal(2); false when the process has exited already.</summary>
    public static bool PidfdSignal(FileDescriptorHandle pidfd, int signal)
    {
        using var fd = new FdLease(pidfd);
        int error;
        while (Interrupted((long)LibC.syscall((syscall_arg)SYS_pidfd_send_signal, (syscall_arg)fd.Fd, (syscall_arg)signal, (syscall_arg)0, (syscall_arg)0), out error))
        {
        }
        if (error == Errno.ESRCH)
        {
            return false;
        }
        CheckIo(error, "pidfd_send_signal");
        return true;
    }

    /// <summary>
    /// Reaps an exited child through its pidfd (waitid P_PIDFD, WNOHANG). The exit code, or 128 +
    /// the signal that killed it (the shell's convention); null when it is not our child (adopted
    /// after a restart: its exit status went to its new parent) or has not exited.
    /// </summary>
    public static int? ReapPidfd(FileDescriptorHandle pidfd)
    {
        using var fd = new FdLease(pidfd);
        var info = stackalloc byte[128];
        new Span<byte>(info, 128).Clear();
        int error;
        while (Interrupted(WaitId(P_PIDFD, (uint)fd.Fd, info, WEXITED | WNOHANG), out error))
        {
        }
        if (error == Errno.ECHILD)
        {
            return null;
        }
        CheckIo(error, "waitid(P_PIDFD)");
        // siginfo_t: si_signo, si_errno, si_code (int each), padding, si_pid, si_uid, si_status.
        var code = *(int*)(info + 8);
        var status = *(int*)(info + 24);
        var pid = *(int*)(info + 16);
        return pid == 0 ? null : code switch
        {
            CLD_EXITED => status,
            CLD_KILLED or CLD_DUMPED => 128 + status,
            _ => null,
        };
    }

    /// <summary>
    /// Waits, on one thread, for any of many descriptors to become readable (epoll). Pidfds become
    /// readable when their process exits.
    /// </summary>
    internal sealed class ReadinessWatcher : IDisposable
    {
        private const int EPOLL_CTL_ADD = 1;
        private const int EPOLL_CTL_DEL = 2;
        private const uint EPOLLIN = 1;
        private const int EPOLL_CLOEXEC = 0x80000;
        private readonly FileDescriptorHandle _epoll;
        private readonly Dictionary<long, (SafeHandle Handle, Action Ready)> _registered = [];
        private long _nextKey;
        private volatile bool _disposed;

        public ReadinessWatcher()
        {
            int fd;
            int error;
            while (Interrupted(fd = EpollCreate1(EPOLL_CLOEXEC), out error))
            {
            }
            CheckIo(error, "epoll_create1");
            _epoll = new FileDescriptorHandle(fd);
            new Thread(Loop) { IsBackground = true, Name = "pidfd watcher" }.Start();
        }

        /// <summary>Calls <paramref name="ready"/> once, on the watcher thread, when <paramref name="handle"/> becomes readable.</summary>
        public void Watch(SafeHandle handle, Action ready)
        {
            long key;
            lock (_registered)
            {
                key = ++_nextKey;
                var added = false;
                handle.DangerousAddRef(ref added);
                _registered[key] = (handle, ready);
            }
            var ev = stackalloc byte[12];
            *(uint*)ev = EPOLLIN;
            *(long*)(ev + 4) = key;
            using var epoll = new FdLease(_epoll);
            int error;
            while (Interrupted(EpollCtl(epoll.Fd, EPOLL_CTL_ADD, (int)handle.DangerousGetHandle(), ev), out error))
            {
            }
            if (error != 0)
            {
                Forget(key);
                CheckIo(error, "epoll_ctl(EPOLL_CTL_ADD)");
            }
        }

        public void Dispose()
        {
            _disposed = true;
            _epoll.Dispose();
            lock (_registered)
            {
                foreach (var entry in _registered.Values)
                {
                    entry.Handle.DangerousRelease();
                }
                _registered.Clear();
            }
        }

        private void Forget(long key)
        {
            lock (_registered)
            {
                if (_registered.Remove(key, out var entry))
                {
                    entry.Handle.DangerousRelease();
                }
            }
        }

        private void Loop()
        {
            var events = new byte[12 * 64];
            while (!_disposed)
            {
                int count;
                int error;
                try
                {
                    using var epoll = new FdLease(_epoll);
                    fixed (byte* e = events)
                    {
                        // A timeout, so that a disposed watcher's thread ends.
                        while (Interrupted(count = EpollWait(epoll.Fd, e, 64, 1000), out error) && !_disposed)
                        {
                        }
                    }
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                if (error != 0)
                {
                    return;
                }
                for (var i = 0; i < count; i++)
                {
                    long key;
                    fixed (byte* e = events)
                    {
                        key = *(long*)(e + (12 * i) + 4);
                    }
                    (SafeHandle Handle, Action Ready) entry;
                    lock (_registered)
                    {
                        if (!_registered.Remove(key, out entry))
                        {
                            continue;
                        }
                    }
                    try
                    {
                        using var epoll = new FdLease(_epoll);
                        _ = EpollCtl(epoll.Fd, EPOLL_CTL_DEL, (int)entry.Handle.DangerousGetHandle(), null);
                    }
                    catch (ObjectDisposedException)
                    {
                        // The watcher is going away; the descriptor is still ours until released below.
                    }
                    // Ready first: it may still use the descriptor (a pidfd is reaped through it), which the
                    // release would close if its owner disposed it meanwhile.
                    try
                    {
                        entry.Ready();
                    }
                    finally
                    {
                        entry.Handle.DangerousRelease();
                    }
                }
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "waitid", SetLastError = true)]
    private static partial int WaitId(int idType, uint id, byte* info, int options);

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static partial int EpollCtl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    private static partial int EpollWait(int epfd, byte* events, int maxEvents, int timeout);
}

namespace S3Supervisor.Supervisor.Interop;

/// <summary>
/// Runs work inside another mount namespace on a thread of its own, which is thrown away afterwards.
/// </summary>
/// <remarks>
/// setns(CLONE_NEWNS) answers EINVAL when the caller's fs_struct (root, cwd, umask) is shared
/// with other threads, which it always is in a .NET process. unshare(CLONE_FS) on a fresh thread
/// gives it a private fs_struct, and then setns succeeds for that thread alone. The thread is
/// never handed back to a pool: once the work returns it ends, and its namespace,
/// root and cwd end with it. For the same reason the task completes with
/// RunContinuationsAsynchronously, so the awaiting code never continues on the foreign thread.
/// </remarks>
internal static class MountNamespaceThread
{
    public static Task<T> RunAsync<T>(FileDescriptorHandle mountNamespace, string description, Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(mountNamespace);
        ArgumentNullException.ThrowIfNull(work);
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                Libc.UnshareFilesystemAttributes();
                Libc.EnterMountNamespace(mountNamespace, description);
                completion.SetResult(work());
            }
            catch (Exception ex)
            {
                completion.SetException(ex);
            }
        })
        {
            IsBackground = true,
            Name = "mntns " + description,
        };
        thread.UnsafeStart();
        return completion.Task;
    }
}

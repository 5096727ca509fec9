namespace S3Supervisor.Supervisor.Interop;

/// <summary>
/// Runs work inside another mount namespace on a thread of its own, which is thrown away afterwards.
/// </summary>
/// <remarks>
/// setns(CLONE_NEWNS) answers EINVAL when the caller's fs_struct (root, cwd, umask) is shared
/// with other threads, which it always is in a .NET process. unshare(CLONE_FS) on a fresh thread
/// gives it a private fs_struct, and then setns succeeds for that thread alone. The thread is
/// never handed back to a pool (<see cref="NamespaceThread"/>): once the work returns it ends, and
/// its namespace, root and cwd end with it.
/// </remarks>
internal static class MountNamespaceThread
{
    public static Task<T> RunAsync<T>(FileDescriptorHandle mountNamespace, string description, Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(mountNamespace);
        return NamespaceThread.RunAsync(
            "mntns " + description,
            () =>
            {
                Libc.UnshareFilesystemAttributes();
                Libc.EnterMountNamespace(mountNamespace, description);
            },
            work);
    }
}

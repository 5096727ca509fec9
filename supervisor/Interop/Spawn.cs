using System.Runtime.InteropServices;
using Tmds.Linux;

namespace S3Supervisor.Supervisor.Interop;

/// <summary>
/// posix_spawn(3) of an s3fs child that can outlive this process: its own session (no signal meant
/// for the supervisor's process group reaches it), every signal at its default disposition and none
/// blocked, stdin from /dev/null and stdout + stderr appended to a file. A pipe would die with the
/// supervisor, and s3fs would then fail writing its log (EPIPE); a file stays. The environment is
/// exactly what the caller passes; every other descriptor is close-on-exec (Program marks them).
/// </summary>
internal static unsafe partial class Libc
{
    private const short POSIX_SPAWN_SETSIGDEF = 0x04;
    private const short POSIX_SPAWN_SETSIGMASK = 0x08;
    private const short POSIX_SPAWN_SETSID = 0x80;

    // glibc x86_64: posix_spawn_file_actions_t is 80 bytes, posix_spawnattr_t 336, sigset_t
    // 128; the buffers are larger so a libc with bigger structures still has room.
    private const int FileActionsSize = 256;
    private const int AttributesSize = 512;
    private const int SigsetSize = 128;

    /// <summary>Starts <paramref name="file"/> (searched on PATH when it has no slash) and returns its pid.</summary>
    public static int Spawn(string file, IReadOnlyList<string> arguments, IReadOnlyList<string> environment, string outputPath)
    {
        var actions = stackalloc byte[FileActionsSize];
        var attributes = stackalloc byte[AttributesSize];
        var all = stackalloc byte[SigsetSize];
        var none = stackalloc byte[SigsetSize];
        var devNull = Utf8("/dev/null");
        var root = Utf8("/");
        var output = Utf8(outputPath);
        var path = Utf8(file);
        // posix_spawn and its helpers return the error number; they do not set errno.
        CheckIo(FileActionsInit(actions), "posix_spawn_file_actions_init", file);
        var attributesMade = false;
        byte** argv = null;
        byte** envp = null;
        try
        {
            CheckIo(AttributesInit(attributes), "posix_spawnattr_init", file);
            attributesMade = true;
            fixed (byte* n = devNull, o = output, r = root)
            {
                CheckIo(AddOpen(actions, 0, n, LibC.O_RDONLY, 0), "posix_spawn_file_actions_addopen", "/dev/null");
                CheckIo(AddOpen(actions, 1, o, LibC.O_WRONLY | LibC.O_CREAT | LibC.O_APPEND, 0x180), "posix_spawn_file_actions_addopen", outputPath);
                CheckIo(AddDup2(actions, 1, 2), "posix_spawn_file_actions_adddup2", outputPath);
                // Not the supervisor's working directory: nothing of its container's file system.
                CheckIo(AddChdir(actions, r), "posix_spawn_file_actions_addchdir_np", "/");
            }
            _ = SigFillSet(all);
            _ = SigEmptySet(none);
            CheckIo(SetSigDefault(attributes, all), "posix_spawnattr_setsigdefault", file);
            CheckIo(SetSigMask(attributes, none), "posix_spawnattr_setsigmask", file);
            CheckIo(SetFlags(attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID), "posix_spawnattr_setflags", file);
            argv = NativeStrings([file, .. arguments]);
            envp = NativeStrings(environment);
            int pid;
            fixed (byte* p = path)
            {
                CheckIo(SpawnP(&pid, p, actions, attributes, argv, envp), "posix_spawnp", file);
            }
            return pid;
        }
        finally
        {
            _ = FileActionsDestroy(actions);
            if (attributesMade)
            {
                _ = AttributesDestroy(attributes);
            }
            FreeNativeStrings(argv);
            FreeNativeStrings(envp);
        }
    }

    private static byte** NativeStrings(IReadOnlyList<string> values)
    {
        var array = (byte**)NativeMemory.AllocZeroed((nuint)(values.Count + 1), (nuint)sizeof(byte*));
        for (var i = 0; i < values.Count; i++)
        {
            array[i] = (byte*)Marshal.StringToCoTaskMemUTF8(values[i]);
        }
        return array;
    }

    private static void FreeNativeStrings(byte** array)
    {
        if (array == null)
        {
            return;
        }
        for (var i = 0; array[i] != null; i++)
        {
            Marshal.FreeCoTaskMem((nint)array[i]);
        }
        NativeMemory.Free(array);
    }

    [LibraryImport("libc", EntryPoint = "posix_spawnp")]
    private static partial int SpawnP(int* pid, byte* file, byte* actions, byte* attributes, byte** argv, byte** envp);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_init")]
    private static partial int FileActionsInit(byte* actions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_destroy")]
    private static partial int FileActionsDestroy(byte* actions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addopen")]
    private static partial int AddOpen(byte* actions, int fd, byte* path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addchdir_np")]
    private static partial int AddChdir(byte* actions, byte* path);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_adddup2")]
    private static partial int AddDup2(byte* actions, int fd, int newFd);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_init")]
    private static partial int AttributesInit(byte* attributes);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_destroy")]
    private static partial int AttributesDestroy(byte* attributes);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setflags")]
    private static partial int SetFlags(byte* attributes, short flags);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigdefault")]
    private static partial int SetSigDefault(byte* attributes, byte* set);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigmask")]
    private static partial int SetSigMask(byte* attributes, byte* set);

    [LibraryImport("libc", EntryPoint = "sigfillset")]
    private static partial int SigFillSet(byte* set);

    [LibraryImport("libc", EntryPoint = "sigemptyset")]
    private static partial int SigEmptySet(byte* set);
}

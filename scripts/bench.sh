#!/usr/bin/env bash
# bench.sh - the benchmark of issues 2 and 4 (never a timed test): installs what it needs, builds
# tests/S3Supervisor.Bench (Release, warnings are errors) and runs it. It prints, on stdout:
#   - the host facts (cores, kernel, s3fs, Ceph, .NET);
#   - startup: supervisor spawn-to-answering time, plugin spawn-to-Probe-ready time, the supervisor's
#     memory idle and with volumes staged, NativeAOT and JIT side by side, next to a bare s3fs mount
#     measured in the same run;
#   - rebuild: kill -9 of the supervisor with N volumes published to 2 stand-in containers, time
#     to all N Ready and to every container view restored, next to N bare s3fs mounted in parallel,
#     and ListVolumes latency during the rebuild and idle;
#   - data: sequential write/read through a published target vs a bare s3fs mount, and the heal of
#     one killed s3fs inside a stand-in container vs a bare mount.
# Progress goes to stderr. Needs root (mounts, mount namespaces, the Ceph daemons) and /dev/fuse.
# A full run (N = 10, 50, 200, 3 rounds) takes about 15 minutes on 2 cores. Exits non-zero if anything fails; every mount,
# process and the S3 server it started are cleaned up, also on Ctrl-C or SIGTERM.
#
# usage: scripts/bench.sh [startup|rebuild|data|all] [--n 10,50,200] [--rounds 3] [--repeat 5] ... (default: all;
#        --help lists the options)
# Environment:
#   BENCH_TIMEOUT=30m        the run is stopped (and cleans up) after this
#   INSTALL_DEPS_SKIP=1      do not check/install packages
#   BENCH_NO_PUBLISH=1       do not run scripts/publish.sh first
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
  echo "bench.sh: $*" >&2
  exit 1
}

mode=all
case "${1:-}" in
  startup | rebuild | data | all) mode=$1; shift ;;
esac

echo "== dependencies" >&2
bash scripts/install-deps.sh || fail "installing dependencies failed"
command -v dotnet >/dev/null 2>&1 || fail "dotnet is not on PATH (install the .NET SDK pinned in global.json)"
[ "$(id -u)" = 0 ] || fail "run as root: the benchmark mounts s3fs, makes mount namespaces and starts Ceph daemons"

echo "== build" >&2
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
dotnet build tests/S3Supervisor.Bench -c Release -nologo -clp:ErrorsOnly >&2 || fail "build failed"
# The NativeAOT binaries that ship, measured beside the JIT build (BENCH_NO_PUBLISH=1: use what
# .work/publish has, or measure the JIT alone when it has nothing current).
if [ "${BENCH_NO_PUBLISH:-0}" != 1 ]; then
  echo "== publish (NativeAOT)" >&2
  bash scripts/publish.sh >&2 || fail "publish failed"
fi
bench=$(dotnet msbuild tests/S3Supervisor.Bench -nologo -p:Configuration=Release -getProperty:TargetPath) ||
  fail "could not find the built benchmark"
[ -f "$bench" ] || fail "the built benchmark is missing: $bench"

echo "== bench $mode" >&2
# timeout forwards SIGINT/SIGTERM to the benchmark, which then cleans up before it exits.
timeout --kill-after=60s "${BENCH_TIMEOUT:-30m}" dotnet "$bench" "$mode" "$@"
rc=$?
case $rc in
  0) ;;
  124) fail "the benchmark did not finish within ${BENCH_TIMEOUT:-30m} and was stopped" ;;
  *) fail "the benchmark failed (exit $rc)" ;;
esac

#!/usr/bin/env bash
# local-node.sh - the main job: a local node (Ceph RGW on loopback, a test Kubernetes API server,
# s3supervisor and s3csi-plugin) driven through one volume's whole life, including the failures the
# project exists to survive (an s3fs crash, a plugin kill, a supervisor kill). Prints each step and
# exits non-zero if any check fails. Needs root, /dev/fuse and mount namespaces. Safe to run twice:
# everything lives in a throwaway directory under /tmp and is removed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# Leftovers of an aborted earlier run (daemons, mounts) whose owner process is gone.
bash scripts/sweep-test-dirs.sh sweep-stale "${TMPDIR:-/tmp}/s3supervisor-tests" >/dev/null 2>&1 || true
dotnet build tests/S3Supervisor.LocalNode -c Release -nologo -clp:ErrorsOnly
# The binaries that ship (NativeAOT): the local node starts them (and `dotnet x.dll` only without them).
bash scripts/publish.sh
exec dotnet tests/S3Supervisor.LocalNode/bin/Release/net10.0/linux-x64/S3Supervisor.LocalNode.dll "$@"

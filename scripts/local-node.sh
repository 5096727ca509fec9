#!/usr/bin/env bash
# local-node.sh - the main job: a local node (Ceph RGW on loopback, a test Kubernetes API server,
# s3supervisor and s3csi-plugin) driven through one volume's whole life, including the failures the
# project exists to survive (an s3fs crash, a plugin kill, a supervisor kill). Prints each step and
# exits non-zero if any check fails. Needs root, /dev/fuse and mount namespaces. Safe to run twice:
# everything lives in a throwaway directory under /tmp and is removed at the end.
#
# usage: scripts/local-node.sh [--containers]
#   --containers  the node pod of deploy/base under podman (supervisor, node plugin, controller plugin)
#                 from the images scripts/images.sh builds (here: --prebuilt, from the binaries this
#                 script has just published), and podman app containers. Installs podman, buildah,
#                 runc and debootstrap; the first run also makes the local base images (about 2 min).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# Leftovers of an aborted earlier run (daemons, mounts) whose owner process is gone.
bash scripts/sweep-test-dirs.sh sweep-stale "${TMPDIR:-/tmp}/s3supervisor-tests" >/dev/null 2>&1 || true
dotnet build tests/S3Supervisor.LocalNode -c Release -nologo -clp:ErrorsOnly
# The binaries that ship (NativeAOT): the local node starts them (and `dotnet x.dll` only without them).
bash scripts/publish.sh
if [[ " $* " == *" --containers "* ]]; then
  # shellcheck source=scripts/podman-env.sh
  source scripts/podman-env.sh
  INSTALL_DEPS_SKIP=1 bash scripts/images.sh --prebuilt
fi
exec dotnet tests/S3Supervisor.LocalNode/bin/Release/net10.0/linux-x64/S3Supervisor.LocalNode.dll "$@"

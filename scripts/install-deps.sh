#!/usr/bin/env bash
# install-deps.sh - install what the tests and the local demo need on Debian/Ubuntu:
# s3fs + FUSE, the Ceph packages for the throwaway S3 server (radosgw on loopback, see
# tests/S3Supervisor.TestKit/Rgw/RgwServer.cs), and clang, lld and zlib1g-dev for the NativeAOT
# publish (scripts/publish.sh: the native compiler's output is linked with clang and lld). Idempotent: when everything is present it only
# checks (well under a second) and touches nothing. Never starts a Ceph service: Debian's
# postinst scripts do not, and a temporary policy-rc.d makes sure no init script does either.
#
# Environment: INSTALL_DEPS_SKIP=1 skips everything (e.g. a machine prepared by other means).
set -euo pipefail

PKGS=(s3fs fuse3 ceph-mon ceph-osd ceph-mgr radosgw ceph-common curl util-linux iproute2 procps clang lld zlib1g-dev)

log() { echo "install-deps: $*" >&2; }

if [ "${INSTALL_DEPS_SKIP:-0}" = 1 ]; then
  log "INSTALL_DEPS_SKIP=1, not checking packages"
  exit 0
fi

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  # one dpkg-query for all (unknown names are simply not listed)
  installed=" $(dpkg-query -W -f='${Package}=${Status}\n' "${PKGS[@]}" 2>/dev/null |
    sed -n 's/=install ok installed$//p' | tr '\n' ' ' || true) "
  for p in "${PKGS[@]}"; do
    case "$installed" in *" $p "*) ;; *) missing+=("$p") ;; esac
  done
else
  log "not a Debian-based system (no dpkg-query): install ${PKGS[*]} yourself"
  missing=()
  for b in s3fs ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph setsid unshare nsenter clang ld.lld; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
  done
  if ((${#missing[@]})); then
    log "missing: ${missing[*]}"
    exit 1
  fi
fi

if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    log "missing packages: ${missing[*]}; run this script as root (sudo $0)"
    exit 1
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # No daemon may start during installation (a Ceph mon on the default ports would also collide
  # with other users of this machine). policy-rc.d exit 101 = "action forbidden"; honoured by
  # invoke-rc.d and deb-systemd-invoke. Only ours is removed afterwards.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from s3supervisor scripts/install-deps.sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  log "installed: ${missing[*]}"
fi

# FUSE needs /dev/fuse: load the module if possible; in a container the device must be passed in
# (--device /dev/fuse), but creating the node is worth a try when the kernel has FUSE built in.
if [ ! -c /dev/fuse ]; then
  if command -v modprobe >/dev/null 2>&1; then modprobe fuse 2>/dev/null || true; fi
  if [ ! -c /dev/fuse ] && [ "$(id -u)" = 0 ] && grep -qw fuse /proc/filesystems 2>/dev/null; then
    mknod -m 0666 /dev/fuse c 10 229 2>/dev/null || true
  fi
  if [ -c /dev/fuse ]; then
    log "/dev/fuse is available"
  else
    log "WARNING: /dev/fuse is missing; tests that mount s3fs will be skipped (modprobe fuse, or run the container with --device /dev/fuse --cap-add SYS_ADMIN)"
  fi
fi

exit 0

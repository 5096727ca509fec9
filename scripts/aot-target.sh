#!/bin/sh
# aot-target.sh TARGETARCH [BUILDARCH] - the dotnet restore/publish arguments that NativeAOT-compile
# for a container platform's architecture (amd64 or arm64, as docker/podman name them), printed on
# one line. Used by both Dockerfiles; POSIX sh, because the SDK images have no bash guarantee.
#
# Cross-compiling (arm64 on an amd64 build machine) links with clang for the target triple against
# Debian/Ubuntu's cross C library and libgcc (crossbuild-essential-arm64, which the Dockerfiles
# install; of it libc6-dev-arm64-cross, libgcc-12-dev-arm64-cross and binutils-aarch64-linux-gnu are
# what the link needs): clang finds that toolchain under /usr/lib/gcc-cross by itself, so no sysroot
# is given; objcopy must be the target's (it strips the symbols into the .dbg file).
set -eu
target=${1:-}
build=${2:-}
[ -n "$target" ] || target=$(uname -m)
[ -n "$build" ] || build=$(uname -m)
rid() {
  case "$1" in
    amd64 | x86_64) echo linux-x64 ;;
    arm64 | aarch64) echo linux-arm64 ;;
    *) echo "aot-target.sh: unsupported architecture '$1' (amd64 or arm64)" >&2; exit 1 ;;
  esac
}
t=$(rid "$target")
b=$(rid "$build")
if [ "$t" = "$b" ]; then
  echo "-r $t"
elif [ "$t" = linux-arm64 ]; then
  echo "-r $t -p:ObjCopyName=aarch64-linux-gnu-objcopy"
else
  echo "aot-target.sh: cross-compiling $b -> $t is not set up (build on $t)" >&2
  exit 1
fi

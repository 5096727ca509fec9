#!/usr/bin/env bash
# images.sh - build the two images (s3supervisor/supervisor and s3supervisor/plugin, the names
# deploy/base uses) with podman from Dockerfile.supervisor and Dockerfile.plugin, on a machine with
# or without an image registry, and print their sizes and the time each took.
#
# Bases: the Dockerfiles default to the public .NET images (what a user's `docker build` takes).
# When those cannot be pulled (no registry reachable), this script makes local stand-ins from
# Debian's packages and passes them as build arguments, once per machine (kept in podman's store):
#   localhost/s3supervisor-base/debian:bookworm   debootstrap --variant=minbase (about 2 min)
#   localhost/s3supervisor-base/dotnet-sdk:10.0   that + this machine's .NET SDK (the build stage)
#   localhost/s3supervisor-base/static:bookworm   glibc + OpenSSL + CA bundle only (the plugin's base)
#
# usage: scripts/images.sh [--tag TAG] [--prebuilt] [--platform linux/arm64] [--bases public|local|auto]
#                          [supervisor|plugin|all]
#   --tag TAG      image tag (default: the <Version> of Directory.Build.props)
#   --prebuilt     take the binaries scripts/publish.sh made (.work/publish) instead of compiling
#                  them in the build stage (--target runtime-prebuilt): what CI does, the suite has already
#                  published them. Same runtime stage, same files in the image.
#   --platform P   target platform (default: this machine's). linux/arm64 on amd64 cross-compiles
#                  in the build stage; the runtime stage runs apt in an arm64 base, so it needs arm64
#                  base images and binfmt/QEMU (the local bases are this machine's architecture).
#   --bases B      public: pull the Dockerfiles' defaults; local: the stand-ins above; auto
#                  (default): public if a pull succeeds, else local.
# Environment: INSTALL_DEPS_SKIP=1 (see podman-env.sh), IMAGES_KEEP_ROOTFS=1 keeps the debootstrap
# directory (.work/images/rootfs-bookworm) after the import, IMAGES_NO_CACHE=1 builds every layer
# again (podman build --no-cache; the bases are kept).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/podman-env.sh
source scripts/podman-env.sh

tag=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props | head -n 1)
prebuilt=0
platform=
bases=auto
which=all
while (($#)); do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --prebuilt) prebuilt=1; shift ;;
    --platform) platform=$2; shift 2 ;;
    --bases) bases=$2; shift 2 ;;
    supervisor | plugin | all) which=$1; shift ;;
    *) echo "usage: scripts/images.sh [--tag TAG] [--prebuilt] [--platform P] [--bases public|local|auto] [supervisor|plugin|all]" >&2; exit 2 ;;
  esac
done

log() { echo "images.sh: $*" >&2; }
started=$SECONDS

LOCAL_DEBIAN=localhost/s3supervisor-base/debian:bookworm
LOCAL_SDK=localhost/s3supervisor-base/dotnet-sdk:10.0
LOCAL_STATIC=localhost/s3supervisor-base/static:bookworm
PUBLIC_SDK=mcr.microsoft.com/dotnet/sdk:10.0-noble
PUBLIC_DEPS=mcr.microsoft.com/dotnet/runtime-deps:10.0-noble
PUBLIC_CHISELED=mcr.microsoft.com/dotnet/runtime-deps:10.0-noble-chiseled

local_debian() {
  podman image exists "$LOCAL_DEBIAN" && return 0
  local dir=.work/images/rootfs-bookworm t=$SECONDS
  if [ ! -x "$dir/usr/bin/apt-get" ] || [ -e "$dir/debootstrap" ]; then
    log "debootstrap --variant=minbase bookworm (a minimal Debian 12 from its packages, about 2 min)"
    rm -rf "$dir"
    mkdir -p .work/images
    debootstrap --variant=minbase bookworm "$dir" http://deb.debian.org/debian >.work/images/debootstrap.log 2>&1 ||
      { tail -n 20 .work/images/debootstrap.log >&2; exit 1; }
  fi
  tar -C "$dir" --exclude="./proc/*" --exclude="./sys/*" --exclude="./dev/*" --exclude="./var/cache/apt/archives/*.deb" --exclude="./var/cache/apt/*.bin" -c . | podman import -q - "$LOCAL_DEBIAN" >/dev/null
  [ "${IMAGES_KEEP_ROOTFS:-0}" = 1 ] || rm -rf "$dir"
  log "$LOCAL_DEBIAN imported in $((SECONDS - t)) s"
}

local_sdk() {
  podman image exists "$LOCAL_SDK" && return 0
  local t=$SECONDS sdk c
  sdk=$(dirname "$(readlink -f "$(command -v dotnet)")")
  [ -x "$sdk/dotnet" ] || { log "no .NET SDK on this machine to make $LOCAL_SDK from"; exit 1; }
  log "$LOCAL_SDK: $LOCAL_DEBIAN + the .NET SDK of this machine ($sdk, $(dotnet --version))"
  c=$(buildah from -q "$LOCAL_DEBIAN")
  # What the public SDK image carries besides the SDK: CA certificates (NuGet over https), ICU and
  # OpenSSL for the SDK's own tools.
  buildah run --network host "$c" -- sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ca-certificates libicu72 libssl3 && rm -rf /var/lib/apt/lists/*' >/dev/null
  # The machine's own local CAs (an egress proxy's, as on the machines this was made on) are this
  # base's too: NuGet inside the build goes through the same network.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    buildah copy -q "$c" /usr/local/share/ca-certificates /usr/local/share/ca-certificates >/dev/null
    buildah run "$c" -- update-ca-certificates >/dev/null 2>&1
  fi
  buildah copy -q "$c" "$sdk" /usr/share/dotnet >/dev/null
  buildah run "$c" -- ln -sf /usr/share/dotnet/dotnet /usr/bin/dotnet
  buildah config --env DOTNET_CLI_TELEMETRY_OPTOUT=1 --env DOTNET_NOLOGO=1 --env DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 "$c"
  # A machine whose network blocks certificate revocation look-ups (as this one's) says so in its
  # environment; NuGet inside the build needs the same setting.
  if [ -n "${NUGET_CERT_REVOCATION_MODE:-}" ]; then
    buildah config --env NUGET_CERT_REVOCATION_MODE="$NUGET_CERT_REVOCATION_MODE" "$c"
  fi
  buildah commit -q --rm "$c" "$LOCAL_SDK" >/dev/null
  log "$LOCAL_SDK made in $((SECONDS - t)) s"
}

local_static() {
  podman image exists "$LOCAL_STATIC" && return 0
  local t=$SECONDS
  podman build -q --network host --build-arg DEBIAN_IMAGE="$LOCAL_DEBIAN" -f scripts/images/static.Containerfile -t "$LOCAL_STATIC" scripts/images >/dev/null
  log "$LOCAL_STATIC made in $((SECONDS - t)) s"
}

if [ "$bases" = auto ]; then
  if podman image exists "$PUBLIC_SDK" || timeout 60 podman pull -q "$PUBLIC_SDK" >/dev/null 2>&1; then
    bases=public
  else
    bases=local
    log "the public base images cannot be pulled here (no registry reachable): using local bases made from Debian packages"
  fi
fi

build_args=()
target_args=()
if [ "$bases" = local ]; then
  local_debian
  [ "$prebuilt" = 1 ] || local_sdk
  sdk=$LOCAL_SDK deps=$LOCAL_DEBIAN minimal=$LOCAL_STATIC
else
  sdk=$PUBLIC_SDK deps=$PUBLIC_DEPS minimal=$PUBLIC_CHISELED
fi
build_args+=(--build-arg "SDK_IMAGE=$sdk" --build-arg "VERSION=$tag")
if [ "$prebuilt" = 1 ]; then
  [ -z "$platform" ] || { log "--prebuilt takes this machine's binaries: no --platform"; exit 2; }
  for b in .work/publish/supervisor/s3supervisor .work/publish/plugin/s3csi-plugin; do
    [ -x "$b" ] || { log "--prebuilt: $b is missing (run scripts/publish.sh)"; exit 1; }
  done
  target_args=(--target runtime-prebuilt)
fi
# podman 4.3 does not set the automatic platform arguments (BuildKit does): give them.
buildarch=$(dpkg --print-architecture 2>/dev/null || uname -m)
targetarch=${platform#linux/}
targetarch=${targetarch:-$buildarch}
build_args+=(--build-arg "BUILDPLATFORM=linux/$buildarch" --build-arg "BUILDARCH=$buildarch" --build-arg "TARGETARCH=$targetarch")
platform_args=()
[ -z "$platform" ] || platform_args=(--platform "$platform")

# --network host: the build stages reach Debian's mirror and NuGet directly (no CNI needed).
# --layers: the restore layer and apt layers are reused across builds (unless IMAGES_NO_CACHE=1).
build() { # name dockerfile runtime-base
  local name=$1 file=$2 base=$3 t=$SECONDS
  log "building s3supervisor/$name:$tag from $file (runtime base $base${platform:+, $platform}$([ "$prebuilt" = 1 ] && echo ', prebuilt binary'))"
  local cache=--layers
  [ "${IMAGES_NO_CACHE:-0}" != 1 ] || cache=--no-cache
  podman build --network host "$cache" "${platform_args[@]}" "${target_args[@]}" "${build_args[@]}" --build-arg "RUNTIME_IMAGE=$base" \
    -f "$file" -t "s3supervisor/$name:$tag" . >".work/images/build-$name.log" 2>&1 ||
    { tail -n 40 ".work/images/build-$name.log" >&2; log "build of $name failed (whole log: .work/images/build-$name.log)"; exit 1; }
  log "s3supervisor/$name:$tag built in $((SECONDS - t)) s"
}
mkdir -p .work/images
case "$which" in
  supervisor) build supervisor Dockerfile.supervisor "$deps" ;;
  plugin) [ "$bases" = public ] || local_static; build plugin Dockerfile.plugin "$minimal" ;;
  all)
    [ "$bases" = public ] || local_static
    build supervisor Dockerfile.supervisor "$deps"
    build plugin Dockerfile.plugin "$minimal"
    ;;
esac
podman images --filter reference='localhost/s3supervisor/*' --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | sort >&2
log "done in $((SECONDS - started)) s"

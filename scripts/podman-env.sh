# podman-env.sh - sourced by scripts/images.sh, scripts/local-node.sh --containers and scripts/test.sh:
# installs podman, buildah and runc (and debootstrap, for the local base images) when missing and
# points podman at the project's containers.conf. Idempotent; INSTALL_DEPS_SKIP=1 skips the check.
# shellcheck shell=bash
__podman_env_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "${INSTALL_DEPS_SKIP:-0}" != 1 ]; then
  __missing=()
  for __p in podman buildah runc debootstrap; do
    dpkg-query -W -f='${Status}' "$__p" 2>/dev/null | grep -q 'install ok installed' || __missing+=("$__p")
  done
  if ((${#__missing[@]})); then
    echo "podman-env: installing ${__missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${__missing[@]}" >&2 ||
      { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y "${__missing[@]}" >&2; }
  fi
  unset __missing __p
fi
export CONTAINERS_CONF="$__podman_env_root/scripts/containers.conf"
unset __podman_env_root

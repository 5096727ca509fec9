#!/usr/bin/env bash
# sweep-test-dirs.sh - clean up the scratch directories that tests create (TestKit's
# ScratchDirectory) once the test process that owns them is gone.
#
# Every scratch directory is ROOT/<name>-<id>/ and holds a file .owner = "<pid> <starttime>"
# (starttime = field 22 of /proc/<pid>/stat, so a reused pid does not count as the owner).
# Cleaning one directory means, in this order:
#   1. SIGTERM every process whose command line names a path inside it (ceph daemons run
#      with -c DIR/ceph.conf, s3fs with DIR/mnt and passwd_file=DIR/..., stand-in
#      containers with DIR/rootfs), a short grace, then SIGKILL;
#   2. lazily unmount every mount point inside it, deepest first;
#   3. only when no mount is left inside it: rm -rf --one-file-system (never through a mount:
#      a bind of a host directory would otherwise lose the host's files).
# Test cgroups (TestKit's TestCgroup, among them the parent of a test supervisor's per-volume
# cgroups, SupervisorProcess.ChildCgroupParent) are named s3sv-test-<pid>-<starttime>-... at the top
# of every hierarchy mounted at or directly under /sys/fs/cgroup; "sweep-stale" also cleans those of
# dead owners: SIGKILL to every process in the tree until none is left (as a container runtime kills
# a container), then rmdir deepest first.
#
# usage:
#   sweep-test-dirs.sh sweep-stale ROOT          clean every ROOT/*/ whose owner is dead
#   sweep-test-dirs.sh clean DIR...              clean DIR now (it must hold a .owner file)
#   sweep-test-dirs.sh watch PID START ROOT      wait until PID (with that start time) is gone,
#                                                then sweep-stale ROOT (TestKit's crash guard)
#
# The TestKit embeds this file; scripts/test.sh runs "sweep-stale" before the tests.
set -u

starttime() { # pid -> start time in clock ticks, or nothing
  local s
  { s=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  echo "${20}"
}

alive() { # pid start: that very process exists and is not a zombie
  local st
  st=$(starttime "$1") || return 1
  [ "$st" = "$2" ] && running "$1"
}

running() { # pid: exists and is not a zombie
  local s
  { s=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
  s=${s##*) }
  [ "${s:0:1}" != Z ]
}

# pids of processes (other than this script) with an argument naming one of DIRS or a path inside it
referencing() { # dir...
  local p a d args
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = $$ ] && continue
    args=()
    mapfile -d '' -t args <"/proc/$p/cmdline" 2>/dev/null || continue
    for a in "${args[@]}"; do
      for d in "$@"; do
        case "$a" in
          "$d" | "$d"/* | *[=,:]"$d" | *[=,:]"$d"/*) echo "$p"; continue 3 ;;
        esac
      done
    done
  done
}

# mount points (host mount namespace) at or under DIR, deepest first
mounts_under() { # dir
  local d=$1 line mp
  local -a f
  while IFS= read -r line; do
    read -r -a f <<<"$line"
    mp=${f[4]}
    case "$mp" in *\\*) mp=$(printf '%b' "${mp//\\/\\0}") ;; esac # \040 and friends
    case "$mp" in "$d" | "$d"/*) echo "$mp" ;; esac
  done </proc/self/mountinfo | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

clean() { # dir... (all of them at once: one grace period, not one per directory)
  local d p i left mp rc=0
  local -a dirs=() pids=()
  for d in "$@"; do
    d=${d%/}
    case "$d" in /*/*) ;; *) echo "sweep: refusing to clean '$d'" >&2; rc=1; continue ;; esac
    [ -f "$d/.owner" ] || { echo "sweep: $d has no .owner file, not a test directory" >&2; rc=1; continue; }
    dirs+=("$d")
  done
  ((${#dirs[@]})) || return $rc

  mapfile -t pids < <(referencing "${dirs[@]}")
  if ((${#pids[@]})); then
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for i in $(seq 1 30); do
      left=0
      for p in "${pids[@]}"; do running "$p" && left=1; done
      [ $left = 0 ] && break
      sleep 0.1
    done
    for p in "${pids[@]}"; do running "$p" && kill -KILL "$p" 2>/dev/null; done
  fi

  for d in "${dirs[@]}"; do
    for i in 1 2 3 4 5; do
      left=0
      while IFS= read -r mp; do
        [ -n "$mp" ] || continue
        left=1
        umount -l -- "$mp" 2>/dev/null || umount -l -f -- "$mp" 2>/dev/null || true
      done < <(mounts_under "$d")
      [ $left = 0 ] && break
    done
    if [ -n "$(mounts_under "$d")" ]; then
      echo "sweep: mounts left under $d, not deleting it:" >&2
      mounts_under "$d" >&2
      rc=1
      continue
    fi
    rm -rf --one-file-system -- "$d" || rc=1
  done
  return $rc
}

# mount points of the cgroup hierarchies at or directly under /sys/fs/cgroup
cgroup_mounts() {
  local line mp fs
  local -a f
  while IFS= read -r line; do
    read -r -a f <<<"${line#* - }"
    fs=${f[0]}
    [ "$fs" = cgroup ] || [ "$fs" = cgroup2 ] || continue
    read -r -a f <<<"$line"
    mp=${f[4]}
    case "$mp" in /sys/fs/cgroup | /sys/fs/cgroup/*) ;; *) continue ;; esac
    case "${mp#/sys/fs/cgroup/}" in */*) continue ;; esac
    echo "$mp"
  done </proc/self/mountinfo | sort -u
}

sweep_cgroups() { # test cgroups whose owner (in the name) is gone
  local mp d name rest pid st i p
  local -a mounts names=() pids
  mapfile -t mounts < <(cgroup_mounts)
  ((${#mounts[@]})) || return 0
  for mp in "${mounts[@]}"; do
    for d in "$mp"/s3sv-test-*/; do
      [ -d "$d" ] || continue
      name=${d%/}; name=${name##*/}
      rest=${name#s3sv-test-}; pid=${rest%%-*}; rest=${rest#*-}; st=${rest%%-*}
      case "$pid$st" in '' | *[!0-9]*) continue ;; esac
      alive "$pid" "$st" && continue
      case " ${names[*]} " in *" $name "*) ;; *) names+=("$name") ;; esac
    done
  done
  for name in "${names[@]}"; do
    rest=${name#s3sv-test-}
    echo "sweep: removing cgroup $name (owner pid ${rest%%-*} is gone)" >&2
    for i in $(seq 1 100); do
      mapfile -t pids < <(for mp in "${mounts[@]}"; do [ -d "$mp/$name" ] && find "$mp/$name" -name cgroup.procs -exec cat {} + 2>/dev/null; done | sort -un)
      ((${#pids[@]})) || break
      for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
      sleep 0.05
    done
    for mp in "${mounts[@]}"; do
      [ -d "$mp/$name" ] || continue
      for i in 1 2 3 4 5 6 7 8 9 10; do
        find "$mp/$name" -depth -type d -exec rmdir {} + 2>/dev/null
        [ -d "$mp/$name" ] || break
        sleep 0.1
      done
      [ -d "$mp/$name" ] && echo "sweep: could not remove cgroup $mp/$name" >&2
    done
  done
  return 0
}

sweep_stale() { # root
  local root=${1%/} d pid st
  local -a stale=()
  sweep_cgroups
  [ -d "$root" ] || return 0
  for d in "$root"/*/; do
    d=${d%/}
    [ -f "$d/.owner" ] || continue
    read -r pid st <"$d/.owner" 2>/dev/null || continue
    [ -n "${pid:-}" ] && [ -n "${st:-}" ] || continue
    alive "$pid" "$st" && continue
    echo "sweep: cleaning $d (owner pid $pid is gone)" >&2
    stale+=("$d")
  done
  ((${#stale[@]})) || return 0
  clean "${stale[@]}"
}

case "${1:-}" in
  sweep-stale) sweep_stale "${2:?ROOT}" ;;
  clean) shift; [ $# -ge 1 ] || { echo "usage: $0 clean DIR..." >&2; exit 2; }; clean "$@" ;;
  watch)
    pid=${2:?PID} st=${3:?START} root=${4:?ROOT}
    while alive "$pid" "$st"; do sleep 1; done
    sweep_stale "$root"
    ;;
  *) echo "usage: $0 sweep-stale ROOT | clean DIR | watch PID START ROOT" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Renders the kustomize trees under deploy/ and checks the invariants the
# design relies on (DESIGN.md, "Kubernetes" and "Security"): OnDelete updates,
# hostPID, Bidirectional propagation and privilege on the supervisor alone, an
# unprivileged plugin at container index 1, requiresRepublish, and the
# supervisor/plugin settings that must agree with each other.
#
#   deploy/validate.sh              render and check base, examples, overlays/dev
#   deploy/validate.sh --self-test  also break the rendered base in known ways
#                                   and require each break to be caught
#
# Needs kubectl (kubectl kustomize) or kustomize, bash and awk; no yq, no
# cluster. Exits non-zero on any failed check or render error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
driver=s3.csi.s3supervisor.io
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
quiet=0
failures=()

render() {
  if command -v kubectl >/dev/null 2>&1; then
    kubectl kustomize "$1"
  elif command -v kustomize >/dev/null 2>&1; then
    kustomize build "$1"
  else
    echo "validate.sh: neither kubectl nor kustomize is on PATH" >&2
    return 2
  fi
}

# Turns a rendered YAML stream into one record per line:
#   kind <TAB> name <TAB> list <TAB> index <TAB> item <TAB> line
# list is containers, initContainers or volumes when the line belongs to an
# item of such a list (item = the container's or volume's name), "-" otherwise.
# Relies only on indentation, so it reads both kustomize's output (list items
# at the key's indentation) and hand-written files (items indented further).
flatten() {
  awk '
    function indent(s) { match(s, /^ */); return RLENGTH }
    function flush_item(   i) {
      for (i = 0; i < n_item; i++) {
        out[n_out++] = list "\t" idx "\t" item_name "\t" item[i]
      }
      n_item = 0; item_name = ""
    }
    function flush_doc(   i, kind, name, in_meta) {
      if (in_list) { flush_item(); in_list = 0 }
      kind = "-"; name = "-"; in_meta = 0
      for (i = 0; i < n_doc; i++) {
        if (doc[i] ~ /^kind: /) { kind = substr(doc[i], 7) }
        if (doc[i] ~ /^metadata:/) { in_meta = 1; continue }
        if (in_meta && doc[i] ~ /^  name: / && name == "-") { name = substr(doc[i], 9) }
        if (doc[i] ~ /^[^ ]/) { in_meta = 0 }
      }
      for (i = 0; i < n_out; i++) {
        print kind "\t" name "\t" out[i]
      }
      n_doc = 0; n_out = 0
    }
    function plain(line) { out[n_out++] = "-\t-\t-\t" line }
    {
      sub(/\r$/, "")
      if ($0 ~ /^---/) { flush_doc(); next }
      doc[n_doc++] = $0
      ind = indent($0)
      if (in_list) {
        if ($0 ~ /^ *$/) { item[n_item++] = $0; next }
        if (item_indent < 0) {
          if ($0 ~ /^ *- /) { item_indent = ind } else { in_list = 0 }
        }
        if (in_list) {
          if (ind == item_indent && $0 ~ /^ *- /) {
            if (idx >= 0) flush_item()
            idx++
            item[n_item++] = $0
            if ($0 ~ /^ *- name: /) { item_name = $0; sub(/^ *- name: /, "", item_name) }
            next
          }
          if (ind > item_indent) {
            item[n_item++] = $0
            if (ind == item_indent + 2 && $0 ~ /^ *name: / && item_name == "") {
              item_name = $0; sub(/^ *name: /, "", item_name)
            }
            next
          }
          flush_item(); in_list = 0
        }
      }
      if ($0 ~ /^ *(containers|initContainers|volumes):$/) {
        plain($0)
        list = $0; sub(/^ */, "", list); sub(/:$/, "", list)
        in_list = 1; idx = -1; item_indent = -1; n_item = 0; item_name = ""
        next
      }
      plain($0)
    }
    END { flush_doc() }
  ' "$1"
}

# Lines of one selection: kind name list item ("*" matches anything).
sel() {
  awk -F '\t' -v k="$2" -v n="$3" -v l="$4" -v c="$5" '
    (k == "*" || $1 == k) && (n == "*" || $2 == n) && (l == "*" || $3 == l) && (c == "*" || $5 == c) { print $6 }
  ' "$1"
}

# Where lines matching a pattern occur, as kind/name/list/item, sorted, unique.
where() {
  awk -F '\t' -v re="$2" '$6 ~ re { print $1 "/" $2 "/" $3 "/" $5 }' "$1" | sort -u
}

# The value of an env var of one container (the line after "- name: VAR").
envval() {
  sel "$1" "$2" "$3" containers "$4" | awk -v v="$5" '
    found && /^ *value: / { sub(/^ *value: /, ""); gsub(/"/, ""); print; exit }
    found && /^ *valueFrom:/ { print "<valueFrom>"; exit }
    $0 ~ "^ *- name: " v "$" { found = 1 }
  '
}

# The volume name behind a container's mountPath.
mountvol() {
  sel "$1" "$2" "$3" containers "$4" | awk -v p="$5" '
    $0 ~ "^ *- mountPath: " p "$" { found = 1; next }
    found && /^ *- / { exit }
    found && /^ *name: / { sub(/^ *name: /, ""); print; exit }
  '
}

check() {
  local desc=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    [[ $quiet == 1 ]] || echo "ok   $desc"
  else
    failed=$((failed + 1))
    failures+=("$desc")
    [[ $quiet == 1 ]] || echo "FAIL $desc"
  fi
}

# ---- the checks -----------------------------------------------------------

is() { [[ "$1" == "$2" ]]; }
nonempty() { [[ -n "$1" ]]; }
has() { sel "$1" "$2" "$3" "$4" "$5" | grep -Eq -- "$6"; }
hasnt() { ! has "$@"; }

check_base() {
  local f=$1 ds=s3supervisor-node dep=s3supervisor-controller

  check "CSIDriver $driver exists" \
    has "$f" CSIDriver "$driver" - - '^kind: CSIDriver$'
  check "CSIDriver requiresRepublish: true" has "$f" CSIDriver "$driver" - - '^  requiresRepublish: true$'
  check "CSIDriver attachRequired: false" has "$f" CSIDriver "$driver" - - '^  attachRequired: false$'
  check "CSIDriver podInfoOnMount: true" has "$f" CSIDriver "$driver" - - '^  podInfoOnMount: true$'
  check "CSIDriver fsGroupPolicy is None or File" has "$f" CSIDriver "$driver" - - '^  fsGroupPolicy: (None|File)$'
  check "CSIDriver serves Persistent volumes" has "$f" CSIDriver "$driver" - - '^  - Persistent$'

  check "node DaemonSet updateStrategy is OnDelete" has "$f" DaemonSet "$ds" - - '^ +type: OnDelete$'
  check "node DaemonSet has hostPID: true" has "$f" DaemonSet "$ds" - - '^ +hostPID: true$'
  check "hostPID only on the node DaemonSet" \
    is "$(where "$f" 'hostPID: true')" "DaemonSet/$ds/-/-"
  check "node pods are system-node-critical" \
    has "$f" DaemonSet "$ds" - - '^ +priorityClassName: system-node-critical$'
  check "node pods have a termination grace period of 30 s or more" \
    has "$f" DaemonSet "$ds" - - '^ +terminationGracePeriodSeconds: ([3-9][0-9]|[1-9][0-9]{2,})$'

  check "containers[0] is supervisor, containers[1] is plugin" \
    is "$(awk -F '\t' -v ds="$ds" '$1 == "DaemonSet" && $2 == ds && $3 == "containers" && $4 < 2 { print $4 ":" $5 }' "$f" | sort -u | tr '\n' ' ')" \
    "0:supervisor 1:plugin "
  check "Bidirectional propagation only on the supervisor container" \
    is "$(where "$f" 'mountPropagation: Bidirectional')" "DaemonSet/$ds/containers/supervisor"
  check "supervisor mounts the kubelet directory Bidirectional" \
    is "$(sel "$f" DaemonSet "$ds" containers supervisor | grep -A1 -E '^ *- mountPath: /var/lib/kubelet$' | tail -n1 | sed 's/^ *//')" \
    "mountPropagation: Bidirectional"
  check "privileged only on the supervisor container" \
    is "$(where "$f" 'privileged: true')" "DaemonSet/$ds/containers/supervisor"
  check "no livenessProbe on the supervisor (a restart stops every s3fs)" \
    hastn_supervisor_probe "$f" "$ds"

  local uid pair
  for pair in "DaemonSet $ds" "Deployment $dep"; do
    set -- $pair
    check "$1 plugin: runAsNonRoot" has "$f" "$1" "$2" containers plugin '^ +runAsNonRoot: true$'
    check "$1 plugin: readOnlyRootFilesystem" has "$f" "$1" "$2" containers plugin '^ +readOnlyRootFilesystem: true$'
    check "$1 plugin: allowPrivilegeEscalation false" has "$f" "$1" "$2" containers plugin '^ +allowPrivilegeEscalation: false$'
    check "$1 plugin: no mount propagation" hasnt "$f" "$1" "$2" containers plugin 'mountPropagation'
    check "$1 plugin: no kubelet directory" hasnt "$f" "$1" "$2" containers plugin '^ *- mountPath: /var/lib/kubelet(/pods)?/?$'
    check "$1 plugin: Csi__Mode set" nonempty "$(envval "$f" "$1" "$2" plugin Csi__Mode)"
  done
  check "controller plugin runs in controller mode" \
    is "$(envval "$f" Deployment "$dep" plugin Csi__Mode)" controller
  check "node plugin runs in node mode" \
    is "$(envval "$f" DaemonSet "$ds" plugin Csi__Mode)" node

  uid=$(sel "$f" DaemonSet "$ds" containers plugin | sed -n 's/^ *runAsUser: \([0-9]*\)$/\1/p' | head -n1)
  check "node plugin has a fixed runAsUser" nonempty "$uid"
  check "supervisor allows the plugin's uid ($uid) on its socket" \
    allowed_uid "$f" "$ds" "$uid"
  check "Supervisor__SocketGroup equals the pod's fsGroup" \
    is "$(envval "$f" DaemonSet "$ds" supervisor Supervisor__SocketGroup)" \
    "$(sel "$f" DaemonSet "$ds" - - | sed -n 's/^ *fsGroup: \([0-9]*\)$/\1/p' | head -n1)"
  check "plugin dials the socket the supervisor listens on" \
    is "$(envval "$f" DaemonSet "$ds" plugin Csi__SupervisorSocket)" \
    "$(envval "$f" DaemonSet "$ds" supervisor Supervisor__SocketPath)"
  check "supervisor socket directory is one volume shared by both containers" \
    same_socket_volume "$f" "$ds"
  check "secrets directory is a memory emptyDir mounted in the supervisor only" \
    secrets_in_memory "$f" "$ds"
  check "state directory is a hostPath" state_on_host "$f" "$ds"
  check "driver name agrees (CSIDriver, supervisor, plugins, registrar)" \
    driver_names "$f" "$ds" "$dep"
  check "csi-provisioner runs with --extra-create-metadata" \
    has "$f" Deployment "$dep" containers csi-provisioner '^ *- --extra-create-metadata$'
  check "every image has an explicit tag, none is :latest" images_pinned "$f"
}

hastn_supervisor_probe() { ! sel "$1" DaemonSet "$2" containers supervisor | grep -Eq '^ +livenessProbe:'; }

allowed_uid() {
  local f=$1 ds=$2 uid=$3 i v
  for i in 0 1 2 3 4 5 6 7; do
    v=$(envval "$f" DaemonSet "$ds" supervisor "Supervisor__AllowedUids__$i")
    [[ "$v" == "$uid" ]] && return 0
  done
  return 1
}

same_socket_volume() {
  local f=$1 ds=$2 dir a b
  dir=$(dirname "$(envval "$f" DaemonSet "$ds" supervisor Supervisor__SocketPath)")
  a=$(mountvol "$f" DaemonSet "$ds" supervisor "$dir")
  b=$(mountvol "$f" DaemonSet "$ds" plugin "$dir")
  [[ -n "$a" && "$a" == "$b" ]] && sel "$f" DaemonSet "$ds" volumes "$a" | grep -Eq '^ *(- )?emptyDir:'
}

secrets_in_memory() {
  local f=$1 ds=$2 dir v
  dir=$(envval "$f" DaemonSet "$ds" supervisor Supervisor__SecretsDirectory)
  [[ -n "$dir" ]] || return 1
  v=$(mountvol "$f" DaemonSet "$ds" supervisor "$dir")
  [[ -n "$v" ]] || return 1
  sel "$f" DaemonSet "$ds" volumes "$v" | grep -Eq '^ *medium: Memory$' || return 1
  # mounted by no other container
  [[ "$(awk -F '\t' -v v="$v" '$3 == "containers" && $6 ~ ("^ *name: " v "$") { print $5 }' "$f" | sort -u)" == supervisor ]]
}

state_on_host() {
  local f=$1 ds=$2 dir v
  dir=$(envval "$f" DaemonSet "$ds" supervisor Supervisor__StateDirectory)
  [[ -n "$dir" ]] || return 1
  v=$(mountvol "$f" DaemonSet "$ds" supervisor "$dir")
  [[ -n "$v" ]] && sel "$f" DaemonSet "$ds" volumes "$v" | grep -Eq '^ *(- )?hostPath:'
}

driver_names() {
  local f=$1 ds=$2 dep=$3
  [[ "$(envval "$f" DaemonSet "$ds" supervisor Kubernetes__DriverName)" == "$driver" ]] &&
    [[ "$(envval "$f" DaemonSet "$ds" plugin Csi__DriverName)" == "$driver" ]] &&
    [[ "$(envval "$f" Deployment "$dep" plugin Csi__DriverName)" == "$driver" ]] &&
    has "$f" DaemonSet "$ds" containers node-driver-registrar "kubelet-registration-path=/var/lib/kubelet/plugins/$driver/csi.sock" &&
    has "$f" DaemonSet "$ds" volumes plugin-dir "path: /var/lib/kubelet/plugins/$driver$"
}

images_pinned() {
  local bad
  bad=$(awk -F '\t' '$6 ~ /^ *(- )?image: / { v = $6; sub(/^ *(- )?image: /, "", v); print v }' "$1" |
    awk '{ last = $0; sub(/.*\//, "", last) } last !~ /[:@]/ || $0 ~ /:latest$/ { print }')
  [[ -z "$bad" ]]
}

check_examples() {
  local f=$1
  check "examples: nothing privileged" is "$(where "$f" 'privileged: true')" ""
  check "examples: no Bidirectional propagation" is "$(where "$f" 'mountPropagation: Bidirectional')" ""
  check "examples: no hostPath, hostPID or hostNetwork" is "$(where "$f" '^ *(- )?(hostPath:|hostPID: true|hostNetwork: true)')" ""
  check "examples: a container with HostToContainer has a livenessProbe" hosttocontainer_probe "$f"
  check "examples: every StorageClass uses $driver" \
    is "$(awk -F '\t' '$1 == "StorageClass" && $6 ~ /^provisioner: / { print $6 }' "$f" | sort -u)" "provisioner: $driver"
  check "examples: a bucket-per-volume and a prefix-per-volume StorageClass" \
    storageclass_variants "$f"
  check "examples: static PV uses $driver" has "$f" PersistentVolume '*' - - "^ +driver: $driver$"
  check "examples: Secret has accessKeyID and secretAccessKey" \
    secret_keys "$f"
}

hosttocontainer_probe() {
  local c kind name cname
  c=$(awk -F '\t' '$3 == "containers" && $6 ~ /mountPropagation: HostToContainer/ { print $1 "\t" $2 "\t" $5 }' "$1" | sort -u)
  [[ -n "$c" ]] || return 1
  while IFS=$'\t' read -r kind name cname; do
    sel "$1" "$kind" "$name" containers "$cname" | grep -Eq '^ +livenessProbe:' || return 1
  done <<<"$c"
}

storageclass_variants() {
  local n_with n_all
  n_all=$(awk -F '\t' '$1 == "StorageClass" { print $2 }' "$1" | sort -u | wc -l)
  n_with=$(awk -F '\t' '$1 == "StorageClass" && $6 ~ /^  bucket: / { print $2 }' "$1" | sort -u | wc -l)
  [[ $n_with -ge 1 && $n_all -gt $n_with ]]
}

secret_keys() {
  sel "$1" Secret '*' - - | grep -Eq '^  accessKeyID: ' && sel "$1" Secret '*' - - | grep -Eq '^  secretAccessKey: '
}

# ---- self-test: each known break must be caught ----------------------------

self_test() {
  local what=$1 file=$2 checker=$3 name expr n=0 bad=0 saved_p saved_f
  saved_p=$passed saved_f=$failed
  while IFS='|' read -r -u 3 name expr; do
    [[ -n "$name" ]] || continue
    sed -E "$expr" "$file" >"$work/mutant.yaml"
    if cmp -s "$file" "$work/mutant.yaml"; then
      echo "FAIL self-test ($what): mutation '$name' changed nothing"
      bad=$((bad + 1))
      continue
    fi
    flatten "$work/mutant.yaml" >"$work/mutant.flat"
    passed=0 failed=0 quiet=1 failures=()
    "$checker" "$work/mutant.flat" </dev/null
    quiet=0
    n=$((n + 1))
    if [[ $failed -eq 0 ]]; then
      echo "FAIL self-test ($what): mutation '$name' was not caught"
      bad=$((bad + 1))
    else
      echo "ok   self-test ($what): '$name' caught by: $(IFS=';'; echo "${failures[*]}")"
    fi
  done 3<&0
  passed=$saved_p failed=$((saved_f + bad)) failures=()
  [[ $n -gt 0 ]]
}

self_test_base() {
  self_test base "$1" check_base <<'EOF'
RollingUpdate instead of OnDelete|s/type: OnDelete/type: RollingUpdate/
hostPID off|s/hostPID: true/hostPID: false/
hostPID on the controller|s/^(      )serviceAccountName: s3supervisor-controller$/\1hostPID: true\n&/
requiresRepublish off|s/requiresRepublish: true/requiresRepublish: false/
Bidirectional on the plugin|s/^( *)- mountPath: \/csi$/&\n\1  mountPropagation: Bidirectional/
privileged sidecars|s/allowPrivilegeEscalation: false/privileged: true/
supervisor not privileged|s/privileged: true/privileged: false/
HostToContainer for the kubelet dir|s/mountPropagation: Bidirectional/mountPropagation: HostToContainer/
plugin moved from index 1|s/^( *)name: plugin$/\1name: csi-plugin/
plugin as root|s/^( *)runAsNonRoot: true$/\1runAsNonRoot: false/
plugin uid not allowed|s/^( *)value: "65532"$/\1value: "1000"/
secrets on disk|s/medium: Memory/medium: ""/
latest image|s/csi-provisioner:v5.2.0/csi-provisioner:latest/
liveness on the supervisor|s/^(        )name: supervisor$/&\n\1livenessProbe:\n\1  exec:\n\1    command: ["true"]/
EOF
}

self_test_examples() {
  self_test examples "$1" check_examples <<'EOF'
no probe beside HostToContainer|s/^( *)livenessProbe:$/\1readinessProbe:/
privileged app|s/allowPrivilegeEscalation: false/privileged: true/
foreign provisioner|s/^provisioner: .*/provisioner: example.com\/other/
EOF
}

# ---- main ------------------------------------------------------------------

selftest=0
case "${1:-}" in
  --self-test) selftest=1 ;;
  "") ;;
  *) echo "usage: $0 [--self-test]" >&2; exit 2 ;;
esac

for tree in base examples overlays/dev; do
  out="$work/${tree//\//-}.yaml"
  if ! render "$here/$tree" >"$out" 2>"$work/err"; then
    cat "$work/err" >&2
    echo "FAIL kustomize render of deploy/$tree"
    failed=$((failed + 1))
    continue
  fi
  echo "ok   kustomize render of deploy/$tree"
  passed=$((passed + 1))
  flatten "$out" >"${out%.yaml}.flat"
done

[[ -f "$work/base.flat" ]] && { echo "-- deploy/base"; check_base "$work/base.flat"; }
[[ -f "$work/overlays-dev.flat" ]] && { echo "-- deploy/overlays/dev"; check_base "$work/overlays-dev.flat"; }
[[ -f "$work/examples.flat" ]] && { echo "-- deploy/examples"; check_examples "$work/examples.flat"; }
if [[ $selftest == 1 ]]; then
  echo "-- self-test: known breaks must be caught"
  [[ -f "$work/base.yaml" ]] && self_test_base "$work/base.yaml"
  [[ -f "$work/examples.yaml" ]] && self_test_examples "$work/examples.yaml"
fi

echo "deploy invariants: $passed ok, $failed failing"
[[ $failed -eq 0 ]]

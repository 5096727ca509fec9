#!/usr/bin/env bash
# Upgrades the CSI plugin on every node without touching a mount.
#
#   deploy/upgrade-plugin.sh IMAGE [NAMESPACE]
#   e.g. deploy/upgrade-plugin.sh registry.example.com/s3supervisor/plugin:0.2.0
#
# 1. Sets the image in the DaemonSet template, for pods created later (new
#    nodes, supervisor upgrades). With updateStrategy OnDelete this restarts
#    nothing.
# 2. Patches the plugin container's image in each running node pod, one pod at
#    a time. A running pod's container image may be changed in place: kubelet
#    restarts that container alone; the supervisor, its s3fs children and every
#    mount stay as they are. The patch first tests that containers[1] is
#    "plugin", so it can never re-image the supervisor by mistake.
# 3. Waits for the new plugin to run and be ready (the supervisor answers it)
#    before going to the next pod.
#
# Exits non-zero if a pod did not come back ready with the new image in
# TIMEOUT seconds (default 180); the remaining pods are still attempted.
set -euo pipefail

image=${1:?usage: $0 IMAGE [NAMESPACE]}
ns=${2:-s3supervisor}
ds=s3supervisor-node
selector=app.kubernetes.io/name=s3supervisor,app.kubernetes.io/component=node
timeout=${TIMEOUT:-180}

case "$image" in
  *\"* | *\\* | *" "*) echo "refusing an image reference with quotes, backslashes or spaces" >&2; exit 2 ;;
esac

kubectl -n "$ns" set image "daemonset/$ds" "plugin=$image"

failed=()
for pod in $(kubectl -n "$ns" get pods -l "$selector" -o jsonpath='{.items[*].metadata.name}'); do
  echo "$pod: plugin -> $image"
  if ! kubectl -n "$ns" patch pod "$pod" --type=json -p "[
      {\"op\": \"test\", \"path\": \"/spec/containers/1/name\", \"value\": \"plugin\"},
      {\"op\": \"replace\", \"path\": \"/spec/containers/1/image\", \"value\": \"$image\"}
    ]"; then
    failed+=("$pod (patch refused)")
    continue
  fi
  deadline=$((SECONDS + timeout))
  while :; do
    # "<image> <ready>" of the plugin container, as kubelet reports it. The
    # runtime may report a normalised name (docker.io/library/...), hence the
    # suffix match.
    status=$(kubectl -n "$ns" get pod "$pod" \
      -o jsonpath='{range .status.containerStatuses[?(@.name=="plugin")]}{.image}{" "}{.ready}{end}' || true)
    got=${status% *}
    ready=${status##* }
    if [[ "$ready" == true && ( "$got" == "$image" || "$got" == */"$image" ) ]]; then
      echo "$pod: plugin ready on $got"
      break
    fi
    if ((SECONDS >= deadline)); then
      echo "$pod: plugin not ready on the new image after ${timeout}s (status: ${status:-none})" >&2
      failed+=("$pod (not ready)")
      break
    fi
    sleep 3
  done
done

if ((${#failed[@]})); then
  printf 'not upgraded: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "plugin upgraded on every node pod; no supervisor was restarted"

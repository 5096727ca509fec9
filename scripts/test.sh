#!/usr/bin/env bash
# test.sh - the test command (README, .ci/run): installs what the tests need, builds the
# solution (Release, warnings are errors), publishes the NativeAOT binaries that ship
# (scripts/publish.sh; the integration tests run those), runs every test project and ends with one line
#   Tests: N passed, N failed, N skipped
# Exits non-zero if the build failed, any test failed, the run was aborted or hung, or no test ran.
# Integration tests need root (mounts, mount namespaces, the Ceph daemons); without it they skip.
#
# Environment:
#   TEST_FILTER=...                   passed to dotnet test --filter
#   TEST_TIMEOUT=15m                  the whole test run is stopped after this (suite target: < 20 min)
#   S3SUPERVISOR_TESTS_STRICT=1       a missing prerequisite fails a test instead of skipping it
#   INSTALL_DEPS_SKIP=1               do not check/install packages
#   S3SUPERVISOR_BINARIES=jit         skip the publish (and the images); the tests run `dotnet x.dll` (JIT) instead
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
RESULTS=$REPO/.work/test-results
TMP=${TMPDIR:-/tmp}
TEST_ROOT=${S3SUPERVISOR_TEST_ROOT:-${TMP%/}/s3supervisor-tests}
START=$SECONDS

summary() { # passed failed skipped
  echo "Tests: $1 passed, $2 failed, $3 skipped"
}
fail_early() { # message
  echo "test.sh: $*" >&2
  summary 0 0 0
  exit 1
}

echo "== dependencies"
bash scripts/install-deps.sh || fail_early "installing dependencies failed"
command -v dotnet >/dev/null 2>&1 || fail_early "dotnet is not on PATH (install the .NET SDK pinned in global.json)"

# Daemons, s3fs processes and mounts left by an aborted earlier run (their test process is gone).
# Directories of test processes that are still running (someone else's run) are left alone.
echo "== stale test directories under $TEST_ROOT"
bash scripts/sweep-test-dirs.sh sweep-stale "$TEST_ROOT" ||
  echo "test.sh: WARNING: some stale test directories under $TEST_ROOT could not be cleaned" >&2

echo "== deploy manifests (kustomize render + invariants)"
deploy_rc=0
if command -v kubectl >/dev/null 2>&1 || command -v kustomize >/dev/null 2>&1; then
  bash deploy/validate.sh || deploy_rc=$?
else
  echo "test.sh: NOTE: kubectl/kustomize not found, deploy manifests not checked" >&2
fi

echo "== build"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
dotnet build S3Supervisor.sln -c Release -nologo -clp:ErrorsOnly ||
  fail_early "build failed"

if [ "${S3SUPERVISOR_BINARIES:-}" = jit ]; then
  echo "== publish: skipped (S3SUPERVISOR_BINARIES=jit)"
else
  echo "== publish (NativeAOT)"
  publish_start=$SECONDS
  bash scripts/publish.sh || fail_early "publish failed"
  echo "== publish took $((SECONDS - publish_start)) s"
  # The test kit takes these and no JIT fallback: a test run meant for the binaries that ship must not
  # quietly test something else.
  export S3SUPERVISOR_BINARIES=aot
  # The two images, from the Dockerfiles, with the binaries just published (--prebuilt: the same
  # runtime stage, no second native compile); the container collection runs the node pod of deploy/
  # from them. The first run on a machine also makes the local base images (debootstrap, ~1-2 min).
  echo "== images (podman, scripts/images.sh --prebuilt)"
  images_start=$SECONDS
  if (source scripts/podman-env.sh && INSTALL_DEPS_SKIP=1 bash scripts/images.sh --prebuilt); then
    echo "== images took $((SECONDS - images_start)) s"
  else
    echo "test.sh: WARNING: the images could not be built; the container tests skip (strict: fail)" >&2
  fi
fi

echo "== test"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
args=(test S3Supervisor.sln -c Release --no-build --nologo
  --results-directory "$RESULTS"
  --logger "trx"
  --logger "console;verbosity=normal"
  --blame-hang-timeout "${TEST_HANG_TIMEOUT:-5m}" --blame-hang-dump-type none)
[ -n "${TEST_FILTER:-}" ] && args+=(--filter "$TEST_FILTER")
timeout --kill-after=30s "${TEST_TIMEOUT:-15m}" dotnet "${args[@]}"
rc=$?
[ $rc = 124 ] && echo "test.sh: the test run did not finish within ${TEST_TIMEOUT:-15m} and was stopped" >&2

# Count results over every TRX file (one per test project): Passed, NotExecuted (= skipped),
# anything else (Failed, Error, Timeout, Aborted, ...) is a failure.
passed=0 failed=0 skipped=0 files=0
while IFS= read -r -d '' trx; do
  files=$((files + 1))
  while IFS= read -r outcome; do
    case "$outcome" in
      Passed) passed=$((passed + 1)) ;;
      NotExecuted) skipped=$((skipped + 1)) ;;
      *) failed=$((failed + 1)) ;;
    esac
  done < <(grep -o '<UnitTestResult [^>]*' "$trx" | grep -o ' outcome="[A-Za-z]*"' | cut -d'"' -f2)
done < <(find "$RESULTS" -name '*.trx' -print0)

# Whatever a test left behind (daemons, s3fs, mounts in its scratch directories) is cleaned by the
# test process's watchdog about a second after it exits; sweep once more and name any leak.
sleep 1.5
leaks=$(bash scripts/sweep-test-dirs.sh sweep-stale "$TEST_ROOT" 2>&1) || true
[ -n "$leaks" ] && echo "test.sh: NOTE: the tests left these behind (now cleaned):" >&2 && echo "$leaks" >&2

echo "== done in $((SECONDS - START)) s ($files result files in ${RESULTS#"$REPO"/})"
if [ "$skipped" -gt 0 ]; then
  echo "test.sh: NOTE: $skipped tests were skipped (see 'Skipped' lines above for the reasons; S3SUPERVISOR_TESTS_STRICT=1 makes them fail)" >&2
fi
status=0
if [ $rc != 0 ]; then
  echo "test.sh: dotnet test exited with code $rc" >&2
  status=1
fi
if [ "$failed" -gt 0 ]; then
  status=1
fi
if [ "$deploy_rc" != 0 ]; then
  echo "test.sh: deploy/validate.sh failed (exit $deploy_rc)" >&2
  failed=$((failed + 1))
  status=1
fi
if [ $((passed + failed + skipped)) = 0 ]; then
  echo "test.sh: no test ran" >&2
  status=1
fi
summary "$passed" "$failed" "$skipped"
exit $status

#!/usr/bin/env bash
# publish.sh - the NativeAOT binaries that ship (the images build them the same way):
#   .work/publish/supervisor/s3supervisor   (the operator CLI is a verb of it)
#   .work/publish/plugin/s3csi-plugin
# scripts/test.sh and scripts/local-node.sh run this after the build; the test kit, the benchmark and
# the local node then start these binaries (tests/S3Supervisor.TestKit/Supervisor/ProductBinary.cs),
# and fall back to `dotnet x.dll` with a note only when they are missing or older than the build.
# Warnings are errors, the trim and AOT analysis warnings of every assembly included.
# Needs clang, lld and zlib1g-dev (scripts/install-deps.sh). Incremental: the native compiler runs
# again only when an assembly it reads changed (a full publish of both takes minutes on 2 cores, see
# the README; an unchanged one seconds). Prints the time each binary took.
#
# usage: scripts/publish.sh [supervisor|plugin|all]   (default: all)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=.work/publish
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# What the native compiler reads for a project: its build output (the assembly, the referenced
# projects' and packages' assemblies; the build is deterministic, so unchanged sources give the same
# bytes), the project and the repository's build properties, and the SDK (which picks the framework).
inputs_of() { # project
  local dir
  dir=$(dirname "$1")/bin/Release/net10.0/linux-x64
  {
    dotnet --version
    sha256sum "$1" Directory.Build.props Directory.Packages.props
    find "$dir" -maxdepth 1 -name '*.dll' -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}

publish() { # name project binary
  local name=$1 project=$2 binary=$3 start=$SECONDS inputs
  echo "publish.sh: $name (NativeAOT) -> $OUT/$name/$binary" >&2
  # Built as `dotnet build` builds it, then published from that build (--no-build): publishing is
  # self-contained, and a publish that compiled the assembly itself would leave one that the next
  # build compiles again.
  dotnet build "$project" -c Release -nologo -clp:ErrorsOnly
  # The native compiler (minutes) decides by timestamps, and a solution build rewrites the assemblies
  # even when nothing changed: skip it when the bytes it would read are the ones last published.
  inputs=$(inputs_of "$project")
  if [ -x "$OUT/$name/$binary" ] && [ "$(cat "$OUT/$name/.inputs" 2>/dev/null)" = "$inputs" ]; then
    touch "$OUT/$name/$binary"
    echo "publish.sh: $name unchanged since its last publish (same assemblies), kept" >&2
    return 0
  fi
  rm -rf "$OUT/$name.new"
  # Into a fresh directory, then swapped in: a failed publish never leaves a half-written binary
  # that the tests would take for the current one.
  dotnet publish "$project" -c Release -nologo -clp:ErrorsOnly --no-build -o "$OUT/$name.new" -p:DebugType=none
  [ -x "$OUT/$name.new/$binary" ] || { echo "publish.sh: $OUT/$name.new/$binary was not produced" >&2; return 1; }
  # Only the binary matters here: no symbol file (DebugType=none makes none, but an older one in obj/
  # is still copied), no static web assets manifest.
  find "$OUT/$name.new" -mindepth 1 ! -name "$binary" -delete
  echo "$inputs" >"$OUT/$name.new/.inputs"
  rm -rf "$OUT/$name"
  mv "$OUT/$name.new" "$OUT/$name"
  # Newer than the build it came from, also when the native compiler had nothing to do: the test kit
  # takes a binary older than the assembly beside the tests for a stale one.
  touch "$OUT/$name/$binary"
  echo "publish.sh: $name done in $((SECONDS - start)) s ($(du -h "$OUT/$name/$binary" | cut -f1))" >&2
}

what=${1:-all}
case "$what" in
  supervisor | plugin | all) ;;
  *) echo "usage: scripts/publish.sh [supervisor|plugin|all]" >&2; exit 2 ;;
esac
for tool in clang ld.lld; do
  command -v "$tool" >/dev/null 2>&1 || { echo "publish.sh: $tool is missing (scripts/install-deps.sh installs clang, lld and zlib1g-dev)" >&2; exit 1; }
done
mkdir -p "$OUT"
start=$SECONDS
if [ "$what" = supervisor ] || [ "$what" = all ]; then
  publish supervisor supervisor/S3Supervisor.Supervisor.csproj s3supervisor
fi
if [ "$what" = plugin ] || [ "$what" = all ]; then
  publish plugin plugin/S3Supervisor.Plugin.csproj s3csi-plugin
fi
echo "publish.sh: done in $((SECONDS - start)) s" >&2

#!/usr/bin/env bash
# CI: builds the Portcullis Dockerfile and runs examples/compose (enforce + the `audit` profile) through
# shared/tools/containers.sh, then proves allowed 200 / denied 403 / audit forwards + logs via curl.
# Self-contained: `bash scripts/ci-compose.sh` from the repository root. The stack is torn down by
# containers.sh whatever happens. Env: CONTAINERS_SH (path to containers.sh), WORK (engine state dir).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T0=$SECONDS

CONTAINERS_SH=${CONTAINERS_SH:-}
if [ -z "$CONTAINERS_SH" ]; then
  for c in ../shared/tools/containers.sh /work/shared/tools/containers.sh; do
    [ -f "$c" ] && { CONTAINERS_SH=$(cd "$(dirname "$c")" && pwd)/$(basename "$c"); break; }
  done
fi
[ -n "$CONTAINERS_SH" ] && [ -f "$CONTAINERS_SH" ] || { echo "ci-compose: containers.sh not found (set CONTAINERS_SH)" >&2; exit 2; }

# node-gyp needs the Node headers to build re2 inside the image. With internet access it downloads them;
# offline (CI here) we stage the headers of the host's node, which containers.sh also puts in the base
# image, so they match the image's node exactly.
HEADERS_TGZ=$ROOT/node-headers.tar.gz
cleanup() { rm -f "$HEADERS_TGZ"; }
trap cleanup EXIT
node_version=$(node -p 'process.versions.node')
for base in "$(npm config get nodedir 2>/dev/null || true)" "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")" /usr /usr/local; do
  [ -n "$base" ] && [ -f "$base/include/node/node_version.h" ] || continue
  v=$(awk '/define NODE_MAJOR_VERSION/{a=$3} /define NODE_MINOR_VERSION/{b=$3} /define NODE_PATCH_VERSION/{c=$3} END{print a"."b"."c}' "$base/include/node/node_version.h")
  if [ "$v" = "$node_version" ]; then
    tar -C "$base" -czf "$HEADERS_TGZ" include/node
    echo "ci-compose: staged Node $v headers from $base/include/node for the image build"
    break
  fi
done

export COMPOSE_PROFILES=audit
export PROJECT=${PROJECT:-portcullis-ci}
export WORK=${WORK:-/tmp/ctr}
export SMOKE="bash '$ROOT/examples/compose/smoke.sh'"
rc=0
bash "$CONTAINERS_SH" "$ROOT/examples/compose" docker-compose.yml || rc=$?
echo "ci-compose: rc=$rc in $((SECONDS - T0)) s"
exit $rc

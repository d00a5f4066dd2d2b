#!/usr/bin/env bash
# Push and pull of a ~200 MB image with skopeo against codeyard's registry, against the limit:
# skopeo copying the same image from the same OCI layout to a local dir: (no network, no
# registry). Prints seconds and MB/s for each, and the ratios.
#
#   bench/ecr/bench.sh            # uses target/release/codeyard (cargo build --release -p codeyard)
#   CODEYARD_BIN=... SIZE_MB=200 RUNS=3 bench/ecr/bench.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${CODEYARD_BIN:-$ROOT/target/release/codeyard}
SIZE_MB=${SIZE_MB:-200}
RUNS=${RUNS:-3}
PORT=${PORT:-4677}
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=eu-west-1 AWS_PAGER=""
export AWS_ENDPOINT_URL=http://localhost:$PORT
REG=localhost:$PORT

# --- an OCI layout holding one image: a SIZE_MB gzip layer of random bytes plus a small one
cd "$WORK"
mkdir -p layout/blobs/sha256
blob() { local d; d=$(sha256sum "$1" | cut -c1-64); mv "$1" layout/blobs/sha256/$d; echo "$d $(stat -c %s layout/blobs/sha256/$d)"; }
mkdir -p big && head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom > big/data.bin
tar -C big -cf big.tar . && u1=$(sha256sum big.tar | cut -c1-64) && gzip -1 -c big.tar > big.tgz && rm -rf big big.tar
echo small > small.txt && tar -cf small.tar small.txt && u2=$(sha256sum small.tar | cut -c1-64) && gzip -c small.tar > small.tgz
read d1 s1 < <(blob big.tgz); read d2 s2 < <(blob small.tgz)
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]}}' $u1 $u2 > config.json
read dc sc < <(blob config.json)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' $dc $sc $d1 $s1 $d2 $s2 > manifest.json
read dm sm < <(blob manifest.json)
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' $dm $sm > layout/index.json
echo '{"imageLayoutVersion":"1.0.0"}' > layout/oci-layout
BYTES=$((s1 + s2 + sc))

# --- the server
"$BIN" serve --port $PORT --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 50); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.2; done

t() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
best() { sort -g | head -1; }
local_times=() push_times=() pull_times=()
for i in $(seq "$RUNS"); do
  rm -rf "$WORK/local" "$WORK/pulled"
  local_times+=("$(t skopeo copy -q oci:layout:v1 dir:$WORK/local)")
  aws ecr create-repository --repository-name bench/run$i >/dev/null
  push_times+=("$(t skopeo copy -q --dest-tls-verify=false oci:layout:v1 docker://$REG/bench/run$i:v1)")
  pull_times+=("$(t skopeo copy -q --src-tls-verify=false docker://$REG/bench/run$i:v1 dir:$WORK/pulled)")
  cmp -s "$WORK/local/$d1" "$WORK/pulled/$d1" || { echo "pulled layer differs" >&2; exit 1; }
  # So that the next push uploads again rather than mounting.
  aws ecr delete-repository --repository-name bench/run$i --force >/dev/null
  curl -sf -X POST "http://$REG/_codeyard/ecr/gc?graceSeconds=0" >/dev/null
done
L=$(printf '%s\n' "${local_times[@]}" | best)
P=$(printf '%s\n' "${push_times[@]}" | best)
G=$(printf '%s\n' "${pull_times[@]}" | best)
mb() { echo "scale=1; $BYTES / 1048576 / $1" | bc -l; }
echo "image: $((BYTES / 1048576)) MB in 3 blobs; best of $RUNS runs"
printf 'limit  skopeo oci: -> dir:            %6.2f s  %7s MB/s\n' "$L" "$(mb "$L")"
printf 'push   skopeo oci: -> codeyard        %6.2f s  %7s MB/s  ratio to limit %.2f\n' "$P" "$(mb "$P")" "$(echo "$P / $L" | bc -l)"
printf 'pull   skopeo codeyard -> dir:        %6.2f s  %7s MB/s  ratio to limit %.2f\n' "$G" "$(mb "$G")" "$(echo "$G / $L" | bc -l)"

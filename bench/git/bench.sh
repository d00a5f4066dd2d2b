#!/usr/bin/env bash
# Clone and push throughput of a ~100 MB repository through codeyard's git smart HTTP, against
# plain git over file:// on the same machine (the limit: same git, no HTTP, no server).
#
#   bench/git/bench.sh [path/to/codeyard binary]     (default: target/release/codeyard)
#
# Prints one line per measurement and the ratios (codeyard time / file:// time).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$HERE/../../target/release/codeyard}
WORK=$(mktemp -d)
trap 'kill $SERVER_PID 2>/dev/null; rm -rf "$WORK"' EXIT
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=eu-west-1 AWS_PAGER=""
G=(git -c user.name=Bench -c user.email=bench@example.com -c init.defaultBranch=main
   -c credential.helper= -c "credential.helper=!aws codecommit credential-helper --ignore-host-check \$@"
   -c credential.UseHttpPath=true)

# The server, on a free port, in a fresh data dir.
"$BIN" serve --port 0 --data-dir "$WORK/data" >"$WORK/server.out" 2>/dev/null &
SERVER_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
ENDPOINT=$(awk '{print $4; exit}' "$WORK/server.out")

# A ~100 MB repository: 200 commits of source-like text plus 80 MB of binary blobs.
SRC="$WORK/src"
"${G[@]}" init -q "$SRC"
( cd "$SRC"
  for i in $(seq 1 200); do
    mkdir -p "dir$((i % 20))"
    head -c 100000 /dev/urandom | base64 > "dir$((i % 20))/file$i.txt"
    [ $((i % 20)) = 0 ] && head -c 8M /dev/urandom > "blob$i.bin"
    "${G[@]}" add -A && "${G[@]}" commit -qm "commit $i"
  done
  "${G[@]}" gc -q )
SIZE=$(du -sm "$SRC/.git" | cut -f1)

t() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; echo "$(date +%s.%N) - $s" | bc; }

# file:// (the limit)
"${G[@]}" init -q --bare "$WORK/plain.git"
PUSH_FILE=$(t "${G[@]}" -C "$SRC" push -q "file://$WORK/plain.git" main)
CLONE_FILE=$(t "${G[@]}" clone -q --no-local "file://$WORK/plain.git" "$WORK/c1")

# codeyard
aws --endpoint-url "$ENDPOINT" codecommit create-repository --repository-name bench >/dev/null
PUSH_CY=$(t "${G[@]}" -C "$SRC" push -q "$ENDPOINT/v1/repos/bench" main)
CLONE_CY=$(t "${G[@]}" clone -q "$ENDPOINT/v1/repos/bench" "$WORK/c2")
[ "$("${G[@]}" -C "$WORK/c2" rev-parse HEAD)" = "$("${G[@]}" -C "$SRC" rev-parse HEAD)" ] || { echo "clone mismatch"; exit 1; }

# What one credential-helper call costs (git makes one per push or clone; a Python start-up).
HELPER=$(t sh -c "printf 'protocol=http\\nhost=${ENDPOINT#*://}\\npath=v1/repos/bench\\n' | aws codecommit credential-helper --ignore-host-check get")

rate() { echo "scale=1; $SIZE / $1" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }
echo "repository: ${SIZE} MB packed"
echo "push  file:// ${PUSH_FILE}s ($(rate $PUSH_FILE) MB/s)   codeyard ${PUSH_CY}s ($(rate $PUSH_CY) MB/s)   ratio $(ratio $PUSH_CY $PUSH_FILE)x"
echo "(each codeyard figure includes one aws credential-helper call: ${HELPER}s)"
echo "clone file:// ${CLONE_FILE}s ($(rate $CLONE_FILE) MB/s)   codeyard ${CLONE_CY}s ($(rate $CLONE_CY) MB/s)   ratio $(ratio $CLONE_CY $CLONE_FILE)x"

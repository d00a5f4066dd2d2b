#!/usr/bin/env bash
# Write-path benchmark: wrk against codeyard and moto_server in one run, same scripts, fresh
# data dirs (setup.py creates the same resources on both). Prints req/s, p50 and p99 at
# concurrency 1 and 16 and the ratio to moto.
#
#   bench/write/run.sh [path/to/codeyard] [seconds]
#
# Env: DURABILITY=process|power (codeyard's --durability), CALLS="putevents putobject-4k ..."
# (default: all of getpipeline putevents putobject-4k putobject-4k-distinct putobject-64k
# startbuild), NO_MOTO=1 to skip moto_server. `git push` is timed by gitpush.sh (not wrk).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-target/release/codeyard}"
secs="${2:-10}"
calls="${CALLS:-getpipeline putevents putobject-4k putobject-4k-distinct putobject-64k startbuild}"
extra=()
if [[ -n "${DURABILITY:-}" ]]; then extra=(--durability "$DURABILITY"); fi
cy_port=4610 moto_port=5010
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_up() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" 2>/dev/null && return 0; curl -s -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "server at $1 did not start" >&2; exit 1; }

# One build slot: the first StartBuild's build sleeps in it and every later one waits QUEUED.
CODEYARD_LOG=warn "$bin" serve --port $cy_port --data-dir "$work/codeyard" --build-concurrency 1 "${extra[@]}" 2>"$work/codeyard.log" &
pids+=($!)
wait_up "http://127.0.0.1:$cy_port/_codeyard/health"
targets=("codeyard http://127.0.0.1:$cy_port")
if [[ -z "${NO_MOTO:-}" ]] && command -v moto_server >/dev/null; then
  moto_server -p $moto_port >"$work/moto.log" 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$moto_port/"
  targets+=("moto http://127.0.0.1:$moto_port")
fi

for t in "${targets[@]}"; do python3 "$here/setup.py" "${t#* }"; done

# The largest the store's WAL gets during the run (it must stay bounded under sustained writes).
( max=0; while sleep 0.5; do s=$(stat -c %s "$work/codeyard/state.db-wal" 2>/dev/null || echo 0); (( s > max )) && max=$s && echo "$max" > "$work/wal-max"; done ) &
pids+=($!)

run() { # target url call concurrency -> RESULT line
  local url="$1" call="$2" c="$3" script size=4096
  case "$call" in
    putevents) script=putevents.lua ;;
    putobject-4k) script=putobject.lua size=4096 ;;
    putobject-64k) script=putobject.lua size=65536 ;;
    putobject-4k-distinct) script=putobject-distinct.lua size=4096 ;;
    getpipeline) script=getpipeline.lua ;;
    startbuild) script=startbuild.lua ;;
    *) echo "unknown call $call" >&2; exit 2 ;;
  esac
  BENCH_DIR="$here" OBJECT_SIZE=$size wrk -t1 -c"$c" -d"${secs}s" --latency -s "$here/$script" "$url" | grep '^RESULT'
}

printf '| call | c | server | req/s | p50 ms | p99 ms | non-2xx | vs moto |\n|---|---|---|---|---|---|---|---|\n'
for call in $calls; do
  for c in 1 16; do
    declare -A rps=()
    for t in "${targets[@]}"; do
      name="${t%% *}" url="${t#* }"
      line="$(run "$url" "$call" "$c")"
      r="$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line")"
      p50="$(sed -E 's/.*p50=([0-9.]+).*/\1/' <<<"$line")"
      p99="$(sed -E 's/.*p99=([0-9.]+).*/\1/' <<<"$line")"
      bad="$(sed -E 's/.*non2xx=([0-9]+) errors=([0-9]+).*/\1+\2/' <<<"$line")"
      rps[$name]="$r"
      ratio=""
      if [[ "$name" == codeyard ]]; then ratio="-"; else ratio="$(awk -v a="${rps[codeyard]}" -v b="$r" 'BEGIN{ if (b>0) printf "codeyard %.1fx", a/b; else print "-" }')"; fi
      printf '| %s | %s | %s | %.0f | %s | %s | %s | %s |\n' "$call" "$c" "$name" "$r" "$p50" "$p99" "$bad" "$ratio"
    done
  done
done
echo "durability=${DURABILITY:-default}, ${secs}s per run, wrk -t1, $(nproc) cores" >&2
echo "largest codeyard WAL during the run: $(( $(cat "$work/wal-max" 2>/dev/null || echo 0) / 1048576 )) MiB" >&2

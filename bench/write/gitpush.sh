#!/usr/bin/env bash
# `git push` of one small commit (one changed file), timed per push: sequentially (c=1) and
# from 16 clones at once, each to its own branch (c=16). codeyard's git smart HTTP against plain
# git over file:// (the floor: the same git, no HTTP, no server); moto has no git server.
# wrk is not the tool here: each push is a git process (receive-pack negotiation, a pack).
#
#   bench/write/gitpush.sh [path/to/codeyard] [pushes per round, default 160]
#
# Prints one table row per server and concurrency: pushes/s, p50, p99 and the count.
set -euo pipefail
bin="${1:-target/release/codeyard}"
n="${2:-160}"
work="$(mktemp -d)"
port=4611
cleanup() { [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=eu-west-1 AWS_PAGER=""
G=(git -c user.name=Bench -c user.email=bench@example.com -c init.defaultBranch=main)

CODEYARD_LOG=warn "$bin" serve --port $port --data-dir "$work/data" 2>"$work/server.log" &
pid=$!
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/_codeyard/health" && break; sleep 0.1; done
aws --endpoint-url "http://127.0.0.1:$port" codecommit create-repository --repository-name bench >/dev/null
"${G[@]}" init -q --bare "$work/plain.git"
# Open auth accepts any key in git's Basic credentials (no credential-helper process per push).
cy_url="http://AKIDBENCHMARK:x@127.0.0.1:$port/v1/repos/bench"

# A seed commit on main, pushed to both.
"${G[@]}" init -q "$work/seed"
( cd "$work/seed"; seq 1 1000 >file; "${G[@]}" add file; "${G[@]}" commit -qm seed
  "${G[@]}" push -q "$cy_url" main; "${G[@]}" push -q "file://$work/plain.git" main )

# pushes <clone dir> <branch> <count>: one line of microseconds per push.
pushes() {
  local dir="$1" branch="$2" count="$3" i s e
  cd "$dir"
  for i in $(seq "$count"); do
    echo "$branch $i" >>file; "${G[@]}" commit -qam "$branch $i"
    s=$(date +%s%N); "${G[@]}" push -q origin "$branch" 2>>"$work/push-errors"; e=$(date +%s%N)
    echo $(( (e - s) / 1000 ))
  done
}

round() { # name url concurrency -> table row
  local name="$1" url="$2" c="$3" per=$((n / $3)) s e clients=()
  for j in $(seq "$c"); do
    "${G[@]}" clone -q "$url" "$work/$name-$c-$j" 2>/dev/null
    "${G[@]}" -C "$work/$name-$c-$j" checkout -q -b "b-$c-$j"
  done
  s=$(date +%s%N)
  for j in $(seq "$c"); do
    pushes "$work/$name-$c-$j" "b-$c-$j" "$per" >"$work/t-$name-$c-$j" &
    clients+=($!)
  done
  wait "${clients[@]}"
  e=$(date +%s%N)
  cat "$work"/t-"$name-$c"-* | sort -n | awk -v c="$c" -v name="$name" -v secs="$(( (e - s) / 1000000 ))" '
    { v[NR] = $1 } END {
      p50 = v[int(NR * 0.5) + 1]; p99 = v[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1]
      printf "| git push, 1 small commit | %d | %s | %.0f | %.1f | %.1f | %d |\n", c, name, NR / (secs / 1000), p50 / 1000, p99 / 1000, NR }'
}

printf '| call | c | server | pushes/s | p50 ms | p99 ms | pushes |\n|---|---|---|---|---|---|---|\n'
for c in 1 16; do
  round codeyard "$cy_url" "$c"
  round file "file://$work/plain.git" "$c"
done
if [[ -s "$work/push-errors" ]]; then echo "push errors:" >&2; head -5 "$work/push-errors" >&2; fi

#!/usr/bin/env bash
# The IAM evaluator's cost per request: wrk runs of one cheap awsJson call (CloudWatch Logs
# DescribeLogGroups) signed as an assumed-role session, against a server with --iam enforce
# and one with --iam off (fresh data dirs, same role and policy), plus the account root under
# enforce. Prints req/s, p50, p99 at concurrency 1 and 16, and the per-request difference.
#
#   bench/iam/run.sh [path/to/codeyard] [seconds]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-target/release/codeyard}"
secs="${2:-10}"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_up() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "server at $1 did not start" >&2; exit 1; }

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=eu-west-1 AWS_PAGER=""
trust='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}'
# A policy of the size roles usually have: several statements, the one that matters last.
policy='{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::artifacts/*"},
 {"Effect":"Allow","Action":["codecommit:GitPull"],"Resource":"*"},
 {"Effect":"Deny","Action":"logs:DeleteLogGroup","Resource":"*"},
 {"Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],"Resource":"arn:aws:logs:*:*:log-group:/aws/codebuild/*"},
 {"Effect":"Allow","Action":["logs:Describe*"],"Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"eu-west-1"}}}]}'

# start <mode> <port>: a server, the role, and a session of it; prints "key secret token".
start() {
  local mode="$1" port="$2" url="http://127.0.0.1:$2"
  CODEYARD_LOG=warn "$bin" serve --port "$port" --data-dir "$work/$mode" --iam "$mode" >"$work/$mode.log" 2>&1 &
  pids+=($!)
  wait_up "$url/_codeyard/health"
  aws --endpoint-url "$url" iam create-role --role-name bench --assume-role-policy-document "$trust" >/dev/null
  aws --endpoint-url "$url" iam put-role-policy --role-name bench --policy-name p --policy-document "$policy"
  aws --endpoint-url "$url" sts assume-role --role-arn arn:aws:iam::000000000000:role/bench --role-session-name bench \
    --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text
}

run() { # url key token concurrency -> RESULT line
  BENCH_DIR="$here/../write" ACCESS_KEY="$2" SESSION_TOKEN="$3" wrk -t1 -c"$4" -d"${secs}s" --latency -s "$here/describeloggroups.lua" "$1" | grep '^RESULT'
}

start enforce 4620 >"$work/enforce.creds"
start off 4621 >"$work/off.creds"
read -r ekey esecret etoken <"$work/enforce.creds"
read -r okey _ otoken <"$work/off.creds"
# The runs act as the session, not as root.
AWS_ACCESS_KEY_ID="$ekey" AWS_SECRET_ACCESS_KEY="$esecret" AWS_SESSION_TOKEN="$etoken" \
  aws --endpoint-url http://127.0.0.1:4620 sts get-caller-identity --query Arn --output text >&2
# The session is allowed (a denial would be a 403 and show as non-2xx). The machine is shared,
# so every configuration runs REPEAT times, interleaved, and the best run of each is kept.
repeat="${REPEAT:-3}"
rows=("session enforce http://127.0.0.1:4620 $ekey $etoken" "session off http://127.0.0.1:4621 $okey $otoken" "root enforce http://127.0.0.1:4620 test -")
printf '| caller | --iam | c | best req/s | best p50 ms | p99 ms (best run) | non-2xx |\n|---|---|---|---|---|---|---|\n'
declare -A rps=() p50s=() lines=()
for c in 1 16; do
  for _ in $(seq "$repeat"); do
    for row in "${rows[@]}"; do
      read -r who mode url key token <<<"$row"
      [[ "$token" == "-" ]] && token=""
      line="$(run "$url" "$key" "$token" "$c")"
      r="$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line")"
      id="$who-$mode-$c"
      if awk -v a="$r" -v b="${rps[$id]:-0}" 'BEGIN{exit !(a>b)}'; then rps[$id]="$r"; lines[$id]="$line"; fi
      p="$(sed -E 's/.*p50=([0-9.]+).*/\1/' <<<"$line")"
      if awk -v a="$p" -v b="${p50s[$id]:-1e9}" 'BEGIN{exit !(a<b)}'; then p50s[$id]="$p"; fi
    done
  done
  for row in "${rows[@]}"; do
    read -r who mode _ <<<"$row"
    id="$who-$mode-$c" line="${lines[$who-$mode-$c]}"
    p99="$(sed -E 's/.*p99=([0-9.]+).*/\1/' <<<"$line")"
    bad="$(sed -E 's/.*non2xx=([0-9]+) errors=([0-9]+).*/\1+\2/' <<<"$line")"
    printf '| %s | %s | %s | %.0f | %s | %s | %s |\n' "$who" "$mode" "$c" "${rps[$id]}" "${p50s[$id]}" "$p99" "$bad"
  done
  awk -v e="${rps[session-enforce-$c]}" -v o="${rps[session-off-$c]}" -v pe="${p50s[session-enforce-$c]}" -v po="${p50s[session-off-$c]}" -v c="$c" \
    'BEGIN{ printf "c=%s: enforce vs off: %.1f us per request by throughput (%.1f%%), p50 %+.1f us\n", c, (1e6/e - 1e6/o), 100*(1-e/o), 1000*(pe-po) }' >&2
done
echo "${secs}s per run, best of $repeat, wrk -t1, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

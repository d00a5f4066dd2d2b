#!/usr/bin/env bash
# Runs every test: the workspace's unit and end-to-end tests (cargo nextest, in parallel),
# then the seed acceptance run (../shared/acceptance/devops-demo/run.sh) against a fresh
# server. Ends with one line: "tests: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOG_DIR=${LOG_DIR:-$(mktemp -d)}
passed=0 failed=0

echo "== build"
cargo build --workspace --all-targets --locked 2>&1 | tail -n 3 || { echo "tests: 0 passed, 1 failed"; exit 1; }

ACCEPTANCE="$ROOT/../shared/acceptance/devops-demo/run.sh"
BIN="${CARGO_TARGET_DIR:-target}/debug/codeyard"
if [ "${SKIP_ACCEPTANCE:-}" != 1 ] && [ -f "$ACCEPTANCE" ]; then
  # The acceptance run builds in containers of the project's image, as on AWS. The stand-in for
  # AWS's curated images is built from Debian packages while the tests run (minutes the first
  # time on a machine, seconds from the cached root filesystem after that).
  acceptance_data=$(mktemp -d)
  "$BIN" images build-standard --data-dir "$acceptance_data" >"$LOG_DIR/build-standard.log" 2>&1 &
  build_standard=$!
fi

echo "== unit and end-to-end tests"
if cargo nextest --version >/dev/null 2>&1; then
  # Most end-to-end tests wait on builds, git and terraform rather than the CPU.
  cargo nextest run --workspace --no-fail-fast --test-threads "${TEST_THREADS:-4}" 2>&1 | tee "$LOG_DIR/nextest.log"
  summary=$(grep -E '[0-9]+ tests? run:' "$LOG_DIR/nextest.log" | tail -n 1)
  p=$(echo "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
  f=$(echo "$summary" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 0)
  [ -n "$summary" ] || f=1
else
  cargo test --workspace --no-fail-fast 2>&1 | tee "$LOG_DIR/cargo-test.log"
  p=$(grep -E '^test result:' "$LOG_DIR/cargo-test.log" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' | paste -sd+ | bc)
  f=$(grep -E '^test result:' "$LOG_DIR/cargo-test.log" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' | paste -sd+ | bc)
fi
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))

if [ "${SKIP_ACCEPTANCE:-}" != 1 ] && [ -f "$ACCEPTANCE" ]; then
  echo "== acceptance: the seed topology end to end, every build in a container"
  if ! wait "$build_standard"; then
    echo "codeyard images build-standard failed:"; tail -n 20 "$LOG_DIR/build-standard.log"
    echo "tests: $passed passed, $((failed + 1)) failed"
    exit 1
  fi
  tail -n 1 "$LOG_DIR/build-standard.log"
  "$BIN" serve --port 0 --data-dir "$acceptance_data" --executor container >"$LOG_DIR/acceptance-server.out" 2>"$LOG_DIR/acceptance-server.log" &
  server=$!
  for _ in $(seq 1 100); do grep -q listening "$LOG_DIR/acceptance-server.out" 2>/dev/null && break; sleep 0.2; done
  endpoint=$(awk '/listening/ {print $4; exit}' "$LOG_DIR/acceptance-server.out")
  if [ -z "$endpoint" ]; then
    echo "the acceptance server did not start:"; tail -n 20 "$LOG_DIR/acceptance-server.log"
    echo "tests: $passed passed, $((failed + 1)) failed"
    exit 1
  fi
  ENDPOINT=$endpoint bash "$ACCEPTANCE" 2>&1 | tee "$LOG_DIR/acceptance.log"
  kill "$server" 2>/dev/null; wait "$server" 2>/dev/null
  line=$(grep -E '^acceptance: [0-9]+ passed, [0-9]+ failed' "$LOG_DIR/acceptance.log" | tail -n 1)
  ap=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
  af=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 1)
  [ -n "$line" ] || af=1
  if [ "${ACCEPTANCE_GATES:-1}" = 1 ]; then
    passed=$((passed + ap)); failed=$((failed + af))
  else
    echo "(acceptance is reported but does not gate this run: ACCEPTANCE_GATES=0)"
  fi
  echo "== acceptance without one statement of its pipeline role (IAM decides)"
  if scripts/acceptance-minus-a-statement.sh "$BIN" 2>&1 | tee "$LOG_DIR/acceptance-minus.log" | grep -q '^PASS'; then
    cat "$LOG_DIR/acceptance-minus.log"; passed=$((passed + 1))
  else
    cat "$LOG_DIR/acceptance-minus.log"; failed=$((failed + 1))
  fi
else
  echo "== acceptance skipped (SKIP_ACCEPTANCE=1 or $ACCEPTANCE not found)"
fi

echo "logs: $LOG_DIR"
echo "tests: $passed passed, $failed failed"
[ "$failed" = 0 ]

#!/usr/bin/env bash
# The seed acceptance run with one statement taken out of the Terraform's pipeline role
# (codebuild:StartBuild): under `--iam enforce` the pipeline must fail where AWS fails it, at the
# build action, with AWS's message. Proves that the green acceptance run is green because the
# roles allow it, not because nothing is checked.
#
#   scripts/acceptance-minus-a-statement.sh <codeyard binary>
# Prints "PASS ..." or "FAIL ..." and exits 0 or 1.
set -uo pipefail
BIN=${1:?usage: acceptance-minus-a-statement.sh <codeyard binary>}
HERE=$(cd "$(dirname "$0")/.." && pwd)
DEMO="$HERE/../shared/acceptance/devops-demo"
WORK=$(mktemp -d)
cp -r "$DEMO" "$WORK/demo"
python3 - "$WORK/demo/terraform/main.tf" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
old = 'Action = ["codebuild:BatchGetBuilds", "codebuild:StartBuild"]'
assert old in s, "the pipeline role's codebuild statement moved: update this script"
open(p, "w").write(s.replace(old, 'Action = ["codebuild:BatchGetBuilds"]'))
PY
"$BIN" serve --port 0 --data-dir "$WORK/data" --executor local --iam enforce >"$WORK/server.out" 2>"$WORK/server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 100); do grep -q listening "$WORK/server.out" 2>/dev/null && break; sleep 0.2; done
endpoint=$(grep -oE 'http://[^ ]+' "$WORK/server.out" | head -n 1)
ENDPOINT=$endpoint TIMEOUT=180 "$WORK/demo/run.sh" >"$WORK/run.log" 2>&1
want="is not authorized to perform: codebuild:StartBuild on resource: arn:aws:codebuild:eu-west-1:000000000000:project/devopsintro-dev-codebuild-build-and-test-project because no identity-based policy allows the codebuild:StartBuild action"
if grep -q "FAIL pipeline execution for the push: Failed" "$WORK/run.log" && grep -q "Error calling startBuild: User: arn:aws:sts::000000000000:assumed-role/devopsintro-dev-codepipeline-iam-role/[0-9]* $want" "$WORK/run.log"; then
  echo "PASS without codebuild:StartBuild the pipeline fails at its build action with AWS's message"
  exit 0
fi
echo "FAIL without codebuild:StartBuild the pipeline should fail at its build action (log: $WORK/run.log)"
grep -E "PASS|FAIL" "$WORK/run.log" | head -20
exit 1

#!/usr/bin/env python3
"""The seed pipeline, from `git push` to image pushed: wall time split into the user's build
commands and codeyard's own overhead, repeated, as medians.

    cargo build --release && python3 bench/seed/bench.py [--runs 5]

It starts a release `codeyard serve` on a free port in a fresh data dir, runs
`codeyard demo --exit --endpoint ...` once to create the topology and push the sample service,
then pushes N more commits (each a one-line change) and measures, for each execution started
by the push:

* wall: from just before `git push` until the execution is Succeeded;
* commands: the time the builds spent in their INSTALL, PRE_BUILD, BUILD and POST_BUILD phases
  (the user's buildspec commands, incl. javac and docker build), summed over the two builds,
  which run one after the other;
* overhead: wall minus commands (event delivery, pipeline scheduling, source zips, artifact
  upload and S3 deploy, build provisioning, log shipping, image push bookkeeping).

For reference, the same pipeline on AWS takes several minutes, most of it provisioning.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "codeyard")
COMMAND_PHASES = {"INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"}


def aws(endpoint, *args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_DEFAULT_REGION="eu-west-1", AWS_PAGER="")
    out = subprocess.run(["aws", "--endpoint-url", endpoint, "--output", "json", *args],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    data = tempfile.mkdtemp(prefix="codeyard-bench-seed-")
    server = subprocess.Popen([BIN, "serve", "--port", "0", "--data-dir", data],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    endpoint = server.stdout.readline().split()[3]
    try:
        subprocess.run([BIN, "demo", "--exit", "--endpoint", endpoint], check=True,
                       stdout=subprocess.DEVNULL)
        pipeline = "codeyard-demo-pipeline"
        repo_url = aws(endpoint, "codecommit", "get-repository", "--repository-name",
                       "codeyard-demo-repo")["repositoryMetadata"]["cloneUrlHttp"]
        work = tempfile.mkdtemp()
        url = repo_url.replace("://", "://bench:bench@", 1)
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@codeyard.local", "-c", "credential.helper="]
        subprocess.run(git + ["clone", "-q", url, work + "/repo"], check=True)
        rows = []
        for i in range(args.runs):
            with open(work + "/repo/README.bench", "a") as f:
                f.write(f"run {i}\n")
            subprocess.run(git + ["-C", work + "/repo", "add", "-A"], check=True)
            subprocess.run(git + ["-C", work + "/repo", "commit", "-qm", f"bench {i}"], check=True)
            commit = subprocess.run(["git", "-C", work + "/repo", "rev-parse", "HEAD"], check=True,
                                    capture_output=True, text=True).stdout.strip()
            t0 = time.time()
            subprocess.run(git + ["-C", work + "/repo", "push", "-q", "origin", "HEAD:master"], check=True)
            execution, status = None, None
            while status not in ("Succeeded", "Failed", "Stopped", "Superseded"):
                time.sleep(0.2)
                for e in aws(endpoint, "codepipeline", "list-pipeline-executions", "--pipeline-name", pipeline)["pipelineExecutionSummaries"]:
                    if any(r.get("revisionId") == commit for r in e.get("sourceRevisions", [])):
                        execution, status = e["pipelineExecutionId"], e["status"]
            wall = time.time() - t0
            if status != "Succeeded":
                sys.exit(f"execution {execution} ended {status}")
            actions = aws(endpoint, "codepipeline", "list-action-executions", "--pipeline-name", pipeline,
                          "--filter", json.dumps({"pipelineExecutionId": execution}))["actionExecutionDetails"]
            build_ids = [a["output"]["executionResult"]["externalExecutionId"] for a in actions
                         if a["input"]["actionTypeId"]["provider"] == "CodeBuild"]
            builds = aws(endpoint, "codebuild", "batch-get-builds", "--ids", *build_ids)["builds"]
            commands = sum(p["endTime"] - p["startTime"] for b in builds for p in b["phases"]
                           if p["phaseType"] in COMMAND_PHASES and "endTime" in p)
            rows.append((wall, commands, wall - commands))
            print(f"run {i + 1}: wall {wall:6.2f}s  commands {commands:6.2f}s  overhead {wall - commands:6.2f}s", flush=True)
        med = [statistics.median(c) for c in zip(*rows)]
        print(f"median of {len(rows)}: wall {med[0]:.2f}s  user commands {med[1]:.2f}s  codeyard overhead {med[2]:.2f}s "
              f"({100 * med[2] / med[0]:.0f}% of wall)")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()

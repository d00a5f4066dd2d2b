#!/usr/bin/env python3
"""Overhead of a codeyard build: StartBuild -> first command, and total minus command time.

Starts its own codeyard server (target/release/codeyard unless CODEYARD_BIN is set) in a fresh
data dir, creates a NO_SOURCE project with a trivial buildspec, then runs 50 builds one after
the other and 20 at once (build concurrency 20 for that round). For each build:

  start->first  = time the first command ran (date +%s%N inside it) - time StartBuild was sent
  overhead      = (build endTime - StartBuild sent) - (time between the first and last command)

The physical floor it is compared with, measured in the same run: spawning `bash -c` with
one `date` command directly (fork+exec of bash), the least any build runner must do.
"""
import json, os, re, socket, statistics, subprocess, sys, tempfile, time
import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CODEYARD_BIN", os.path.join(ROOT, "target/release/codeyard"))
SPEC = """version: 0.2
phases:
  build:
    commands:
      - echo "FIRST $(date +%s%N)"
      - echo "LAST $(date +%s%N)"
"""

def serve(data, concurrency):
    p = subprocess.Popen([BIN, "serve", "--port", "0", "--data-dir", data, "--build-concurrency", str(concurrency)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    return p, line.split()[3]

def clients(endpoint):
    kw = dict(endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test")
    return boto3.client("codebuild", **kw), boto3.client("logs", **kw)

def measure(cb, logs, ids_and_sent):
    out = []
    for bid, sent in ids_and_sent:
        while True:
            b = cb.batch_get_builds(ids=[bid])["builds"][0]
            if b["buildComplete"]:
                break
            time.sleep(0.02)
        assert b["buildStatus"] == "SUCCEEDED", b
        text = "\n".join(e["message"] for e in logs.get_log_events(
            logGroupName=b["logs"]["groupName"], logStreamName=b["logs"]["streamName"], startFromHead=True)["events"])
        first = int(re.search(r"^FIRST (\d+)", text, re.M).group(1)) / 1e9
        last = int(re.search(r"^LAST (\d+)", text, re.M).group(1)) / 1e9
        end = b["endTime"].timestamp()
        out.append((first - sent, (end - sent) - (last - first)))
    return out

def floor(n=50):
    samples = []
    for _ in range(n):
        t = time.time()
        v = int(subprocess.run(["bash", "-c", "date +%s%N"], capture_output=True, text=True).stdout) / 1e9
        samples.append(v - t)
    return statistics.median(samples)

def summary(name, rows, floor_s):
    a = sorted(r[0] for r in rows); o = sorted(r[1] for r in rows)
    p = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))]
    print(f"{name}: start->first median {statistics.median(a)*1000:.0f} ms (p90 {p(a,.9)*1000:.0f}), "
          f"overhead median {statistics.median(o)*1000:.0f} ms (p90 {p(o,.9)*1000:.0f}); "
          f"start->first / bash spawn floor = {statistics.median(a)/floor_s:.0f}x")

def main():
    floor_s = floor()
    print(f"floor: bash -c 'date' spawn {floor_s*1000:.1f} ms (median of 50)")
    with tempfile.TemporaryDirectory() as d:
        proc, endpoint = serve(d, 20)
        try:
            cb, logs = clients(endpoint)
            cb.create_project(name="bench", source={"type": "NO_SOURCE", "buildspec": SPEC},
                              artifacts={"type": "NO_ARTIFACTS"}, serviceRole="arn:aws:iam::000000000000:role/bench",
                              environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                                           "computeType": "BUILD_GENERAL1_SMALL"})
            seq = []
            for _ in range(50):
                sent = time.time()
                bid = cb.start_build(projectName="bench")["build"]["id"]
                seq += measure(cb, logs, [(bid, sent)])
            summary("50 in a row", seq, floor_s)
            batch = []
            for _ in range(20):
                sent = time.time()
                batch.append((cb.start_build(projectName="bench")["build"]["id"], sent))
            summary("20 at once", measure(cb, logs, batch), floor_s)
        finally:
            proc.terminate(); proc.wait()

if __name__ == "__main__":
    main()

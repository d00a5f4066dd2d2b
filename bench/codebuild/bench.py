#!/usr/bin/env python3
"""Overhead of a codeyard build: StartBuild -> first command, and total minus command time.

Starts its own codeyard server (target/release/codeyard unless CODEYARD_BIN is set) in a fresh
data dir, creates a NO_SOURCE project with a trivial buildspec, then runs 50 builds one after
the other and 20 at once (build concurrency 20 for that round). For each build:

  start->first  = time the first command ran (date +%s%N inside it) - time StartBuild was sent
  overhead      = (build endTime - StartBuild sent) - (time between the first and last command)

The physical floor it is compared with, measured in the same run: spawning `bash -c` with
one `date` command directly (fork+exec of bash), the least any build runner must do.

BENCH_EXECUTORS=local,container (the default) runs the rounds once per executor. For the
container executor the project's image is a 5 MB image (the host's bash and busybox) pushed
to the server's ECR with buildah beforehand, and one warm-up build runs first, so the figures
are for a cached image (every build still asks the registry whether the tag moved).
"""
import json, os, re, socket, statistics, subprocess, sys, tempfile, time
import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("CODEYARD_BIN", os.path.join(ROOT, "target/release/codeyard"))
SPEC = """version: 0.2
phases:
  build:
    commands:
      - echo "FIRST ${EPOCHREALTIME/./}"
      - echo "LAST ${EPOCHREALTIME/./}"
"""

def serve(data, concurrency, executor):
    p = subprocess.Popen([BIN, "serve", "--port", "0", "--data-dir", data, "--build-concurrency", str(concurrency),
                          "--executor", executor],
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
        first = int(re.search(r"^FIRST (\d+)", text, re.M).group(1)) / 1e6
        last = int(re.search(r"^LAST (\d+)", text, re.M).group(1)) / 1e6
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

def push_image(endpoint, work):
    """A 5 MB image of the host's bash and busybox, pushed to the server's ECR; its URI."""
    host = endpoint.replace("http://", "")
    ecr = boto3.client("ecr", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="test",
                       aws_secret_access_key="test")
    ecr.create_repository(repositoryName="bench")
    # CodeBuild pulls with its own credentials (imagePullCredentialsType CODEBUILD): the
    # repository policy must let the service principal pull, as on AWS.
    ecr.set_repository_policy(repositoryName="bench", policyText=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]}]}))
    script = f"""set -e; r={work}/rootfs; mkdir -p $r/bin $r/tmp
cp /bin/busybox /bin/bash $r/bin/
for lib in $(ldd /bin/bash | grep -o '/[^ ]*'); do mkdir -p $r$(dirname $lib); cp -L $lib $r$lib; done
for a in sh sleep cat echo mv rm mkdir; do ln -sf busybox $r/bin/$a; done
B="buildah --root {work}/broot --runroot {work}/brun --storage-driver vfs"
c=$($B from scratch); $B copy $c $r/ / >/dev/null; $B config --env PATH=/bin $c; $B commit -q $c bench:1 >/dev/null
$B push -q --tls-verify=false bench:1 docker://{host}/bench:1"""
    subprocess.run(["bash", "-c", script], check=True)
    return "000000000000.dkr.ecr.eu-west-1.amazonaws.com/bench:1"

def bench_role(endpoint):
    """The project's service role: trusts CodeBuild, may write its logs and pull images (IAM is enforced)."""
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["logs:*", "ecr:*"], "Resource": "*"}]}
    arn = iam.create_role(RoleName="bench", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="bench", PolicyName="run", PolicyDocument=json.dumps(allow))
    return arn


def rounds(executor, floor_s, in_row, at_once):
    with tempfile.TemporaryDirectory() as d:
        proc, endpoint = serve(d, 20, executor)
        try:
            cb, logs = clients(endpoint)
            image = "aws/codebuild/standard:7.0"
            if executor == "container":
                image = push_image(endpoint, d)
            role = bench_role(endpoint)
            cb.create_project(name="bench", source={"type": "NO_SOURCE", "buildspec": SPEC},
                              artifacts={"type": "NO_ARTIFACTS"}, serviceRole=role,
                              environment={"type": "LINUX_CONTAINER", "image": image,
                                           "computeType": "BUILD_GENERAL1_SMALL"})
            if executor == "container":  # warm-up: the first pull
                measure(cb, logs, [(cb.start_build(projectName="bench")["build"]["id"], time.time())])
            seq = []
            for _ in range(in_row):
                sent = time.time()
                bid = cb.start_build(projectName="bench")["build"]["id"]
                seq += measure(cb, logs, [(bid, sent)])
            summary(f"{executor}: {in_row} in a row", seq, floor_s)
            batch = []
            for _ in range(at_once):
                sent = time.time()
                batch.append((cb.start_build(projectName="bench")["build"]["id"], sent))
            summary(f"{executor}: {at_once} at once", measure(cb, logs, batch), floor_s)
        finally:
            proc.terminate(); proc.wait()

def main():
    floor_s = floor()
    print(f"floor: bash -c 'date' spawn {floor_s*1000:.1f} ms (median of 50)")
    for executor in os.environ.get("BENCH_EXECUTORS", "local,container").split(","):
        if executor == "local":
            rounds("local", floor_s, 50, 20)
        else:
            rounds(executor, floor_s, 20, 10)

if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Console page latency with many pipelines and builds (issue 17: under 100 ms with 100
pipelines and 10,000 builds).

Sets up, through the APIs (boto3), in us-east-1 (the console's default region):
  * P pipelines (default 100): CodeCommit source (not polling, on a branch that does not exist,
    so each CreatePipeline's execution fails at once: every pipeline has a latest execution)
    -> CodeBuild;
  * B builds (default 10,000) over 10 projects: the server has one build slot and the first
    build is `sleep 3600`, so the others stay QUEUED (real build records, no 10,000 processes).
Then GETs each console page N times in a row (one keep-alive session cookie, as a browser) and
prints p50 / p95 / max per page.

Usage: python3 bench/console/bench.py [--binary target/release/codeyard] [--pipelines 100]
       [--builds 10000] [--runs 30]      (or ENDPOINT=http://localhost:4566 for a running server)
"""
import argparse, concurrent.futures, http.client, json, os, shutil, statistics, subprocess, tempfile, time, urllib.parse
import boto3
from botocore.config import Config

REGION = "us-east-1"
TRUST = lambda s: json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": s}, "Action": "sts:AssumeRole"}]})
ALLOW = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "logs:*", "codecommit:*", "codebuild:*"], "Resource": "*"}]})


def start_server(binary):
    data = tempfile.mkdtemp(prefix="console-bench-")
    p = subprocess.Popen([binary, "serve", "--port", "0", "--data-dir", data, "--build-concurrency", "1", "--executor", "local"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return p, p.stdout.readline().split()[3], data


def client(endpoint, service):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}, max_pool_connections=64))


def role(iam, name, service):
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST(service))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="run", PolicyDocument=ALLOW)
    return arn


def setup(endpoint, pipelines, builds):
    iam, cc, cb, cp, s3 = (client(endpoint, s) for s in ("iam", "codecommit", "codebuild", "codepipeline", "s3"))
    build_role = role(iam, "bench-build", "codebuild.amazonaws.com")
    pipeline_role = role(iam, "bench-pipeline", "codepipeline.amazonaws.com")
    s3.create_bucket(Bucket="bench-artifacts")
    cc.create_repository(repositoryName="bench")
    env = {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL"}
    projects = [f"proj-{i}" for i in range(10)]
    for i, name in enumerate(projects):
        spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - " + ("sleep 3600" if i == 0 else "true") + "\n"
        cb.create_project(name=name, source={"type": "NO_SOURCE", "buildspec": spec}, artifacts={"type": "NO_ARTIFACTS"}, environment=env, serviceRole=build_role)
    t = time.time()
    cb.start_build(projectName="proj-0")  # holds the one build slot
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: cb.start_build(projectName=projects[i % 10]), range(builds - 1)))
    print(f"{builds} StartBuild calls: {time.time() - t:.1f} s")
    act = lambda name, cat, prov, cfg, i, o: {"name": name, "actionTypeId": {"category": cat, "owner": "AWS", "provider": prov, "version": "1"},
                                             "configuration": cfg, "inputArtifacts": [{"name": a} for a in i], "outputArtifacts": [{"name": a} for a in o]}
    t = time.time()
    for n in range(pipelines):
        cp.create_pipeline(pipeline={"name": f"pipe-{n}", "roleArn": pipeline_role, "artifactStore": {"type": "S3", "location": "bench-artifacts"}, "stages": [
            {"name": "Source", "actions": [act("Source", "Source", "CodeCommit", {"RepositoryName": "bench", "BranchName": "none", "PollForSourceChanges": "false"}, [], ["src"])]},
            {"name": "Build", "actions": [act("Build", "Build", "CodeBuild", {"ProjectName": f"proj-{n % 10}"}, ["src"], ["out"])]}]})
    print(f"{pipelines} CreatePipeline calls: {time.time() - t:.1f} s")
    some_build = cb.list_builds_for_project(projectName="proj-3")["ids"][0]
    return some_build


def measure(endpoint, paths, runs):
    u = urllib.parse.urlparse(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    cookie = None
    print(f"{'page':<45} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'KiB':>6}")
    for path in paths:
        times, size = [], 0
        for _ in range(runs + 1):
            headers = {"Accept": "text/html", "Host": f"{u.hostname}:{u.port}"}
            if cookie:
                headers["Cookie"] = cookie
            t = time.perf_counter()
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            body = r.read()
            elapsed = (time.perf_counter() - t) * 1000
            assert r.status == 200, (path, r.status, body[:300])
            cookie = cookie or (r.getheader("Set-Cookie") or "").split(";")[0] or None
            times.append(elapsed)
            size = len(body)
        times = sorted(times[1:])  # the first (cold) request is not counted
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        print(f"{path:<45} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f} {size / 1024:6.0f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/codeyard")
    ap.add_argument("--pipelines", type=int, default=100)
    ap.add_argument("--builds", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=30)
    a = ap.parse_args()
    endpoint, proc, data = os.environ.get("ENDPOINT"), None, None
    if not endpoint:
        proc, endpoint, data = start_server(a.binary)
    try:
        build = setup(endpoint, a.pipelines, a.builds)
        time.sleep(2)  # let the pipelines' first executions fail at their source
        c = "/_codeyard/console"
        measure(endpoint, [f"{c}/", f"{c}/pipelines/pipe-7", f"{c}/projects", f"{c}/projects/proj-3",
                           f"{c}/builds/{urllib.parse.quote(build)}", f"{c}/repos/bench", f"{c}/events", f"{c}/images",
                           f"{c}/s3", f"{c}/s3/bench-artifacts", f"{c}/s3/bench-artifacts/settings", f"{c}/iam", f"{c}/activity",
                           f"{c}/pipelines/pipe-7/terraform"], a.runs)
        # The APIs under the slowest pages, timed directly (the console adds its rendering).
        cb = client(endpoint, "codebuild")
        for name, call in [("ListBuildsForProject (1,000 of 10,000 builds)", lambda: cb.list_builds_for_project(projectName="proj-3", sortOrder="DESCENDING")),
                           ("ListBuilds (10,000 builds)", lambda: cb.list_builds(sortOrder="DESCENDING"))]:
            times = []
            for _ in range(10):
                t = time.perf_counter()
                call()
                times.append((time.perf_counter() - t) * 1000)
            print(f"API {name:<45} p50 {statistics.median(times):8.1f} ms")
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        if data:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()

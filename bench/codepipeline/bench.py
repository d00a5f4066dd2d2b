#!/usr/bin/env python3
"""CodePipeline engine overhead on the real chain (CodeCommit, CodeBuild, S3).

1. A 3-stage, 4-action pipeline (Source/CodeCommit -> Build/CodeBuild -> Test/CodeBuild
   in parallel with Deploy/S3 extract) whose builds run `true`, executed N times in a row.
   engine overhead = execution wall time (server's startTime..lastUpdateTime) minus the time
   of the builds on the critical path (each build's startTime..endTime, i.e. CodeBuild's own
   cost, measured by bench/codebuild). What is left is the pipeline's work: scheduling, source
   zip export and upload, artifact hand-over, build polling, the S3 deploy.
2. 100 executions started at once on the same pipeline in PARALLEL mode (V2).

Usage: python3 bench/codepipeline/bench.py [--binary target/release/codeyard] [--runs 10]
       (or ENDPOINT=http://localhost:4566 to use a running server)
"""
import json
import argparse, concurrent.futures, os, subprocess, sys, tempfile, time
import boto3
from botocore.config import Config

REGION = "eu-west-1"
def trust(service):
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


# IAM is enforced: the roles get what the run needs (as on AWS), on "*" for brevity.
ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:*", "logs:*", "codecommit:*", "codebuild:*"], "Resource": "*"}]})
BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - \"true\"\nartifacts:\n  files:\n    - '**/*'\n"


def start_server(binary):
    data = tempfile.mkdtemp(prefix="cp-bench-")
    p = subprocess.Popen([binary, "serve", "--port", "0", "--data-dir", data], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    return p, line.split()[3]


def clients(endpoint):
    kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test",
              config=Config(retries={"max_attempts": 1}, max_pool_connections=128))
    return {s: boto3.client(s, **kw) for s in ["codecommit", "codebuild", "codepipeline", "s3", "iam"]}


def declaration(name, mode, ptype):
    a = lambda cat, prov: {"category": cat, "owner": "AWS", "provider": prov, "version": "1"}
    return {
        "name": name, "roleArn": "arn:aws:iam::000000000000:role/bench-pipeline",
        "artifactStore": {"type": "S3", "location": "bench-artifacts"},
        "pipelineType": ptype, "executionMode": mode,
        "stages": [
            {"name": "Source", "actions": [{"name": "Source", "actionTypeId": a("Source", "CodeCommit"),
              "outputArtifacts": [{"name": "src"}],
              "configuration": {"RepositoryName": "bench", "BranchName": "main", "PollForSourceChanges": "false"}}]},
            {"name": "Build", "actions": [{"name": "Build", "actionTypeId": a("Build", "CodeBuild"),
              "inputArtifacts": [{"name": "src"}], "outputArtifacts": [{"name": "built"}],
              "configuration": {"ProjectName": "bench-build"}}]},
            {"name": "Ship", "actions": [
                {"name": "Test", "actionTypeId": a("Test", "CodeBuild"), "inputArtifacts": [{"name": "src"}],
                 "configuration": {"ProjectName": "bench-test"}},
                {"name": "Deploy", "actionTypeId": a("Deploy", "S3"), "inputArtifacts": [{"name": "built"}],
                 "configuration": {"BucketName": "bench-site", "Extract": "true", "ObjectKey": "site"}}]},
        ],
    }


def wait_done(cp, name, eid, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        e = cp.get_pipeline_execution(pipelineName=name, pipelineExecutionId=eid)["pipelineExecution"]
        if e["status"] != "InProgress":
            return e
        time.sleep(0.02)
    raise SystemExit(f"execution {eid} did not finish")


def summary(cp, name, eid):
    for page in cp.get_paginator("list_pipeline_executions").paginate(pipelineName=name):
        for s in page["pipelineExecutionSummaries"]:
            if s["pipelineExecutionId"] == eid:
                return s


def build_seconds(c, name, eid):
    acts = c["codepipeline"].list_action_executions(pipelineName=name, filter={"pipelineExecutionId": eid})["actionExecutionDetails"]
    ids = {a["actionName"]: a["output"]["executionResult"]["externalExecutionId"] for a in acts if a["actionName"] in ("Build", "Test")}
    builds = {b["id"]: b for b in c["codebuild"].batch_get_builds(ids=list(ids.values()))["builds"]}
    dur = lambda i: (builds[i]["endTime"] - builds[i]["startTime"]).total_seconds()
    return dur(ids["Build"]), dur(ids["Test"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/codeyard")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--parallel", type=int, default=100)
    args = ap.parse_args()
    proc = None
    endpoint = os.environ.get("ENDPOINT")
    if not endpoint:
        proc, endpoint = start_server(args.binary)
    try:
        c = clients(endpoint)
        c["codecommit"].create_repository(repositoryName="bench")
        c["codecommit"].put_file(repositoryName="bench", branchName="main", filePath="buildspec.yml",
                                 fileContent=BUILDSPEC.encode(), commitMessage="bench")
        for b in ("bench-artifacts", "bench-site"):
            c["s3"].create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": REGION})
        role = c["iam"].create_role(RoleName="bench-build", AssumeRolePolicyDocument=trust("codebuild.amazonaws.com"))["Role"]["Arn"]
        c["iam"].put_role_policy(RoleName="bench-build", PolicyName="run", PolicyDocument=ALLOW_ALL)
        c["iam"].create_role(RoleName="bench-pipeline", AssumeRolePolicyDocument=trust("codepipeline.amazonaws.com"))
        c["iam"].put_role_policy(RoleName="bench-pipeline", PolicyName="run", PolicyDocument=ALLOW_ALL)
        for p in ("bench-build", "bench-test"):
            c["codebuild"].create_project(name=p, source={"type": "CODEPIPELINE"}, artifacts={"type": "CODEPIPELINE"},
                                          environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                                                       "computeType": "BUILD_GENERAL1_SMALL"}, serviceRole=role)
        cp = c["codepipeline"]
        cp.create_pipeline(pipeline=declaration("bench", "SUPERSEDED", "V1"))
        first = cp.list_pipeline_executions(pipelineName="bench")["pipelineExecutionSummaries"][0]["pipelineExecutionId"]
        assert wait_done(cp, "bench", first)["status"] == "Succeeded", "warm-up execution failed"

        walls, overheads, builds = [], [], []
        for _ in range(args.runs):
            eid = cp.start_pipeline_execution(name="bench")["pipelineExecutionId"]
            e = wait_done(cp, "bench", eid)
            assert e["status"] == "Succeeded", e
            s = summary(cp, "bench", eid)
            wall = (s["lastUpdateTime"] - s["startTime"]).total_seconds()
            b, t = build_seconds(c, "bench", eid)
            walls.append(wall)
            builds.append(b + t)
            overheads.append(wall - b - t)
        med = lambda xs: sorted(xs)[len(xs) // 2]
        print(f"sequential: {args.runs} executions of 3 stages / 4 actions, builds run `true`")
        print(f"  execution wall time   median {med(walls):.3f} s  (min {min(walls):.3f}, max {max(walls):.3f})")
        print(f"  builds on the critical path (CodeBuild's own time) median {med(builds):.3f} s")
        print(f"  engine overhead       median {med(overheads):.3f} s  (min {min(overheads):.3f}, max {max(overheads):.3f})")

        cp.create_pipeline(pipeline=declaration("bench-par", "PARALLEL", "V2"))
        wait_done(cp, "bench-par", cp.list_pipeline_executions(pipelineName="bench-par")["pipelineExecutionSummaries"][0]["pipelineExecutionId"])
        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            ids = list(pool.map(lambda _: cp.start_pipeline_execution(name="bench-par")["pipelineExecutionId"], range(args.parallel)))
        started = time.time() - t0
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: wait_done(cp, "bench-par", i, timeout=1800)["status"], ids))
        total = time.time() - t0
        ok = results.count("Succeeded")
        print(f"parallel: {args.parallel} executions at once (PARALLEL mode, {2 * args.parallel} builds)")
        print(f"  all started in {started:.2f} s, {ok}/{args.parallel} succeeded after {total:.1f} s "
              f"({args.parallel / total:.2f} executions/s)")
        print(f"reference: one AWS execution of such a pipeline takes minutes (build provisioning alone ~30-60 s per build)")
        print(f"ratio: median execution {med(walls):.2f} s vs ~120 s on AWS = {120 / med(walls):.0f}x faster")
    finally:
        if proc:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())

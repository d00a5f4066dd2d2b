#!/usr/bin/env python3
"""The deploy chain (issue 18): an image pushed to codeyard's ECR -> a new ECS task serving it.

One topology: an ECS service (awsvpc, one task, busybox httpd on a free port of 127.0.0.1)
and a V2 pipeline ECR source -> CodeBuild (imagedefinitions.json from imageDetail.json) ->
ECS deploy, started by an EventBridge rule on "ECR Image Action" for web:latest. Each run
pushes a new image (buildah, its index.html names the run) and measures, from the server's
own timestamps (ECR imagePushedAt, the execution's and actions' startTime, the task's
createdAt / pullStartedAt / pullStoppedAt / startedAt) and one client clock (the first HTTP
GET answering the new body):

  codeyard's overhead: push accepted -> execution started (event, rule, target)
                       -> deploy action started (ECR source; the CodeBuild step shown apart)
                       -> new task created (task definition revision, UpdateService, scheduler)
                       -> task started (image pull from the registry, podman run)
  the container's own start: task started (podman run returned) -> the port answers.

Medians of N runs (default 5). The first push (CreatePipeline's own execution) is not counted.

Usage: python3 bench/deploy/bench.py [--binary target/release/codeyard] [--runs 5]
       (or ENDPOINT=http://localhost:4566 to use a running server)
Needs podman, buildah and busybox (scripts/install-deps.sh).
"""
import argparse, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request
import boto3
from botocore.config import Config

REGION, ACCOUNT = "eu-west-1", "000000000000"
DATA = None  # the server's data dir, when this script started it
ALLOW = lambda actions: json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]})
DEFS_BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - |
        uri=$(sed 's/.*"ImageURI":"\\([^"]*\\)".*/\\1/' imageDetail.json)
        printf '[{"name":"web","imageUri":"%s"}]' "$uri" > imagedefinitions.json
artifacts:
  files:
    - imagedefinitions.json
"""


def start_server(binary, data):
    p = subprocess.Popen([binary, "serve", "--port", "0", "--data-dir", data, "--executor", "local"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return p, p.stdout.readline().split()[3]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def push(work, registry, body):
    """Builds a busybox image serving `body` and pushes it as web:latest; answers when the push returned."""
    d = os.path.join(work, "img")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(f"{d}/rootfs/bin"); os.makedirs(f"{d}/rootfs/www")
    shutil.copy(shutil.which("busybox"), f"{d}/rootfs/bin/busybox")
    for c in ["sh", "httpd"]:
        os.symlink("busybox", f"{d}/rootfs/bin/{c}")
    open(f"{d}/rootfs/www/index.html", "w").write(body + "\n")
    open(f"{d}/Dockerfile", "w").write('FROM scratch\nCOPY rootfs/ /\nCMD ["/bin/sh"]\n')
    ref = f"{registry}/web:latest"
    # buildah with storage of its own under `work`, the registry as an insecure one, no stored auth.
    conf = {"storage.conf": f'[storage]\ndriver = "vfs"\nrunroot = "{work}/run"\ngraphroot = "{work}/root"\n',
            "registries.conf": f'[[registry]]\nlocation = "{registry}"\ninsecure = true\n', "auth.json": '{"auths":{}}'}
    for name, text in conf.items():
        open(os.path.join(work, name), "w").write(text)
    env = dict(os.environ, CONTAINERS_STORAGE_CONF=f"{work}/storage.conf", CONTAINERS_REGISTRIES_CONF=f"{work}/registries.conf",
               REGISTRY_AUTH_FILE=f"{work}/auth.json", BUILDAH_ISOLATION="chroot")
    def sh(*a):
        r = subprocess.run(["buildah", *a], capture_output=True, text=True, env=env)
        if r.returncode:
            raise SystemExit(f"buildah {' '.join(a)}: {r.stderr}")
    sh("bud", "-q", "-t", ref, d)
    sh("push", "-q", "--tls-verify=false", ref, f"docker://{ref}")
    return time.time()


def answers(port, body):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
            return r.read().decode().strip() == body
    except Exception:
        return False


def wait(what, probe, timeout=300, every=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(every)
    raise SystemExit(f"timed out waiting for {what}")


def setup(c, port):
    iam = c["iam"]
    for role, principal, actions in [
        ("bench-build", "codebuild.amazonaws.com", ["logs:*", "s3:*"]),
        ("bench-deploy", "codepipeline.amazonaws.com", ["s3:*", "codebuild:*", "ecr:DescribeImages", "ecs:*", "iam:PassRole"]),
        ("bench-events", "events.amazonaws.com", ["codepipeline:StartPipelineExecution"]),
    ]:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": principal}, "Action": "sts:AssumeRole"}]}
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName=role, PolicyName="bench", PolicyDocument=ALLOW(actions))
    arn = lambda r: f"arn:aws:iam::{ACCOUNT}:role/{r}"
    c["s3"].create_bucket(Bucket="bench-deploy-artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
    ecs = c["ecs"]
    ecs.create_cluster(clusterName="bench")
    ecs.register_task_definition(family="web", networkMode="awsvpc", containerDefinitions=[{
        "name": "web", "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/web:latest", "essential": True,
        "portMappings": [{"containerPort": port}], "entryPoint": ["/bin/sh", "-c"],
        "command": [f"exec httpd -f -p {port} -h /www"]}])
    ecs.create_service(cluster="bench", serviceName="web", taskDefinition="web", desiredCount=1,
                       networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-0bench"]}})
    c["codebuild"].create_project(name="bench-defs", source={"type": "CODEPIPELINE", "buildspec": DEFS_BUILDSPEC},
                                  artifacts={"type": "CODEPIPELINE"}, serviceRole=arn("bench-build"),
                                  environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL"})
    t = lambda cat, prov: {"category": cat, "owner": "AWS", "provider": prov, "version": "1"}
    c["codepipeline"].create_pipeline(pipeline={
        "name": "bench-deploy", "roleArn": arn("bench-deploy"), "pipelineType": "V2", "executionMode": "QUEUED",
        "artifactStore": {"type": "S3", "location": "bench-deploy-artifacts"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Image", "actionTypeId": t("Source", "ECR"), "outputArtifacts": [{"name": "image"}],
                                            "configuration": {"RepositoryName": "web", "ImageTag": "latest"}}]},
            {"name": "Build", "actions": [{"name": "Defs", "actionTypeId": t("Build", "CodeBuild"), "inputArtifacts": [{"name": "image"}],
                                           "outputArtifacts": [{"name": "defs"}], "configuration": {"ProjectName": "bench-defs"}}]},
            {"name": "Deploy", "actions": [{"name": "Ecs", "actionTypeId": t("Deploy", "ECS"), "inputArtifacts": [{"name": "defs"}],
                                            "configuration": {"ClusterName": "bench", "ServiceName": "web", "FileName": "imagedefinitions.json"}}]},
        ]})
    pattern = {"source": ["aws.ecr"], "detail-type": ["ECR Image Action"],
               "detail": {"action-type": ["PUSH"], "result": ["SUCCESS"], "repository-name": ["web"], "image-tag": ["latest"]}}
    c["events"].put_rule(Name="bench-pushed", EventPattern=json.dumps(pattern))
    c["events"].put_targets(Rule="bench-pushed", Targets=[{"Id": "deploy", "Arn": f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:bench-deploy", "RoleArn": arn("bench-events")}])


def executions(cp):
    return cp.list_pipeline_executions(pipelineName="bench-deploy")["pipelineExecutionSummaries"]


def one_run(c, work, registry, port, n):
    cp, ecs = c["codepipeline"], c["ecs"]
    before = len(executions(cp))
    body = f"bench run {n} {time.time()}"
    pushed_client = push(work, registry, body)
    answered = wait("the new body", lambda: answers(port, body) and time.time())
    e = wait("the execution", lambda: len(executions(cp)) > before and executions(cp)[0]["status"] != "InProgress" and executions(cp)[0])
    if e["status"] != "Succeeded":
        raise SystemExit(f"execution {e['pipelineExecutionId']} ended {e['status']}")
    eid = e["pipelineExecutionId"]
    acts = {a["actionName"]: a for a in cp.list_action_executions(pipelineName="bench-deploy", filter={"pipelineExecutionId": eid})["actionExecutionDetails"]}
    digest = e["sourceRevisions"][0]["revisionId"]  # the pushed image's digest
    image = c["ecr"].describe_images(repositoryName="web", imageIds=[{"imageDigest": digest}])["imageDetails"][0]
    arns = ecs.list_tasks(cluster="bench", serviceName="web")["taskArns"]
    tasks = ecs.describe_tasks(cluster="bench", tasks=arns)["tasks"]
    task = max(tasks, key=lambda t: t["createdAt"])  # the deployment's task (the old one is gone)
    ts = lambda v: v.timestamp()
    # The task it replaced: the service's last one stopped before the new one was created (a
    # fixed host port: the old task stops first).
    stopped = ecs.list_tasks(cluster="bench", serviceName="web", desiredStatus="STOPPED")["taskArns"]
    before_new = [t for t in (ecs.describe_tasks(cluster="bench", tasks=stopped)["tasks"] if stopped else [])
                  if "stoppedAt" in t and ts(t["stoppedAt"]) <= ts(task["createdAt"]) + 0.001]
    old = max(before_new, key=lambda t: t["stoppedAt"]) if before_new else None
    pushed = ts(image["imagePushedAt"])
    p = {
        "push -> execution started": ts(e["startTime"]) - pushed,
        "execution -> deploy action started": ts(acts["Ecs"]["startTime"]) - ts(e["startTime"]),
        "  of which the CodeBuild step": ts(acts["Defs"]["lastUpdateTime"]) - ts(acts["Defs"]["startTime"]),
        "deploy action -> task created": ts(task["createdAt"]) - ts(acts["Ecs"]["startTime"]),
        "  deploy action -> old task stopping": ts(old["stoppingAt"]) - ts(acts["Ecs"]["startTime"]) if old else 0.0,
        "  old task stopping -> stopped": ts(old["stoppedAt"]) - ts(old["stoppingAt"]) if old else 0.0,
        "  old task stopped -> new task created": ts(task["createdAt"]) - ts(old["stoppedAt"]) if old else 0.0,
        "task created -> pull started": ts(task["pullStartedAt"]) - ts(task["createdAt"]),
        "image pull": ts(task["pullStoppedAt"]) - ts(task["pullStartedAt"]),
        "podman run": ts(task["startedAt"]) - ts(task["pullStoppedAt"]),
    }
    # podman's own start of the container (the task's startedAt follows `podman run` returning
    # and its port and digest look-ups), when this script started the server and sees its storage.
    started = ts(task["startedAt"])
    if DATA:
        cdir = os.path.join(DATA, "ecs", "containers")
        out = subprocess.run(["podman", "--root", f"{cdir}/storage", "--runroot", f"{cdir}/run", "--tmpdir", f"{cdir}/tmp",
                              "--storage-driver", "vfs", "--events-backend", "file", "inspect", "--format", "{{.State.StartedAt.Unix}} {{.State.StartedAt.Nanosecond}}",
                              task["containers"][0]["runtimeId"]], capture_output=True, text=True).stdout.split()
        if len(out) == 2:
            started = int(out[0]) + int(out[1]) / 1e9
    p["codeyard overhead (push -> container started)"] = started - pushed
    p["container start (container started -> port answers)"] = answered - started
    p["total (push returned -> new body served)"] = answered - pushed_client
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/codeyard")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    global DATA
    # A short data dir: ECS tasks use slirp4netns only while its socket path fits (runtime.rs).
    data = tempfile.mkdtemp(prefix="dbench-")
    server = None
    endpoint = os.environ.get("ENDPOINT")
    if not endpoint:
        server, endpoint = start_server(args.binary, data)
        DATA = data
    work = tempfile.mkdtemp(prefix="deploy-bench-work-")
    try:
        kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test",
                  config=Config(retries={"max_attempts": 2}))
        c = {s: boto3.client(s, **kw) for s in ["iam", "ecr", "s3", "ecs", "codebuild", "codepipeline", "events"]}
        registry = endpoint.split("://")[1]
        port = free_port()
        # The first image: the service's tasks start on it; CreatePipeline's execution deploys it.
        c["ecr"].create_repository(repositoryName="web")
        push(work, registry, "first")
        setup(c, port)
        wait("the first execution", lambda: executions(c["codepipeline"]) and executions(c["codepipeline"])[0]["status"] != "InProgress", timeout=600)
        wait("the service", lambda: answers(port, "first"), timeout=300)
        runs = [one_run(c, work, registry, port, n) for n in range(args.runs)]
        print(f"deploy chain, {args.runs} runs (seconds; median, min, max)")
        for k in runs[0]:
            v = [r[k] for r in runs]
            print(f"  {k:50} {statistics.median(v):7.2f} {min(v):7.2f} {max(v):7.2f}")
        c["ecs"].delete_service(cluster="bench", service="web", force=True)
        wait("the tasks to stop", lambda: not c["ecs"].list_tasks(cluster="bench", desiredStatus="RUNNING")["taskArns"], timeout=120)
    finally:
        if server:
            server.terminate(); server.wait()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

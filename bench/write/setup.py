#!/usr/bin/env python3
"""Creates what the write benchmarks call on one server (codeyard or moto_server), the same way
on both: the S3 buckets, two IAM roles, a CodePipeline pipeline `bench` (for GetPipeline) and a CodeBuild
project `bench` (for StartBuild) whose build sleeps, so that with `--build-concurrency 1` one
build holds the only slot and every other build waits QUEUED: StartBuild is measured without
running thousands of builds.

    setup.py <endpoint>
"""
import sys
import boto3
from botocore.config import Config

endpoint = sys.argv[1]
kw = dict(endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="test",
          aws_secret_access_key="test", config=Config(retries={"max_attempts": 2}))
s3, iam, cb, cp = (boto3.client(s, **kw) for s in ["s3", "iam", "codebuild", "codepipeline"])

s3.create_bucket(Bucket="bench-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
s3.create_bucket(Bucket="bench-artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
def role(name, service):
    trust = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"%s"},'
             '"Action":"sts:AssumeRole"}]}' % service)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="all", PolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'))
    return arn


cb.create_project(
    name="bench", serviceRole=role("bench-build", "codebuild.amazonaws.com"), artifacts={"type": "NO_ARTIFACTS"},
    source={"type": "NO_SOURCE", "location": "none", "buildspec": "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 3600\n"},
    environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL"})
a = lambda cat, prov: {"category": cat, "owner": "AWS", "provider": prov, "version": "1"}
cp.create_pipeline(pipeline={
    "name": "bench", "roleArn": role("bench-pipeline", "codepipeline.amazonaws.com"), "artifactStore": {"type": "S3", "location": "bench-artifacts"},
    "stages": [
        {"name": "Source", "actions": [{"name": "Source", "actionTypeId": a("Source", "S3"),
          "outputArtifacts": [{"name": "src"}],
          "configuration": {"S3Bucket": "bench-artifacts", "S3ObjectKey": "src.zip", "PollForSourceChanges": "false"}}]},
        {"name": "Build", "actions": [{"name": "Build", "actionTypeId": a("Build", "CodeBuild"),
          "inputArtifacts": [{"name": "src"}], "configuration": {"ProjectName": "bench"}}]},
    ]})

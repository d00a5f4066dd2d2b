//! What one authorization decision costs: a role session's request evaluated against the
//! policies a CodeBuild service role typically has (a managed policy plus an inline one with
//! conditions and variables) and a bucket policy, with the documents parsed once (as a service
//! caches them) and, for comparison, parsed on every request.
//!
//! `cargo run --release -p codeyard-policy --example evaluate_bench`

use codeyard_policy::{Principal, PolicySet, Request, SourcedPolicy, evaluate};
use std::time::Instant;

const MANAGED: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"arn:aws:logs:*:*:log-group:/aws/codebuild/*"},
 {"Effect":"Allow","Action":["codecommit:GitPull"],"Resource":"arn:aws:codecommit:*:000000000000:*"},
 {"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Resource":"*"}]}"#;
const INLINE: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Sid":"Artifacts","Effect":"Allow","Action":["s3:GetObject","s3:GetObjectVersion","s3:PutObject"],"Resource":["arn:aws:s3:::codeyard-demo-artifacts/*","arn:aws:s3:::cache/${aws:PrincipalTag/team}/*"],
  "Condition":{"StringEquals":{"aws:RequestedRegion":["eu-west-1","eu-central-1"]},"Bool":{"aws:SecureTransport":"false"}}},
 {"Effect":"Deny","NotAction":["s3:*","logs:*","codecommit:*","ecr:*"],"Resource":"*"},
 {"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}]}"#;
const BUCKET: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::codeyard-demo-artifacts/*","Condition":{"StringNotEquals":{"aws:PrincipalAccount":"000000000000"}}}]}"#;

fn request() -> Request {
    Request::new(Principal::from_arn("arn:aws:sts::000000000000:assumed-role/codebuild-role/build-1"), "s3:PutObject", vec!["arn:aws:s3:::codeyard-demo-artifacts/app-jar/target/app.jar".into()])
        .with("aws:RequestedRegion", "eu-west-1")
        .with("aws:SecureTransport", "false")
        .with("aws:PrincipalTag/team", "blue")
}

fn main() {
    let n = 200_000u32;
    let set = PolicySet {
        identity: vec![SourcedPolicy::parse("managed", MANAGED).unwrap(), SourcedPolicy::parse("inline", INLINE).unwrap()],
        resource: Some(SourcedPolicy::parse("bucket", BUCKET).unwrap()),
        ..Default::default()
    };
    let req = request();
    assert!(evaluate(&req, &set).is_allowed());
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(evaluate(std::hint::black_box(&req), &set));
    }
    let cached = started.elapsed().as_nanos() as f64 / n as f64;

    let started = Instant::now();
    for _ in 0..n / 10 {
        std::hint::black_box(request());
    }
    let build = started.elapsed().as_nanos() as f64 / (n / 10) as f64;

    let started = Instant::now();
    for _ in 0..n / 10 {
        let set = PolicySet {
            identity: vec![SourcedPolicy::parse("managed", MANAGED).unwrap(), SourcedPolicy::parse("inline", INLINE).unwrap()],
            resource: Some(SourcedPolicy::parse("bucket", BUCKET).unwrap()),
            ..Default::default()
        };
        std::hint::black_box(evaluate(&req, &set));
    }
    let parsed = started.elapsed().as_nanos() as f64 / (n / 10) as f64;
    println!("evaluate (policies parsed once):      {cached:>9.0} ns per decision");
    println!("building the request context:         {build:>9.0} ns per request");
    println!("parse the three documents + evaluate: {parsed:>9.0} ns per decision");
}

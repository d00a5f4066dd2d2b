//! What one IAM decision costs through the server's authorizer (cache hit: the principal's
//! policies parsed once), against the same request with `--iam off`, and the cost of a cache
//! miss (the first request after any IAM write: store reads and parsing).
//!
//! `cargo run --release -p codeyard-iam --example authorize_bench`

use codeyard_core::{AccessRequest, IamMode, RequestContext, authz::Authorizer};
use codeyard_iam::authorizer::IamAuthorizer;
use codeyard_iam::iam::{Iam, NewRole};
use codeyard_iam::users::NewUser;
use std::time::Instant;

const ACCOUNT: &str = "000000000000";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const INLINE: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"arn:aws:logs:*:*:log-group:/aws/codebuild/*"},
 {"Sid":"Artifacts","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::artifacts/*","Condition":{"StringEquals":{"aws:RequestedRegion":"eu-west-1"}}},
 {"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}]}"#;

fn ctx(caller: &str) -> RequestContext {
    let mut c = RequestContext::internal(ACCOUNT, "eu-west-1", "http://localhost:4566");
    c.caller_arn = caller.to_string();
    c
}

async fn per_decision(a: &IamAuthorizer, ctx: &RequestContext, req: &AccessRequest, n: u32) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        let _ = std::hint::black_box(a.authorize(ctx, req).await);
    }
    started.elapsed().as_nanos() as f64 / n as f64
}

#[tokio::main]
async fn main() {
    let store: codeyard_store::SharedStore = std::sync::Arc::new(codeyard_store::SqliteStore::in_memory().await.unwrap());
    let iam = Iam::new(store.clone());
    let sts = codeyard_iam::sts::Sts::new(store.clone(), iam.clone());
    let denials = codeyard_iam::audit::Denials::new(store.clone());
    let new_role = NewRole { name: "build".into(), path: None, assume_role_policy: TRUST.into(), description: None, max_session_duration: None, permissions_boundary: None, tags: vec![] };
    iam.create_role(ACCOUNT, new_role).await.unwrap();
    iam.put_role_policy(ACCOUNT, "build", "inline", INLINE.into()).await.unwrap();
    iam.attach_role_policy(ACCOUNT, "build", "arn:aws:iam::aws:policy/AWSCodeCommitReadOnly").await.unwrap();
    iam.create_user(ACCOUNT, NewUser { name: "alice".into(), path: None, permissions_boundary: None, tags: vec![] }).await.unwrap();
    iam.attach::<codeyard_iam::users::User>(ACCOUNT, "alice", "arn:aws:iam::aws:policy/ReadOnlyAccess").await.unwrap();

    let enforce = IamAuthorizer::new(iam.clone(), sts.clone(), IamMode::Enforce, denials.clone());
    let off = IamAuthorizer::new(iam.clone(), sts, IamMode::Off, denials);
    let session = ctx(&format!("arn:aws:sts::{ACCOUNT}:assumed-role/build/b-1"));
    let user = ctx(&format!("arn:aws:iam::{ACCOUNT}:user/alice"));
    let root = ctx(&format!("arn:aws:iam::{ACCOUNT}:root"));
    let put = AccessRequest::new("s3:PutObject", "arn:aws:s3:::artifacts/out/app.zip");
    let read = AccessRequest::new("codecommit:GetRepository", format!("arn:aws:codecommit:eu-west-1:{ACCOUNT}:repo"));
    assert!(enforce.authorize(&session, &put).await.is_ok());
    assert!(enforce.authorize(&user, &read).await.is_ok());

    let n = 100_000;
    println!("role session, inline + managed policy (cache hit): {:>8.0} ns/decision", per_decision(&enforce, &session, &put, n).await);
    println!("user with ReadOnlyAccess (cache hit):              {:>8.0} ns/decision", per_decision(&enforce, &user, &read, n).await);
    println!("root (no policy to evaluate):                      {:>8.0} ns/decision", per_decision(&enforce, &root, &put, n).await);
    println!("--iam off:                                         {:>8.0} ns/decision", per_decision(&off, &session, &put, n).await);
    let misses = 200;
    let started = Instant::now();
    for i in 0..misses {
        iam.tag_role(ACCOUNT, "build", vec![codeyard_iam::iam::Tag { key: "k".into(), value: format!("x{i}") }]).await.unwrap();
    }
    let writes = started.elapsed().as_nanos() as f64 / misses as f64;
    let started = Instant::now();
    for i in 0..misses {
        iam.tag_role(ACCOUNT, "build", vec![codeyard_iam::iam::Tag { key: "k".into(), value: format!("y{i}") }]).await.unwrap();
        let _ = enforce.authorize(&session, &put).await;
    }
    let both = started.elapsed().as_nanos() as f64 / misses as f64;
    println!("role session after an IAM write (cache miss):      {:>8.0} ns/decision", both - writes);
}

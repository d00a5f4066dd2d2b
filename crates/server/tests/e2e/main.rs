//! The one end-to-end test binary: every suite is a module here, so the aws-sdk crates link
//! once (a test binary per file linked them twelve times, the bulk of a cold CI run).
//! Each module drives a real server (`common::TestServer`) with aws-sdk-rust, the aws CLI,
//! Terraform, git, skopeo, buildah and podman. Run one suite with
//! `cargo nextest run -p codeyard --test e2e s3::` (or `cargo test -p codeyard --test e2e s3::`).

#[allow(dead_code)]
mod common;

mod auth;
mod chain;
mod codebuild;
mod codecommit;
mod crash;
mod codepipeline;
mod container_builds;
mod ecr;
mod events;
mod foundation;
mod iam_enforcement;
mod identities;
mod iam;
mod logs;
mod operations;
mod s3;
mod s3_kms;
mod server;
mod service_roles;
mod sts;
mod typed_shapes;
mod kms;
mod ssm;
mod secretsmanager;
mod build_secrets;
mod console;
mod ecs;
mod deploy_chain;
mod write_path;
mod export;

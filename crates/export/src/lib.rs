//! `codeyard export terraform`: HCL for hashicorp/aws that recreates resources a server holds,
//! and what they depend on (roles, policies, rules, targets). The console's "as Terraform" view
//! and the CLI (through the server, against `--endpoint`) both use [`terraform`].
//!
//! Everything is read through the real APIs in-process ([`App::call`] as the caller's context,
//! and the hub's `ObjectStoreApi` for S3), so an export shows only what the caller may read.
//!
//! * `fetch`: the snapshot, typed with the generated API shapes;
//! * `resources`: one `resource` block per thing, only what differs from the provider's
//!   defaults, so apply-then-export gives the same text and a plan after apply is empty;
//! * `refs`: values other resources answer to (ARNs, clone URLs, names in naming fields)
//!   become Terraform references, so the export applies in any account on any endpoint;
//! * `hcl`: the writer, laid out as `terraform fmt` leaves it.

mod fetch;
pub mod hcl;
mod refs;
mod resources;

use codeyard_core::{AwsError, RequestContext};
use codeyard_wire::dispatch::App;
use hcl::{Block, Expr};
use refs::Key;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The server's route for exports: `GET` with `?pipeline=NAME` or `?all=1`, SigV4-signed,
/// answered as the signing identity.
pub const ROUTE: &str = "/_codeyard/export/terraform";

/// The provider version the export is written for (and tested with).
pub const PROVIDER_VERSION: &str = "5.100.0";

/// What to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every supported resource of the context's account and region.
    All,
    /// One pipeline and everything it depends on or that starts it.
    Pipeline(String),
}

/// Why an export failed. An API error the caller gets for a whole service (it may not read
/// IAM) is not one: that service is skipped with a comment saying why.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Api(#[from] AwsError),
    #[error("{model} {op} answered a shape the export cannot read: {detail}")]
    Unreadable { model: &'static str, op: &'static str, detail: String },
}

impl From<ExportError> for AwsError {
    fn from(e: ExportError) -> AwsError {
        match e {
            ExportError::Api(e) => e,
            e @ ExportError::Unreadable { .. } => AwsError::internal(e),
        }
    }
}

/// The HCL (one `.tf` file: variables, provider, resources) for `selection`. `endpoint` is the
/// default of the `endpoint` variable the provider block reads.
pub async fn terraform(app: &Arc<App>, ctx: &RequestContext, selection: Selection, endpoint: &str) -> Result<String, AwsError> {
    if let Selection::Pipeline(name) = &selection {
        // The pipeline's own answer when it does not exist (or may not be read).
        app.call("codepipeline", ctx, "GetPipeline", serde_json::json!({"name": name})).await?;
    }
    let snapshot = fetch::snapshot(app, ctx).await?;
    let (all, pipelines) = resources::build(&snapshot, &ctx.account, &ctx.region);
    let chosen = match &selection {
        Selection::All => all.iter().map(|r| r.key.clone()).chain(all.iter().flat_map(|r| r.refs.iter().cloned())).collect(),
        Selection::Pipeline(name) => pipelines.get(name).map(|key| pipeline_closure(&all, key)).unwrap_or_default(),
    };
    let what = match &selection {
        Selection::All => "every resource".to_string(),
        Selection::Pipeline(name) => format!("pipeline {name}, what it depends on and what starts it"),
    };
    let mut text = format!(
        "# Exported by codeyard from {endpoint} (account {}, region {}): {what}.\n\
         # Apply with AWS credentials in the environment: terraform init && terraform apply [-var endpoint=URL]\n",
        ctx.account, ctx.region
    );
    for (kind, why) in &snapshot.skipped {
        text.push_str(&format!("# skipped {kind}: {}\n", why.replace('\n', " ")));
    }
    text.push('\n');
    let selected: Vec<&resources::Resource> = all.iter().filter(|r| chosen.contains(&r.key)).collect();
    let mut blocks = header(endpoint, &ctx.region, &selected, &chosen);
    let mut body: Vec<&resources::Resource> = selected;
    body.sort_by(|a, b| a.key.cmp(&b.key));
    blocks.extend(body.into_iter().map(|r| r.block.clone()));
    text.push_str(&hcl::render(&blocks));
    Ok(text)
}

/// The pipeline, the targets that start it, and everything those refer to, with what belongs
/// to each (a role's policies, a bucket's versioning), but not a rule's other targets.
fn pipeline_closure(all: &[resources::Resource], pipeline: &Key) -> BTreeSet<Key> {
    let mut chosen = BTreeSet::new();
    let mut work: Vec<Key> = vec![pipeline.clone()];
    work.extend(all.iter().filter(|r| r.key.0 == "aws_cloudwatch_event_target" && r.refs.contains(pipeline)).map(|r| r.key.clone()));
    while let Some(key) = work.pop() {
        if !chosen.insert(key.clone()) {
            continue;
        }
        if let Some(r) = all.iter().find(|r| r.key == key) {
            work.extend(r.refs.iter().cloned());
        }
        work.extend(all.iter().filter(|r| r.owner.as_ref() == Some(&key) && r.key.0 != "aws_cloudwatch_event_target").map(|r| r.key.clone()));
    }
    chosen
}

/// `terraform`, `variable "endpoint"`, the provider with every used service at the endpoint,
/// and the data sources the resources refer to.
fn header(endpoint: &str, region: &str, selected: &[&resources::Resource], chosen: &BTreeSet<Key>) -> Vec<Block> {
    let mut terraform = Block::new("terraform", &[]);
    let mut providers = Block::new("required_providers", &[]);
    providers.body.attr("aws", Expr::Object(vec![("source".into(), Expr::str("hashicorp/aws")), ("version".into(), Expr::str(PROVIDER_VERSION))]));
    terraform.body.block(providers);

    let mut variable = Block::new("variable", &["endpoint"]);
    variable
        .body
        .attr("description", Expr::str("The codeyard (or other AWS-compatible) endpoint every service is reached at."))
        .attr("type", Expr::Ref("string".into()))
        .attr("default", Expr::str(endpoint));

    let mut services: BTreeSet<&str> = ["iam", "sts"].into_iter().collect();
    for r in selected {
        let service = match r.key.0 {
            t if t.starts_with("aws_iam_") => "iam",
            t if t.starts_with("aws_codecommit_") => "codecommit",
            t if t.starts_with("aws_codebuild_") => "codebuild",
            t if t.starts_with("aws_codepipeline") => "codepipeline",
            t if t.starts_with("aws_ecr_") => "ecr",
            t if t.starts_with("aws_s3_") => "s3",
            t if t.starts_with("aws_cloudwatch_event_") => "events",
            t if t.starts_with("aws_cloudwatch_log_") => "logs",
            _ => continue,
        };
        services.insert(service);
    }
    let mut provider = Block::new("provider", &["aws"]);
    provider
        .body
        .attr("region", Expr::str(region))
        .attr("s3_use_path_style", Expr::Bool(true))
        .attr("skip_credentials_validation", Expr::Bool(true))
        .attr("skip_metadata_api_check", Expr::Bool(true))
        .attr("skip_requesting_account_id", Expr::Bool(true));
    let mut endpoints = Block::new("endpoints", &[]);
    for s in services {
        endpoints.body.attr(s, Expr::Ref("var.endpoint".into()));
    }
    provider.body.block(endpoints);

    let mut blocks = vec![terraform, variable, provider];
    for (kind, name) in [refs::CALLER, refs::REGION] {
        if chosen.contains(&(kind, name.to_string())) {
            blocks.push(Block::new("data", &[kind.trim_start_matches("data."), name]));
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_header_is_formatted() {
        let chosen: BTreeSet<Key> = [(refs::CALLER.0, "current".to_string())].into_iter().collect();
        let text = hcl::render(&header("http://localhost:4566", "eu-west-1", &[], &chosen));
        assert_eq!(
            text,
            r#"terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

variable "endpoint" {
  description = "The codeyard (or other AWS-compatible) endpoint every service is reached at."
  type        = string
  default     = "http://localhost:4566"
}

provider "aws" {
  region                      = "eu-west-1"
  s3_use_path_style           = true
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true

  endpoints {
    iam = var.endpoint
    sts = var.endpoint
  }
}

data "aws_caller_identity" "current" {}
"#
        );
    }
}

//! AWS managed policies (`arn:aws:iam::aws:policy/...`) with the documents AWS publishes.
//!
//! The documents are data, not code: `crates/codegen/data/managed-policies/<name>.json`, one per
//! policy, imported by `cargo run -p codeyard-codegen -- import-managed-policies <MAMIP
//! checkout>` (github.com/z0ph/MAMIP tracks every AWS managed policy), which also writes the
//! table of files embedded here (`managed_generated.rs`). They are the same in every account and
//! read-only: GetPolicy / GetPolicyVersion / ListPolicies (Scope=AWS) answer them, and
//! attaching one only changes the role, user or group.

use crate::records::{ManagedPolicy, PolicyVersion};
use codeyard_core::time::Timestamp;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

mod generated {
    include!("managed_generated.rs");
}

/// One AWS managed policy.
#[derive(Debug)]
pub struct AwsManagedPolicy {
    pub name: String,
    pub path: String,
    pub arn: String,
    pub id: String,
    pub default_version: String,
    pub created: Timestamp,
    pub updated: Timestamp,
    /// The default version's document, as JSON text.
    pub document: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct File {
    policy_name: String,
    policy_id: String,
    arn: String,
    path: String,
    default_version_id: String,
    create_date: Timestamp,
    update_date: Timestamp,
    document: serde_json::Value,
}

struct Catalog {
    policies: Vec<AwsManagedPolicy>,
    by_arn: HashMap<String, usize>,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut policies: Vec<AwsManagedPolicy> = generated::FILES
            .iter()
            .map(|text| {
                let f: File = serde_json::from_str(text).expect("embedded managed policy parses");
                AwsManagedPolicy {
                    document: serde_json::to_string_pretty(&f.document).expect("a JSON value prints"),
                    name: f.policy_name,
                    path: f.path,
                    arn: f.arn,
                    id: f.policy_id,
                    default_version: f.default_version_id,
                    created: f.create_date,
                    updated: f.update_date,
                }
            })
            .collect();
        policies.sort_by_key(|p| p.name.to_ascii_lowercase());
        let by_arn = policies.iter().enumerate().map(|(i, p)| (p.arn.clone(), i)).collect();
        Catalog { policies, by_arn }
    })
}

/// Whether an ARN names an AWS managed policy (known here or not).
pub fn is_aws_arn(arn: &str) -> bool {
    arn.starts_with("arn:aws:iam::aws:policy/")
}

pub fn get(arn: &str) -> Option<&'static AwsManagedPolicy> {
    let c = catalog();
    c.by_arn.get(arn).map(|&i| &c.policies[i])
}

/// Every AWS managed policy, ordered by name.
pub fn all() -> impl Iterator<Item = &'static AwsManagedPolicy> {
    catalog().policies.iter()
}

impl AwsManagedPolicy {
    /// As the IAM API shows a managed policy (only the default version is kept).
    pub fn to_policy(&self) -> ManagedPolicy {
        ManagedPolicy {
            name: self.name.clone(),
            path: self.path.clone(),
            id: self.id.clone(),
            arn: self.arn.clone(),
            description: None,
            created: self.created,
            updated: self.updated,
            default_version: self.default_version.clone(),
            versions: vec![PolicyVersion { id: self.default_version.clone(), document: self.document.clone(), created: self.updated }],
            next_version: 0,
            attachment_count: 0,
            tags: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_parses_and_documents_evaluate() {
        for p in all() {
            assert!(p.arn.ends_with(&format!("policy{}{}", p.path, p.name)), "{}", p.arn);
            codeyard_policy::Policy::parse(&p.document).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        }
        let admin = get("arn:aws:iam::aws:policy/AdministratorAccess").expect("AdministratorAccess");
        assert_eq!(admin.default_version, "v1");
    }
}

//! The registry's documents and where they live (see the [module doc](super)).

use codeyard_core::time::Timestamp;
use codeyard_core::arn::arn;
use serde::{Deserialize, Serialize};
use codeyard_api::ecr::{EncryptionConfiguration, ImageTagMutabilityExclusionFilter};
use std::collections::BTreeMap;

pub const UPLOADS_NS: &str = "ecr/uploads";
pub const TOKENS_NS: &str = "ecr/tokens";
/// How long an authorization token from GetAuthorizationToken is valid (as in AWS).
pub const TOKEN_HOURS: i64 = 12;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Repository {
    pub name: String,
    pub account: String,
    pub region: String,
    pub arn: String,
    pub created_at: Timestamp,
    /// MUTABLE or IMMUTABLE (the `_WITH_EXCLUSION` variants behave like their base here).
    pub tag_mutability: String,
    #[serde(default)]
    pub mutability_exclusions: Option<Vec<ImageTagMutabilityExclusionFilter>>,
    pub scan_on_push: bool,
    pub encryption: EncryptionConfiguration,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub lifecycle_policy: Option<String>,
    #[serde(default)]
    pub lifecycle_evaluated_at: Option<Timestamp>,
}

impl Repository {
    pub fn immutable(&self) -> bool {
        self.tag_mutability.starts_with("IMMUTABLE")
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageRecord {
    pub digest: String,
    pub media_type: String,
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// ECR's imageSizeInBytes: layers and config; for an index the largest child.
    pub size: u64,
    pub manifest_size: u64,
    pub pushed_at: Timestamp,
    pub blobs: Vec<String>,
    pub children: Vec<String>,
    #[serde(default)]
    pub subject: Option<String>,
    /// The manifest's OCI annotations (shown in the referrers index).
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TagRecord {
    pub digest: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerRecord {
    pub size: u64,
    pub added_at: Timestamp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UploadRecord {
    pub account: String,
    pub region: String,
    pub repository: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    pub account: String,
    pub region: String,
    pub expires_at: Timestamp,
    /// Who asked GetAuthorizationToken: registry requests with the token act as this principal.
    /// `None` for tokens issued before principals were recorded (the registry's root).
    #[serde(default)]
    pub caller_arn: Option<String>,
}

/// One repository in one account and region.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RepoRef {
    pub account: String,
    pub region: String,
    pub name: String,
}

impl RepoRef {
    pub fn new(account: &str, region: &str, name: &str) -> Self {
        RepoRef {
            account: account.into(),
            region: region.into(),
            name: name.into(),
        }
    }
    fn ns(&self, kind: &str) -> String {
        format!("ecr/{}/{}/{kind}/{}", self.account, self.region, self.name)
    }
    pub fn images_ns(&self) -> String {
        self.ns("images")
    }
    pub fn tags_ns(&self) -> String {
        self.ns("tags")
    }
    pub fn layers_ns(&self) -> String {
        self.ns("layers")
    }
    pub fn repos_ns(&self) -> String {
        repos_ns(&self.account, &self.region)
    }
}

pub fn repos_ns(account: &str, region: &str) -> String {
    format!("ecr/{account}/{region}/repositories")
}

/// A reference in a manifest URL or an ECR image id.
#[derive(Clone, Debug, PartialEq)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

impl Reference {
    pub fn parse(s: &str) -> Reference {
        if s.contains(':') {
            Reference::Digest(s.to_string())
        } else {
            Reference::Tag(s.to_string())
        }
    }
}

pub fn repository_arn(account: &str, region: &str, name: &str) -> String {
    arn("ecr", region, account, &format!("repository/{name}"))
}

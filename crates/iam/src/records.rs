//! The records every part of IAM shares, a leaf the rest builds on: tags, managed policies
//! and their versions, and what roles, users and groups have in common (their [`Kind`], the
//! [`Holder`] trait and the lower-cased key of their documents).

use codeyard_core::AwsError;
use codeyard_core::time::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// IAM answers a resource's tags in the order they were added.
impl codeyard_core::tags::Tag for Tag {
    fn new(key: String, value: String) -> Self {
        Tag { key, value }
    }
    fn key(&self) -> &str {
        &self.key
    }
    fn set_value(&mut self, value: String) {
        self.value = value;
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub id: String,
    pub document: String,
    pub created: Timestamp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ManagedPolicy {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub description: Option<String>,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub default_version: String,
    /// Oldest first.
    pub versions: Vec<PolicyVersion>,
    /// The number the next version gets (`v<n>`); never reused.
    pub next_version: u32,
    pub attachment_count: i64,
    pub tags: Vec<Tag>,
}

impl ManagedPolicy {
    pub fn version(&self, id: &str) -> Option<&PolicyVersion> {
        self.versions.iter().find(|v| v.id == id)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Role,
    User,
    Group,
}

impl Kind {
    pub fn ns(self, account: &str) -> String {
        let kind = match self {
            Kind::Role => "roles",
            Kind::User => "users",
            Kind::Group => "groups",
        };
        format!("iam/{account}/{kind}")
    }
    /// As IAM's messages name it (`role`, `user`, `group`).
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Role => "role",
            Kind::User => "user",
            Kind::Group => "group",
        }
    }
    pub(crate) fn quota(self) -> &'static str {
        match self {
            Kind::Role => "PoliciesPerRole",
            Kind::User => "PoliciesPerUser",
            Kind::Group => "PoliciesPerGroup",
        }
    }
    /// `arn:aws:iam::<account>:<noun><path><name>`: the ARN IAM gives an entity of this kind.
    pub fn arn(self, account: &str, path: &str, name: &str) -> String {
        format!("arn:aws:iam::{account}:{}{path}{name}", self.noun())
    }
    /// A new unique id with the prefix IAM gives this kind (`AROA`, `AIDA`, `AGPA`).
    pub fn new_id(self) -> String {
        let prefix = match self {
            Kind::Role => "AROA",
            Kind::User => "AIDA",
            Kind::Group => "AGPA",
        };
        format!("{prefix}{}", codeyard_core::ids::upper_alnum(17))
    }
    /// `User with name alice already exists.`
    pub fn exists(self, name: &str) -> AwsError {
        let noun = self.noun();
        let title = noun[..1].to_uppercase() + &noun[1..];
        AwsError::new(409, "EntityAlreadyExists", format!("{title} with name {name} already exists."))
    }
    /// `The user with name alice cannot be found.`
    pub fn no_such(self, name: &str) -> AwsError {
        AwsError::new(404, "NoSuchEntity", format!("The {} with name {name} cannot be found.", self.noun()))
    }
    pub(crate) fn no_such_inline(self, policy: &str) -> AwsError {
        AwsError::new(404, "NoSuchEntity", format!("The {} policy with name {policy} cannot be found.", self.noun()))
    }
}

/// A role, user or group document.
pub trait Holder: Serialize + DeserializeOwned + Send + Sync + Clone + 'static {
    const KIND: Kind;
    fn name(&self) -> &str;
    fn path(&self) -> &str;
    fn inline_policies(&self) -> &BTreeMap<String, String>;
    fn inline_policies_mut(&mut self) -> &mut BTreeMap<String, String>;
    fn attached(&self) -> &[String];
    fn attached_mut(&mut self) -> &mut Vec<String>;
}

/// `impl Holder` for an entity struct with `name`, `path`, `inline_policies` and `attached`
/// fields.
macro_rules! impl_holder {
    ($ty:ty, $kind:expr) => {
        impl $crate::records::Holder for $ty {
            const KIND: $crate::records::Kind = $kind;
            fn name(&self) -> &str {
                &self.name
            }
            fn path(&self) -> &str {
                &self.path
            }
            fn inline_policies(&self) -> &std::collections::BTreeMap<String, String> {
                &self.inline_policies
            }
            fn inline_policies_mut(&mut self) -> &mut std::collections::BTreeMap<String, String> {
                &mut self.inline_policies
            }
            fn attached(&self) -> &[String] {
                &self.attached
            }
            fn attached_mut(&mut self) -> &mut Vec<String> {
                &mut self.attached
            }
        }
    };
}
pub(crate) use impl_holder;

pub(crate) fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

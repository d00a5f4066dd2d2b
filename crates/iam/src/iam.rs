//! IAM's domain: roles (with their inline policies and the managed policies attached to them)
//! and customer managed policies (with up to five versions), stored per account.
//!
//! Storage: `iam/<account>/roles` and `iam/<account>/policies`, keyed by the lower-cased name
//! (IAM names are unique regardless of case). A role document carries its inline policies and
//! the ARNs attached to it; a policy document carries its versions and its attachment count.
//! Attaching or detaching changes both documents in one batch conditioned on both versions, so a
//! concurrent DeleteRole or DeletePolicy can never leave a dangling attachment; a lost race is
//! retried.

use crate::records::{Kind, impl_holder};
pub use crate::records::{ManagedPolicy, PolicyVersion, Tag};
use crate::managed;
use crate::policy_document::{DocumentKind, validate};
use codeyard_core::time::Timestamp;
use codeyard_core::{AwsError, AwsResult, ids};
use codeyard_store::{Batch, Expect, SharedStore, StateStoreExt, StoreError, Update};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use codeyard_core::hub::Credentials;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::sync::atomic::{AtomicU64, Ordering};

/// How many versions a managed policy keeps.
pub const MAX_POLICY_VERSIONS: usize = 5;
pub use codeyard_core::tags::MAX_TAGS;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub created: Timestamp,
    pub assume_role_policy: String,
    pub description: Option<String>,
    pub max_session_duration: i64,
    pub permissions_boundary: Option<String>,
    pub tags: Vec<Tag>,
    /// Inline policies by name, in name order.
    pub inline_policies: BTreeMap<String, String>,
    /// ARNs of attached managed policies, in attachment order.
    pub attached: Vec<String>,
    pub last_used: Option<(Timestamp, String)>,
}

impl_holder!(Role, Kind::Role);

pub struct NewRole {
    pub name: String,
    pub path: Option<String>,
    pub assume_role_policy: String,
    pub description: Option<String>,
    pub max_session_duration: Option<i64>,
    pub permissions_boundary: Option<String>,
    pub tags: Vec<Tag>,
}

pub struct NewPolicy {
    pub name: String,
    pub path: Option<String>,
    pub document: String,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
}

/// Which policies ListPolicies returns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scope {
    All,
    Aws,
    Local,
}

fn roles_ns(account: &str) -> String {
    format!("iam/{account}/roles")
}
pub(crate) fn policies_ns(account: &str) -> String {
    format!("iam/{account}/policies")
}
fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

pub fn no_such_role(name: &str) -> AwsError {
    AwsError::new(
        404,
        "NoSuchEntity",
        format!("The role with name {name} cannot be found."),
    )
}
fn no_such_policy(arn: &str) -> AwsError {
    AwsError::new(404, "NoSuchEntity", format!("Policy {arn} was not found."))
}
fn delete_conflict(message: &str) -> AwsError {
    AwsError::new(409, "DeleteConflict", message)
}
pub(crate) fn limit_exceeded(message: impl Into<String>) -> AwsError {
    AwsError::new(409, "LimitExceeded", message)
}
fn invalid_input(message: impl Into<String>) -> AwsError {
    AwsError::client("InvalidInput", message)
}

pub(crate) fn is_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict(..))
}

/// `LimitExceeded` for a role, user or policy (`kind`: `Role`, `User`, `Policy`) that would
/// have more than [`MAX_TAGS`] tags.
/// DeletePolicyVersion and SetDefaultPolicyVersion name a version the policy must have.
fn require_version(p: &ManagedPolicy, arn: &str, version_id: &str) -> AwsResult<()> {
    match p.version(version_id) {
        Some(_) => Ok(()),
        None => Err(no_such_version(arn, version_id)),
    }
}

pub(crate) fn too_many_tags(kind: &str) -> AwsError {
    limit_exceeded(format!("Cannot exceed quota for TagsPer{kind}: {MAX_TAGS}"))
}

/// Tags merged as TagRole and TagUser do: a key that exists gets the new value; refused as a
/// whole over the quota.
pub(crate) fn add_tags(existing: &mut Vec<Tag>, new: &[Tag], kind: &str) -> AwsResult<()> {
    let new = new.iter().map(|t| (t.key.clone(), t.value.clone()));
    codeyard_core::tags::add(existing, new, MAX_TAGS).map_err(|_| too_many_tags(kind))
}

/// (generation, what an access key authenticates as then).
pub(crate) type KeyCacheEntry = (u64, Option<Credentials>);

/// The IAM store of one server. Cheap to clone.
#[derive(Clone)]
pub struct Iam {
    pub(crate) store: SharedStore,
    /// Bumped by every IAM write: the authorizer's cache of parsed policies is valid while it
    /// stays the same.
    generation: Arc<AtomicU64>,
    /// Access key id -> what it authenticates as, at a generation ([`Iam::access_key_credentials`]).
    pub(crate) key_cache: Arc<Mutex<HashMap<String, KeyCacheEntry>>>,
}

impl Iam {
    pub fn new(store: SharedStore) -> Self {
        Iam { store, generation: Arc::new(AtomicU64::new(0)), key_cache: Arc::default() }
    }

    /// Changes with every write to IAM (roles, users, groups, policies, keys).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Every IAM write goes through here, so that cached decisions never outlive a change.
    pub(crate) async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let result = self.store.commit(batch).await;
        self.generation.fetch_add(1, Ordering::AcqRel);
        result
    }

    /// Compare-and-swap of one IAM document ([`StateStoreExt::update`]: one retry policy; a
    /// race lost every time is a 500 InternalFailure). Bumps the generation like [`Iam::commit`].
    pub(crate) async fn update<T, F>(&self, ns: &str, key: &str, change: F) -> AwsResult<Option<T>>
    where
        T: Serialize + serde::de::DeserializeOwned + Send + Sync,
        F: FnMut(Option<T>) -> AwsResult<Update<T>> + Send,
    {
        let result = self.store.update(ns, key, change).await;
        self.generation.fetch_add(1, Ordering::AcqRel);
        result
    }

    /// Compare-and-swap over several documents (a rename, another document's counter), which
    /// [`Iam::update`] cannot express: `attempt` reads what it needs and answers the batch to
    /// commit with its conditions (empty: nothing to write). The store's `update_many` runs it
    /// again after a lost race, with the one retry policy and failure answer
    /// ([`StoreError::Contended`], a 500). Bumps the generation like [`Iam::commit`].
    pub(crate) async fn update_many<F, Fut>(&self, mut attempt: F) -> AwsResult<()>
    where
        F: FnMut() -> Fut + Send,
        Fut: std::future::Future<Output = AwsResult<Batch>> + Send,
    {
        let result = self.store.update_many(|| {
            let batch = attempt();
            async move { Ok((batch.await?, ())) }
        });
        let result = result.await;
        self.generation.fetch_add(1, Ordering::AcqRel);
        result
    }

    // ------------------------------------------------------------------ roles

    pub async fn create_role(&self, account: &str, new: NewRole) -> AwsResult<Role> {
        validate(&new.assume_role_policy, DocumentKind::Trust)?;
        if let Some(b) = &new.permissions_boundary {
            self.check_boundary(account, b).await?;
        }
        if new.tags.len() > MAX_TAGS {
            return Err(too_many_tags("Role"));
        }
        let path = new.path.unwrap_or_else(|| "/".into());
        let role = Role {
            arn: Kind::Role.arn(account, &path, &new.name),
            id: Kind::Role.new_id(),
            path,
            created: codeyard_core::time::now(),
            assume_role_policy: new.assume_role_policy,
            description: new.description,
            max_session_duration: new.max_session_duration.unwrap_or(3600),
            permissions_boundary: new.permissions_boundary,
            tags: new.tags,
            inline_policies: BTreeMap::new(),
            attached: Vec::new(),
            last_used: None,
            name: new.name,
        };
        self.create_entity(account, &role).await?;
        Ok(role)
    }

    async fn role_versioned(&self, account: &str, name: &str) -> AwsResult<(Role, i64)> {
        self.entity_versioned::<Role>(account, name).await
    }

    pub async fn get_role(&self, account: &str, name: &str) -> AwsResult<Role> {
        Ok(self.role_versioned(account, name).await?.0)
    }

    /// Finds a role by its ARN (AssumeRole, builds).
    pub async fn role_by_arn(&self, account: &str, arn: &str) -> AwsResult<Option<Role>> {
        let name = arn.rsplit('/').next().unwrap_or("");
        if name.is_empty() {
            return Ok(None);
        }
        let found = self
            .store
            .get_as::<Role>(&roles_ns(account), &key(name))
            .await?;
        Ok(found.map(|(r, _)| r).filter(|r| r.arn == arn))
    }

    async fn update_role<T: Send>(&self, account: &str, name: &str, change: impl FnMut(&mut Role) -> AwsResult<T> + Send) -> AwsResult<T> {
        self.update_entity::<Role, T>(account, name, change).await
    }

    pub async fn update_role_settings(
        &self,
        account: &str,
        name: &str,
        description: Option<String>,
        max_session_duration: Option<i64>,
    ) -> AwsResult<()> {
        self.update_role(account, name, |r| {
            if let Some(d) = &description {
                r.description = Some(d.clone());
            }
            if let Some(m) = max_session_duration {
                r.max_session_duration = m;
            }
            Ok(())
        })
        .await
    }

    pub async fn update_assume_role_policy(
        &self,
        account: &str,
        name: &str,
        document: String,
    ) -> AwsResult<()> {
        validate(&document, DocumentKind::Trust)?;
        self.update_role(account, name, |r| {
            r.assume_role_policy = document.clone();
            Ok(())
        })
        .await
    }

    pub async fn record_role_use(&self, account: &str, name: &str, region: &str) -> AwsResult<()> {
        let now = codeyard_core::time::now();
        self.update_role(account, name, |r| {
            r.last_used = Some((now, region.to_string()));
            Ok(())
        })
        .await
    }

    pub async fn delete_role(&self, account: &str, name: &str) -> AwsResult<()> {
        self.delete_entity::<Role>(account, name, |_| Ok(())).await
    }

    pub async fn tag_role(&self, account: &str, name: &str, tags: Vec<Tag>) -> AwsResult<()> {
        self.update_role(account, name, |r| add_tags(&mut r.tags, &tags, "Role")).await
    }

    pub async fn untag_role(&self, account: &str, name: &str, keys: &[String]) -> AwsResult<()> {
        self.update_role(account, name, |r| {
            codeyard_core::tags::remove(&mut r.tags, keys);
            Ok(())
        })
        .await
    }

    // ------------------------------------------------------------------ inline policies

    pub async fn put_role_policy(&self, account: &str, role: &str, policy: &str, document: String) -> AwsResult<()> {
        self.put_inline::<Role>(account, role, policy, document).await
    }

    pub async fn get_role_policy(&self, account: &str, role: &str, policy: &str) -> AwsResult<(String, String, String)> {
        self.get_inline::<Role>(account, role, policy).await
    }

    pub async fn delete_role_policy(&self, account: &str, role: &str, policy: &str) -> AwsResult<()> {
        self.delete_inline::<Role>(account, role, policy).await
    }

    // ------------------------------------------------------------------ managed policies

    pub async fn create_policy(&self, account: &str, new: NewPolicy) -> AwsResult<ManagedPolicy> {
        validate(&new.document, DocumentKind::Identity)?;
        if new.tags.len() > MAX_TAGS {
            return Err(too_many_tags("Policy"));
        }
        let now = codeyard_core::time::now();
        let path = new.path.unwrap_or_else(|| "/".into());
        let policy = ManagedPolicy {
            arn: format!("arn:aws:iam::{account}:policy{path}{}", new.name),
            id: format!("ANPA{}", ids::upper_alnum(17)),
            path,
            description: new.description,
            created: now,
            updated: now,
            default_version: "v1".into(),
            versions: vec![PolicyVersion {
                id: "v1".into(),
                document: new.document,
                created: now,
            }],
            next_version: 2,
            attachment_count: 0,
            tags: new.tags,
            name: new.name,
        };
        match self
            .store
            .commit(Batch::new().put(
                policies_ns(account),
                key(&policy.name),
                &policy,
                Expect::Absent,
            ))
            .await
        {
            Ok(()) => Ok(policy),
            Err(e) if is_conflict(&e) => Err(AwsError::new(
                409,
                "EntityAlreadyExists",
                format!(
                    "A policy called {} already exists. Duplicate names are not allowed.",
                    policy.name
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The policy an ARN names in this account, with its store version.
    pub(crate) async fn policy_versioned(
        &self,
        account: &str,
        arn: &str,
    ) -> AwsResult<Option<(ManagedPolicy, i64)>> {
        let Some(name) = policy_name_of(account, arn) else {
            return Ok(None);
        };
        let found = self
            .store
            .get_as::<ManagedPolicy>(&policies_ns(account), &key(name))
            .await?;
        Ok(found.filter(|(p, _)| p.arn == arn))
    }

    /// A customer managed policy of the account, or an AWS managed one.
    pub async fn get_policy(&self, account: &str, arn: &str) -> AwsResult<ManagedPolicy> {
        if let Some(p) = managed::get(arn) {
            let mut policy = p.to_policy();
            policy.attachment_count = self.aws_attachment_counts(account).await?.get(arn).copied().unwrap_or(0);
            return Ok(policy);
        }
        Ok(self
            .policy_versioned(account, arn)
            .await?
            .ok_or_else(|| no_such_policy(arn))?
            .0)
    }

    async fn update_policy<T: Send>(
        &self,
        account: &str,
        arn: &str,
        mut change: impl FnMut(&mut ManagedPolicy) -> AwsResult<T> + Send,
    ) -> AwsResult<T> {
        let name = policy_name_of(account, arn).ok_or_else(|| no_such_policy(arn))?;
        let mut out = None;
        self.update(&policies_ns(account), &key(name), |current: Option<ManagedPolicy>| {
            let mut policy = current.filter(|p| p.arn == arn).ok_or_else(|| no_such_policy(arn))?;
            out = Some(change(&mut policy)?);
            Ok(Update::put(policy))
        })
        .await?;
        Ok(out.expect("a successful update ran the change"))
    }

    pub async fn create_policy_version(
        &self,
        account: &str,
        arn: &str,
        document: String,
        set_default: bool,
    ) -> AwsResult<PolicyVersion> {
        validate(&document, DocumentKind::Identity)?;
        self.update_policy(account, arn, |p| {
            if p.versions.len() >= MAX_POLICY_VERSIONS {
                return Err(limit_exceeded(format!(
                    "A managed policy can have up to {MAX_POLICY_VERSIONS} versions. Before you create a new version, you must delete an existing version."
                )));
            }
            let now = codeyard_core::time::now();
            let v = PolicyVersion { id: format!("v{}", p.next_version), document: document.clone(), created: now };
            p.next_version += 1;
            p.versions.push(v.clone());
            if set_default {
                p.default_version = v.id.clone();
            }
            p.updated = now;
            Ok(v)
        })
        .await
    }

    pub async fn delete_policy_version(&self, account: &str, arn: &str, version_id: &str) -> AwsResult<()> {
        self.update_policy(account, arn, |p| {
            require_version(p, arn, version_id)?;
            if p.default_version == version_id {
                return Err(delete_conflict("Cannot delete the default version of a policy."));
            }
            p.versions.retain(|v| v.id != version_id);
            Ok(())
        })
        .await
    }

    pub async fn set_default_policy_version(&self, account: &str, arn: &str, version_id: &str) -> AwsResult<()> {
        self.update_policy(account, arn, |p| {
            require_version(p, arn, version_id)?;
            p.default_version = version_id.to_string();
            p.updated = codeyard_core::time::now();
            Ok(())
        })
        .await
    }

    pub async fn get_policy_version(
        &self,
        account: &str,
        arn: &str,
        version_id: &str,
    ) -> AwsResult<(ManagedPolicy, PolicyVersion)> {
        let p = self.get_policy(account, arn).await?;
        let v = p
            .version(version_id)
            .cloned()
            .ok_or_else(|| no_such_version(arn, version_id))?;
        Ok((p, v))
    }

    pub async fn delete_policy(&self, account: &str, arn: &str) -> AwsResult<()> {
        let name = policy_name_of(account, arn).ok_or_else(|| no_such_policy(arn))?;
        self.update(&policies_ns(account), &key(name), |current: Option<ManagedPolicy>| {
            let policy = current.filter(|p| p.arn == arn).ok_or_else(|| no_such_policy(arn))?;
            if policy.attachment_count > 0 {
                return Err(delete_conflict("Cannot delete a policy attached to entities."));
            }
            if policy.versions.len() > 1 {
                return Err(delete_conflict(
                    "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.",
                ));
            }
            Ok(Update::delete())
        })
        .await?;
        Ok(())
    }

    /// Customer managed policies (`Local`), AWS managed ones (`Aws`) or both, ordered by name.
    pub async fn list_policies(
        &self,
        account: &str,
        scope: Scope,
        only_attached: bool,
        path_prefix: Option<&str>,
    ) -> AwsResult<Vec<ManagedPolicy>> {
        let mut all: Vec<ManagedPolicy> = Vec::new();
        if scope != Scope::Local {
            let counts = self.aws_attachment_counts(account).await?;
            all.extend(managed::all().map(|p| ManagedPolicy { attachment_count: counts.get(&p.arn).copied().unwrap_or(0), ..p.to_policy() }));
        }
        if scope != Scope::Aws {
            all.extend(self.store.list_all_as::<ManagedPolicy>(&policies_ns(account)).await?);
        }
        all.sort_by_key(|p| p.name.to_ascii_lowercase());
        Ok(all
            .into_iter()
            .filter(|p| !only_attached || p.attachment_count > 0)
            .filter(|p| path_prefix.is_none_or(|pre| p.path.starts_with(pre)))
            .collect())
    }

    // ------------------------------------------------------------------ attachments

    pub async fn attach_role_policy(&self, account: &str, role: &str, arn: &str) -> AwsResult<()> {
        self.attach::<Role>(account, role, arn).await
    }

    pub async fn detach_role_policy(&self, account: &str, role: &str, arn: &str) -> AwsResult<()> {
        self.detach::<Role>(account, role, arn).await
    }
}


fn no_such_version(arn: &str, version_id: &str) -> AwsError {
    AwsError::new(
        404,
        "NoSuchEntity",
        format!("Policy {arn} version {version_id} does not exist or is not attachable."),
    )
}

/// The policy name in `arn:aws:iam::<account>:policy/<path><name>`, if the ARN is one of this
/// account's policies.
fn policy_name_of<'a>(account: &str, arn: &'a str) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (acct, resource) = rest.split_once(':')?;
    if acct != account || !resource.starts_with("policy/") {
        return None;
    }
    resource.rsplit('/').next().filter(|n| !n.is_empty())
}

/// Checks an ARN parameter's shape as IAM does before looking it up.
pub fn check_policy_arn(arn: &str) -> AwsResult<()> {
    if codeyard_core::arn::Arn::parse(arn).is_none() {
        return Err(invalid_input(format!("ARN {arn} is not valid.")));
    }
    Ok(())
}

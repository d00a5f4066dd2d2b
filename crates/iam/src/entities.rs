//! What roles, users and groups have in common: each is one document under
//! `iam/<account>/<kind>` keyed by its lower-cased name, carrying its inline policies and the
//! ARNs of the managed policies attached to it. The inline-policy and attachment operations
//! (Put/Get/Delete*Policy, Attach/Detach*Policy) are written once here for the three kinds.
//!
//! Attaching a customer managed policy changes both documents in one batch conditioned on both
//! versions (its attachment count moves with it); AWS managed policies
//! (`arn:aws:iam::aws:policy/...`) are not stored per account, so only the holder changes.

use crate::iam::{Iam, is_conflict, limit_exceeded, policies_ns};
use crate::managed;
use crate::policy_document::{DocumentKind, validate};
pub use crate::records::{Holder, Kind};
use crate::records::key;
use codeyard_core::{AwsError, AwsResult};
use codeyard_store::{Batch, Expect, StateStoreExt, Update};

/// How many managed policies a role, user or group may have attached (IAM's default quota).
pub const MAX_ATTACHED: usize = 10;

fn not_attachable(arn: &str) -> AwsError {
    AwsError::new(404, "NoSuchEntity", format!("Policy {arn} does not exist or is not attachable."))
}

impl Iam {
    pub(crate) async fn entity_versioned<H: Holder>(&self, account: &str, name: &str) -> AwsResult<(H, i64)> {
        self.store.get_as::<H>(&H::KIND.ns(account), &key(name)).await?.ok_or_else(|| H::KIND.no_such(name))
    }

    pub async fn entity<H: Holder>(&self, account: &str, name: &str) -> AwsResult<H> {
        Ok(self.entity_versioned::<H>(account, name).await?.0)
    }

    /// Read-modify-write of one document ([`Iam::update`]'s compare-and-swap).
    pub(crate) async fn update_entity<H: Holder, T: Send>(
        &self,
        account: &str,
        name: &str,
        mut change: impl FnMut(&mut H) -> AwsResult<T> + Send,
    ) -> AwsResult<T> {
        let mut out = None;
        self.update(&H::KIND.ns(account), &key(name), |current: Option<H>| {
            let mut doc = current.ok_or_else(|| H::KIND.no_such(name))?;
            out = Some(change(&mut doc)?);
            Ok(Update::put(doc))
        })
        .await?;
        Ok(out.expect("a successful update ran the change"))
    }

    /// Creates a document that must not exist yet (else EntityAlreadyExists).
    pub(crate) async fn create_entity<H: Holder>(&self, account: &str, doc: &H) -> AwsResult<()> {
        match self.commit(Batch::new().put(H::KIND.ns(account), key(doc.name()), doc, Expect::Absent)).await {
            Ok(()) => Ok(()),
            Err(e) if is_conflict(&e) => Err(H::KIND.exists(doc.name())),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a document after `check` (DeleteConflict and the like) passes on its current state.
    pub(crate) async fn delete_entity<H: Holder>(&self, account: &str, name: &str, check: impl Fn(&H) -> AwsResult<()> + Send + Sync) -> AwsResult<()> {
        self.update(&H::KIND.ns(account), &key(name), |current: Option<H>| {
            let doc = current.ok_or_else(|| H::KIND.no_such(name))?;
            if !doc.inline_policies().is_empty() {
                return Err(AwsError::new(409, "DeleteConflict", "Cannot delete entity, must delete policies first."));
            }
            if !doc.attached().is_empty() {
                return Err(AwsError::new(409, "DeleteConflict", "Cannot delete entity, must detach all policies first."));
            }
            check(&doc)?;
            Ok(Update::delete())
        })
        .await?;
        Ok(())
    }

    pub async fn list_entities<H: Holder>(&self, account: &str) -> AwsResult<Vec<H>> {
        Ok(self.store.list_all_as(&H::KIND.ns(account)).await?)
    }

    /// ListRoles / ListUsers / ListGroups: the account's entities whose path starts with
    /// `path_prefix`, ordered by (lower-cased) name.
    pub async fn list_under<H: Holder>(&self, account: &str, path_prefix: Option<&str>) -> AwsResult<Vec<H>> {
        let all = self.list_entities::<H>(account).await?;
        Ok(all.into_iter().filter(|h| path_prefix.is_none_or(|p| h.path().starts_with(p))).collect())
    }

    // ------------------------------------------------------------------ inline policies

    pub async fn put_inline<H: Holder>(&self, account: &str, holder: &str, policy: &str, document: String) -> AwsResult<()> {
        validate(&document, DocumentKind::Identity)?;
        self.update_entity::<H, _>(account, holder, |h| {
            // The name keeps the case it was first stored with.
            let existing = h.inline_policies().keys().find(|k| k.eq_ignore_ascii_case(policy)).cloned();
            h.inline_policies_mut().insert(existing.unwrap_or_else(|| policy.to_string()), document.clone());
            Ok(())
        })
        .await
    }

    /// (holder name, policy name, document).
    pub async fn get_inline<H: Holder>(&self, account: &str, holder: &str, policy: &str) -> AwsResult<(String, String, String)> {
        let h = self.entity::<H>(account, holder).await?;
        h.inline_policies()
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(policy))
            .map(|(k, v)| (h.name().to_string(), k.clone(), v.clone()))
            .ok_or_else(|| H::KIND.no_such_inline(policy))
    }

    pub async fn delete_inline<H: Holder>(&self, account: &str, holder: &str, policy: &str) -> AwsResult<()> {
        self.update_entity::<H, _>(account, holder, |h| {
            let existing = h.inline_policies().keys().find(|k| k.eq_ignore_ascii_case(policy)).cloned();
            match existing {
                Some(k) => {
                    h.inline_policies_mut().remove(&k);
                    Ok(())
                }
                None => Err(H::KIND.no_such_inline(policy)),
            }
        })
        .await
    }

    // ------------------------------------------------------------------ attachments

    pub async fn attach<H: Holder>(&self, account: &str, holder: &str, arn: &str) -> AwsResult<()> {
        let aws_managed = managed::is_aws_arn(arn);
        if aws_managed && managed::get(arn).is_none() {
            return Err(not_attachable(arn));
        }
        self.update_many(move || async move {
            let (mut h, hv) = self.entity_versioned::<H>(account, holder).await?;
            let policy = if aws_managed { None } else { Some(self.policy_versioned(account, arn).await?.ok_or_else(|| not_attachable(arn))?) };
            if h.attached().iter().any(|a| a == arn) {
                return Ok(Batch::new()); // Attaching twice is not an error in IAM.
            }
            if h.attached().len() >= MAX_ATTACHED {
                return Err(limit_exceeded(format!("Cannot exceed quota for {}: {MAX_ATTACHED}", H::KIND.quota())));
            }
            h.attached_mut().push(arn.to_string());
            Ok(self.holder_and_count(account, &h, hv, policy, 1))
        })
        .await
    }

    pub async fn detach<H: Holder>(&self, account: &str, holder: &str, arn: &str) -> AwsResult<()> {
        self.update_many(move || async move {
            let (mut h, hv) = self.entity_versioned::<H>(account, holder).await?;
            if !h.attached().iter().any(|a| a == arn) {
                return Err(AwsError::new(404, "NoSuchEntity", format!("Policy {arn} was not found.")));
            }
            h.attached_mut().retain(|a| a != arn);
            let policy = self.policy_versioned(account, arn).await?;
            Ok(self.holder_and_count(account, &h, hv, policy, -1))
        })
        .await
    }

    /// The batch of an attachment change: the holder and, for a customer managed policy, its
    /// AttachmentCount moved by `delta`, both conditional on the versions read.
    fn holder_and_count<H: Holder>(&self, account: &str, h: &H, hv: i64, policy: Option<(crate::iam::ManagedPolicy, i64)>, delta: i64) -> Batch {
        let mut batch = Batch::new().put(H::KIND.ns(account), key(h.name()), h, Expect::Version(hv));
        if let Some((mut p, pv)) = policy {
            p.attachment_count = (p.attachment_count + delta).max(0);
            batch = batch.put(policies_ns(account), key(&p.name), &p, Expect::Version(pv));
        }
        batch
    }

    /// How often each AWS managed policy is attached in the account (they are not stored per
    /// account, so their AttachmentCount is counted from the roles, users and groups).
    pub async fn aws_attachment_counts(&self, account: &str) -> AwsResult<std::collections::HashMap<String, i64>> {
        let mut counts = std::collections::HashMap::new();
        let mut add = |attached: &[String]| {
            for arn in attached.iter().filter(|a| managed::is_aws_arn(a)) {
                *counts.entry(arn.clone()).or_insert(0) += 1;
            }
        };
        for r in self.list_entities::<crate::iam::Role>(account).await? {
            add(&r.attached);
        }
        for u in self.list_entities::<crate::users::User>(account).await? {
            add(&u.attached);
        }
        for g in self.list_entities::<crate::groups::Group>(account).await? {
            add(&g.attached);
        }
        Ok(counts)
    }

    /// The document of a managed policy's default version: the account's own, or AWS's.
    pub async fn managed_document(&self, account: &str, arn: &str) -> AwsResult<Option<String>> {
        if let Some(p) = managed::get(arn) {
            return Ok(Some(p.document.to_string()));
        }
        Ok(self.policy_versioned(account, arn).await?.and_then(|(p, _)| p.version(&p.default_version).map(|v| v.document.clone())))
    }
}

/// `(name, arn, path)` of attached policies, as the ListAttached*Policies calls list them.
pub fn attached_listing(attached: &[String], path_prefix: Option<&str>) -> Vec<(String, String, String)> {
    attached
        .iter()
        .map(|arn| {
            let resource = arn.split_once(":policy").map(|(_, r)| r).unwrap_or("/");
            let (path, name) = resource.rsplit_once('/').map(|(p, n)| (format!("{p}/"), n)).unwrap_or(("/".into(), resource));
            (name.to_string(), arn.clone(), path)
        })
        .filter(|(_, _, path)| path_prefix.is_none_or(|p| path.starts_with(p)))
        .collect()
}

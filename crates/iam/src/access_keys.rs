//! IAM users' long-term access keys (`AKIA...`): `iam/access-keys`, keyed by the key id (global,
//! as the request authenticator knows only the id), each naming its account and user. The
//! user document lists its key ids; creating and deleting a key change both in one batch.
//!
//! Active keys authenticate: [`Iam::access_key_credentials`] is what STS's
//! `CredentialIssuer::lookup` answers for `AKIA` ids, so requests signed with a user's key are
//! attributed to `arn:aws:iam::<acct>:user/<name>`. The secret is shown once, at creation.

use crate::records::{Kind, key};
use crate::iam::{Iam, limit_exceeded};
use crate::users::User;
pub use codeyard_api::iam::StatusType as KeyStatus;
use codeyard_core::hub::Credentials;
use codeyard_core::time::Timestamp;
use codeyard_core::{AwsError, AwsResult, ids};
use codeyard_store::{Batch, Expect, StateStoreExt, Update};
use serde::{Deserialize, Serialize};

const KEYS_NS: &str = "iam/access-keys";
/// AWS's prefix for long-term access key ids.
pub const LONG_TERM_KEY_PREFIX: &str = "AKIA";
/// Access keys per user (IAM's quota).
pub const MAX_KEYS_PER_USER: usize = 2;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    pub account: String,
    pub user: String,
    pub status: KeyStatus,
    pub created: Timestamp,
    /// (when, service, region) of the last request signed with the key.
    #[serde(default)]
    pub last_used: Option<(Timestamp, String, String)>,
}

fn no_such_key(id: &str) -> AwsError {
    AwsError::new(404, "NoSuchEntity", format!("The Access Key with id {id} cannot be found."))
}

impl Iam {
    pub async fn create_access_key(&self, account: &str, user: &str) -> AwsResult<AccessKey> {
        let mut created = None;
        self.update(&Kind::User.ns(account), &key(user), |current: Option<User>| {
            let mut u = current.ok_or_else(|| Kind::User.no_such(user))?;
            if u.access_keys.len() >= MAX_KEYS_PER_USER {
                return Err(limit_exceeded(format!("Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}")));
            }
            let k = AccessKey {
                id: format!("{LONG_TERM_KEY_PREFIX}{}", ids::upper_alnum(16)),
                secret: ids::alnum(40),
                account: account.to_string(),
                user: u.name.clone(),
                status: KeyStatus::Active,
                created: codeyard_core::time::now(),
                last_used: None,
            };
            u.access_keys.push(k.id.clone());
            let also = Batch::new().put(KEYS_NS, k.id.clone(), &k, Expect::Absent);
            created = Some(k);
            Ok(Update::put(u).also(also))
        })
        .await?;
        Ok(created.expect("a successful update created the key"))
    }

    async fn key_versioned(&self, id: &str) -> AwsResult<Option<(AccessKey, i64)>> {
        Ok(self.store.get_as::<AccessKey>(KEYS_NS, id).await?)
    }

    /// The key `id` of `user` in `account` (NoSuchEntity otherwise).
    async fn user_key(&self, account: &str, user: &str, id: &str) -> AwsResult<(AccessKey, i64)> {
        self.key_versioned(id)
            .await?
            .filter(|(k, _)| k.account == account && k.user.eq_ignore_ascii_case(user))
            .ok_or_else(|| no_such_key(id))
    }

    pub async fn list_access_keys(&self, account: &str, user: &str) -> AwsResult<Vec<AccessKey>> {
        let u = self.get_user(account, user).await?;
        let mut keys = Vec::new();
        for id in &u.access_keys {
            if let Some((k, _)) = self.key_versioned(id).await? {
                keys.push(k);
            }
        }
        Ok(keys)
    }

    pub async fn update_access_key(&self, account: &str, user: &str, id: &str, status: KeyStatus) -> AwsResult<()> {
        self.user_key(account, user, id).await?;
        self.update(KEYS_NS, id, |current: Option<AccessKey>| {
            let mut k = current.ok_or_else(|| no_such_key(id))?;
            k.status = status.clone();
            Ok(Update::put(k))
        })
        .await?;
        Ok(())
    }

    pub async fn delete_access_key(&self, account: &str, user: &str, id: &str) -> AwsResult<()> {
        // The user's key list is the compare-and-swap guard; the key goes with it.
        self.update(&Kind::User.ns(account), &key(user), |current: Option<User>| {
            let mut u = current.ok_or_else(|| Kind::User.no_such(user))?;
            if !u.access_keys.iter().any(|k| k == id) {
                return Err(no_such_key(id));
            }
            u.access_keys.retain(|k| k != id);
            Ok(Update::put(u).also(Batch::new().delete(KEYS_NS, id, Expect::Any)))
        })
        .await?;
        Ok(())
    }

    /// GetAccessKeyLastUsed: (user name, last use). Any key of the caller's account.
    pub async fn access_key_last_used(&self, account: &str, id: &str) -> AwsResult<AccessKey> {
        self.key_versioned(id).await?.map(|(k, _)| k).filter(|k| k.account == account).ok_or_else(|| {
            AwsError::new(403, "AccessDenied", format!("The access key ID {id} does not exist or you do not have permission to access it."))
        })
    }

    /// The credentials an active user access key authenticates as (`None`: not a user key, or
    /// inactive, or its user is gone).
    /// Answered from a cache while IAM has not changed (every request signed with the key asks).
    pub async fn access_key_credentials(&self, id: &str) -> AwsResult<Option<Credentials>> {
        if !id.starts_with(LONG_TERM_KEY_PREFIX) {
            return Ok(None);
        }
        let generation = self.generation();
        if let Some((g, c)) = self.key_cache.lock().unwrap().get(id)
            && *g == generation
        {
            return Ok(c.clone());
        }
        let found = self.load_key_credentials(id).await?;
        let mut cache = self.key_cache.lock().unwrap();
        if cache.len() >= 4096 {
            cache.clear();
        }
        cache.insert(id.to_string(), (generation, found.clone()));
        Ok(found)
    }

    async fn load_key_credentials(&self, id: &str) -> AwsResult<Option<Credentials>> {
        let Some((k, _)) = self.key_versioned(id).await? else {
            return Ok(None);
        };
        if k.status != KeyStatus::Active {
            return Ok(None);
        }
        let Ok(u) = self.get_user(&k.account, &k.user).await else {
            return Ok(None);
        };
        Ok(Some(Credentials {
            access_key_id: k.id,
            secret_access_key: k.secret,
            session_token: None,
            expiration: None,
            account: k.account,
            arn: u.arn,
        }))
    }

    /// Moves a renamed user's keys to its new name (part of UpdateUser's batch).
    pub(crate) async fn rename_key_owner(&self, mut batch: Batch, ids: &[String], new_name: &str) -> AwsResult<Batch> {
        for id in ids {
            if let Some((mut k, v)) = self.key_versioned(id).await? {
                k.user = new_name.to_string();
                batch = batch.put(KEYS_NS, id.clone(), &k, Expect::Version(v));
            }
        }
        Ok(batch)
    }
}

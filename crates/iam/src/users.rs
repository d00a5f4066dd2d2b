//! IAM users: `iam/<account>/users`, keyed by the lower-cased name. A user document carries its
//! inline policies, attached policy ARNs, permissions boundary, tags, the groups it belongs to
//! (membership lives on the user: a group's members are found by listing users) and the ids of
//! its access keys (the keys themselves are in [`crate::access_keys`]).

use crate::records::{Kind, impl_holder, key};
use crate::iam::{Iam, MAX_TAGS, add_tags, too_many_tags};
use crate::records::Tag;
use codeyard_core::time::Timestamp;
use codeyard_core::{AwsError, AwsResult};
use codeyard_store::{Batch, Expect};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub created: Timestamp,
    pub permissions_boundary: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: Vec<String>,
    /// Names of the groups the user is in, in the order it joined them.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Ids of the user's access keys.
    #[serde(default)]
    pub access_keys: Vec<String>,
}

impl_holder!(User, Kind::User);

pub struct NewUser {
    pub name: String,
    pub path: Option<String>,
    pub permissions_boundary: Option<String>,
    pub tags: Vec<Tag>,
}

impl Iam {
    pub async fn create_user(&self, account: &str, new: NewUser) -> AwsResult<User> {
        if new.tags.len() > MAX_TAGS {
            return Err(too_many_tags("User"));
        }
        if let Some(b) = &new.permissions_boundary {
            self.check_boundary(account, b).await?;
        }
        let path = new.path.unwrap_or_else(|| "/".into());
        let user = User {
            arn: Kind::User.arn(account, &path, &new.name),
            id: Kind::User.new_id(),
            path,
            created: codeyard_core::time::now(),
            permissions_boundary: new.permissions_boundary,
            tags: new.tags,
            inline_policies: BTreeMap::new(),
            attached: Vec::new(),
            groups: Vec::new(),
            access_keys: Vec::new(),
            name: new.name,
        };
        self.create_entity(account, &user).await?;
        Ok(user)
    }

    pub async fn get_user(&self, account: &str, name: &str) -> AwsResult<User> {
        self.entity::<User>(account, name).await
    }

    /// UpdateUser: a new name and/or path. The ARN follows; the id stays.
    pub async fn update_user(&self, account: &str, name: &str, new_name: Option<&str>, new_path: Option<&str>) -> AwsResult<()> {
        let rename = new_name.filter(|n| *n != name);
        let Some(new_name) = rename else {
            return self
                .update_entity::<User, _>(account, name, |u| {
                    if let Some(p) = new_path {
                        u.path = p.to_string();
                        u.arn = Kind::User.arn(account, p, &u.name);
                    }
                    Ok(())
                })
                .await;
        };
        // A rename moves the document (and the access keys' owner): one batch, both conditioned.
        self.update_many(move || async move {
            if key(name) != key(new_name) && self.entity_versioned::<User>(account, new_name).await.is_ok() {
                return Err(Kind::User.exists(new_name));
            }
            let (mut u, version) = self.entity_versioned::<User>(account, name).await?;
            u.name = new_name.to_string();
            if let Some(p) = new_path {
                u.path = p.to_string();
            }
            u.arn = Kind::User.arn(account, &u.path, &u.name);
            let mut batch = Batch::new().delete(Kind::User.ns(account), key(name), Expect::Version(version));
            batch = batch.put(Kind::User.ns(account), key(new_name), &u, if key(name) == key(new_name) { Expect::Any } else { Expect::Absent });
            self.rename_key_owner(batch, &u.access_keys, new_name).await
        })
        .await
    }

    /// DeleteUser: refused while the user has policies, keys or group memberships, as IAM does.
    pub async fn delete_user(&self, account: &str, name: &str) -> AwsResult<()> {
        self.delete_entity::<User>(account, name, |u| {
            if !u.access_keys.is_empty() {
                return Err(AwsError::new(409, "DeleteConflict", "Cannot delete entity, must delete access keys first."));
            }
            if !u.groups.is_empty() {
                return Err(AwsError::new(409, "DeleteConflict", "Cannot delete entity, must remove users from group first."));
            }
            Ok(())
        })
        .await
    }

    pub async fn tag_user(&self, account: &str, name: &str, tags: Vec<Tag>) -> AwsResult<()> {
        self.update_entity::<User, _>(account, name, |u| add_tags(&mut u.tags, &tags, "User")).await
    }

    pub async fn untag_user(&self, account: &str, name: &str, keys: &[String]) -> AwsResult<()> {
        self.update_entity::<User, _>(account, name, |u| {
            codeyard_core::tags::remove(&mut u.tags, keys);
            Ok(())
        })
        .await
    }

    // ------------------------------------------------------------------ permissions boundaries

    /// A permissions boundary must be a managed policy that exists.
    pub(crate) async fn check_boundary(&self, account: &str, arn: &str) -> AwsResult<()> {
        if self.managed_document(account, arn).await?.is_none() {
            return Err(AwsError::new(404, "NoSuchEntity", format!("Scope ARN: {arn} does not exist or is not attachable.")));
        }
        Ok(())
    }

    pub async fn set_user_boundary(&self, account: &str, name: &str, arn: Option<String>) -> AwsResult<()> {
        if let Some(a) = &arn {
            self.check_boundary(account, a).await?;
        }
        self.update_entity::<User, _>(account, name, |u| {
            u.permissions_boundary = arn.clone();
            Ok(())
        })
        .await
    }

    pub async fn set_role_boundary(&self, account: &str, name: &str, arn: Option<String>) -> AwsResult<()> {
        if let Some(a) = &arn {
            self.check_boundary(account, a).await?;
        }
        self.update_entity::<crate::iam::Role, _>(account, name, |r| {
            r.permissions_boundary = arn.clone();
            Ok(())
        })
        .await
    }
}

//! IAM groups: `iam/<account>/groups`, keyed by the lower-cased name, with their inline and
//! attached policies. Membership is kept on the user ([`crate::users::User::groups`]); a
//! group's members are the users that name it.

use crate::records::{Kind, impl_holder, key};
use crate::iam::Iam;
use crate::users::User;
use codeyard_core::time::Timestamp;
use codeyard_core::{AwsError, AwsResult};
use codeyard_store::{Batch, Expect};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub created: Timestamp,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: Vec<String>,
}

impl_holder!(Group, Kind::Group);

impl Iam {
    pub async fn create_group(&self, account: &str, name: String, path: Option<String>) -> AwsResult<Group> {
        let path = path.unwrap_or_else(|| "/".into());
        let group = Group {
            arn: Kind::Group.arn(account, &path, &name),
            id: Kind::Group.new_id(),
            path,
            created: codeyard_core::time::now(),
            inline_policies: BTreeMap::new(),
            attached: Vec::new(),
            name,
        };
        self.create_entity(account, &group).await?;
        Ok(group)
    }

    pub async fn get_group(&self, account: &str, name: &str) -> AwsResult<Group> {
        self.entity::<Group>(account, name).await
    }

    /// The users in a group, ordered by name.
    pub async fn group_members(&self, account: &str, group: &str) -> AwsResult<Vec<User>> {
        let users = self.list_entities::<User>(account).await?;
        Ok(users.into_iter().filter(|u| u.groups.iter().any(|g| g.eq_ignore_ascii_case(group))).collect())
    }

    /// UpdateGroup: a new name and/or path; members follow the rename.
    pub async fn update_group(&self, account: &str, name: &str, new_name: Option<&str>, new_path: Option<&str>) -> AwsResult<()> {
        self.update_many(move || async move {
            let target = new_name.unwrap_or(name).to_string();
            let renamed = key(&target) != key(name);
            if renamed && self.entity_versioned::<Group>(account, &target).await.is_ok() {
                return Err(Kind::Group.exists(&target));
            }
            let (mut g, version) = self.entity_versioned::<Group>(account, name).await?;
            if let Some(p) = new_path {
                g.path = p.to_string();
            }
            g.name = target.clone();
            g.arn = Kind::Group.arn(account, &g.path, &g.name);
            let mut batch = Batch::new();
            if renamed {
                batch = batch.delete(Kind::Group.ns(account), key(name), Expect::Version(version)).put(
                    Kind::Group.ns(account),
                    key(&target),
                    &g,
                    Expect::Absent,
                );
                // Each member conditioned on the version read, so that a concurrent change to
                // one (AddUserToGroup elsewhere) makes the rename run again instead of being lost.
                for member in self.group_members(account, name).await? {
                    let (mut u, uv) = self.entity_versioned::<User>(account, &member.name).await?;
                    for m in u.groups.iter_mut().filter(|m| m.eq_ignore_ascii_case(name)) {
                        *m = target.clone();
                    }
                    batch = batch.put(Kind::User.ns(account), key(&u.name), &u, Expect::Version(uv));
                }
            } else {
                batch = batch.put(Kind::Group.ns(account), key(name), &g, Expect::Version(version));
            }
            Ok(batch)
        })
        .await
    }

    pub async fn delete_group(&self, account: &str, name: &str) -> AwsResult<()> {
        if !self.group_members(account, name).await?.is_empty() {
            return Err(AwsError::new(409, "DeleteConflict", "Cannot delete entity, must remove users from group first."));
        }
        self.delete_entity::<Group>(account, name, |_| Ok(())).await
    }

    pub async fn add_user_to_group(&self, account: &str, group: &str, user: &str) -> AwsResult<()> {
        let g = self.get_group(account, group).await?;
        self.update_entity::<User, _>(account, user, |u| {
            if !u.groups.iter().any(|m| m.eq_ignore_ascii_case(&g.name)) {
                u.groups.push(g.name.clone());
            }
            Ok(())
        })
        .await
    }

    pub async fn remove_user_from_group(&self, account: &str, group: &str, user: &str) -> AwsResult<()> {
        let g = self.get_group(account, group).await?;
        self.update_entity::<User, _>(account, user, |u| {
            let before = u.groups.len();
            u.groups.retain(|m| !m.eq_ignore_ascii_case(&g.name));
            if u.groups.len() == before {
                return Err(AwsError::new(404, "NoSuchEntity", format!("The user with name {} cannot be found in group {}.", u.name, g.name)));
            }
            Ok(())
        })
        .await
    }

    /// The groups a user is in, in the order it joined them (groups deleted since are skipped).
    pub async fn groups_for_user(&self, account: &str, user: &str) -> AwsResult<Vec<Group>> {
        let u = self.get_user(account, user).await?;
        let mut out = Vec::new();
        for name in &u.groups {
            if let Ok(g) = self.get_group(account, name).await {
                out.push(g);
            }
        }
        Ok(out)
    }
}

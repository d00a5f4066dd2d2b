//! ECS's records in the state store, their namespaces and ARNs, and the reference forms AWS
//! accepts (a name or an ARN; `family`, `family:revision` or a task definition ARN).
//!
//! Records are the API's own typed shapes (`Cluster`, `TaskDefinition`, `Service`, `Task`):
//! what DescribeX answers is what is stored, with the counts filled in when described.
//!
//! * `ecs/<acct>/<region>/clusters`: `Cluster` by name (kept INACTIVE after DeleteCluster).
//! * `ecs/<acct>/<region>/taskdefs`: [`TaskDefinitionRecord`] by `family:0000000007`.
//! * `ecs/<acct>/<region>/services`: `Service` by `cluster/service` (kept INACTIVE after
//!   DeleteService, as ECS describes deleted services for a while).
//! * `ecs/<acct>/<region>/tasks`: `Task` by `cluster/task-id`. A service's tasks carry
//!   `group` `service:<name>` and `startedBy` the deployment id, as on AWS.

use codeyard_api::ecs::{Tag, TaskDefinition};
use codeyard_core::RequestContext;
use serde::{Deserialize, Serialize};

/// What a new task starts with besides its definition (RunTask's members, or a service's).
#[derive(Clone, Debug, Default)]
pub struct TaskLaunch {
    /// `family:<name>` or `service:<name>`.
    pub group: String,
    /// A deployment's id for a service's tasks.
    pub started_by: Option<String>,
    pub launch_type: Option<codeyard_api::ecs::LaunchType>,
    pub overrides: Option<codeyard_api::ecs::TaskOverride>,
    pub tags: Vec<Tag>,
}

/// A task's or container's `lastStatus` / `desiredStatus`. ECS's model types these as plain
/// strings, so records keep AWS's text; the crate reads and writes it only through [`is`] and
/// [`TaskStatus::field`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

/// A cluster's, service's or deployment's `status` (strings in ECS's model, as above).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceStatus {
    Active,
    Draining,
    Inactive,
    /// The deployment a service is moving to.
    Primary,
}

/// A status as the text a record stores.
pub trait StatusText: Copy {
    fn as_str(self) -> &'static str;
    /// The value of a record's status field.
    fn field(self) -> Option<String> {
        Some(self.as_str().to_string())
    }
}

impl StatusText for TaskStatus {
    fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Provisioning => "PROVISIONING",
            TaskStatus::Pending => "PENDING",
            TaskStatus::Activating => "ACTIVATING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Deactivating => "DEACTIVATING",
            TaskStatus::Stopping => "STOPPING",
            TaskStatus::Deprovisioning => "DEPROVISIONING",
            TaskStatus::Stopped => "STOPPED",
        }
    }
}

impl StatusText for ResourceStatus {
    fn as_str(self) -> &'static str {
        match self {
            ResourceStatus::Active => "ACTIVE",
            ResourceStatus::Draining => "DRAINING",
            ResourceStatus::Inactive => "INACTIVE",
            ResourceStatus::Primary => "PRIMARY",
        }
    }
}

/// Whether a record's status field holds `status`.
pub fn is(field: &Option<String>, status: impl StatusText) -> bool {
    field.as_deref() == Some(status.as_str())
}

/// The account and region a request works in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    pub account: String,
    pub region: String,
}

impl Scope {
    pub fn of(ctx: &RequestContext) -> Scope {
        Scope {
            account: ctx.account.clone(),
            region: ctx.region.clone(),
        }
    }

    /// The scope of a namespace `ecs/<acct>/<region>/<kind>`.
    pub fn of_namespace(ns: &str) -> Option<(Scope, String)> {
        let parts: Vec<&str> = ns.split('/').collect();
        match parts.as_slice() {
            ["ecs", a, r, kind] => Some((
                Scope {
                    account: a.to_string(),
                    region: r.to_string(),
                },
                kind.to_string(),
            )),
            _ => None,
        }
    }

    pub fn ns(&self, kind: &str) -> String {
        format!("ecs/{}/{}/{kind}", self.account, self.region)
    }
    pub fn clusters(&self) -> String {
        self.ns("clusters")
    }
    pub fn taskdefs(&self) -> String {
        self.ns("taskdefs")
    }
    pub fn services(&self) -> String {
        self.ns("services")
    }
    pub fn tasks(&self) -> String {
        self.ns("tasks")
    }

    pub fn arn(&self, resource: &str) -> String {
        codeyard_core::arn::arn("ecs", &self.region, &self.account, resource)
    }
    pub fn cluster_arn(&self, cluster: &str) -> String {
        self.arn(&format!("cluster/{cluster}"))
    }
    pub fn service_arn(&self, cluster: &str, service: &str) -> String {
        self.arn(&format!("service/{cluster}/{service}"))
    }
    pub fn task_arn(&self, cluster: &str, id: &str) -> String {
        self.arn(&format!("task/{cluster}/{id}"))
    }
    pub fn task_definition_arn(&self, family: &str, revision: i32) -> String {
        self.arn(&format!("task-definition/{family}:{revision}"))
    }
    pub fn container_arn(&self, cluster: &str, task_id: &str) -> String {
        self.arn(&format!(
            "container/{cluster}/{task_id}/{}",
            codeyard_core::ids::uuid()
        ))
    }
    pub fn context(&self, endpoint: &str) -> RequestContext {
        RequestContext::internal(&self.account, &self.region, endpoint)
    }
}

/// A registered task definition revision and its tags.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskDefinitionRecord {
    pub definition: TaskDefinition,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

pub fn taskdef_key(family: &str, revision: i32) -> String {
    format!("{family}:{revision:010}")
}

pub fn service_key(cluster: &str, service: &str) -> String {
    format!("{cluster}/{service}")
}

pub fn task_key(cluster: &str, id: &str) -> String {
    format!("{cluster}/{id}")
}

/// The last path segment of an ECS ARN's resource, or the value itself (a name).
fn arn_resource(value: &str) -> Option<String> {
    codeyard_core::arn::Arn::parse(value)
        .filter(|a| a.service == "ecs")
        .map(|a| a.resource.clone())
}

/// A cluster named by name or ARN (`default` when none is given).
pub fn cluster_name(value: Option<&str>) -> String {
    let v = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or("default");
    match arn_resource(v) {
        Some(r) => r.trim_start_matches("cluster/").to_string(),
        None => v.to_string(),
    }
}

/// A service named by name or ARN (`service/<cluster>/<name>` or the old `service/<name>`).
pub fn service_name(value: &str) -> String {
    match arn_resource(value) {
        Some(r) => r.rsplit('/').next().unwrap_or_default().to_string(),
        None => value.to_string(),
    }
}

/// A task named by id or ARN.
pub fn task_id(value: &str) -> String {
    match arn_resource(value) {
        Some(r) => r.rsplit('/').next().unwrap_or_default().to_string(),
        None => value.to_string(),
    }
}

/// A task definition reference: family, and the revision when one is named.
pub fn task_definition_ref(value: &str) -> (String, Option<i32>) {
    let v = match arn_resource(value) {
        Some(r) => r.trim_start_matches("task-definition/").to_string(),
        None => value.to_string(),
    };
    match v.rsplit_once(':') {
        Some((family, rev)) => match rev.parse::<i32>() {
            Ok(n) => (family.to_string(), Some(n)),
            Err(_) => (v.clone(), None),
        },
        None => (v, None),
    }
}

/// What an ARN names, for the tagging operations.
#[derive(Debug, PartialEq)]
pub enum Tagged {
    Cluster(String),
    Service(String, String),
    TaskDefinition(String, i32),
    Task(String, String),
}

pub fn tagged(arn: &str) -> Option<Tagged> {
    let r = arn_resource(arn)?;
    let parts: Vec<&str> = r.split('/').collect();
    match parts.as_slice() {
        ["cluster", c] => Some(Tagged::Cluster(c.to_string())),
        ["service", c, s] => Some(Tagged::Service(c.to_string(), s.to_string())),
        ["task", c, t] => Some(Tagged::Task(c.to_string(), t.to_string())),
        ["task-definition", fr] => {
            let (f, r) = fr.rsplit_once(':')?;
            Some(Tagged::TaskDefinition(f.to_string(), r.parse().ok()?))
        }
        _ => None,
    }
}

/// Tags merged by key (new values win).
pub fn merge_tags(current: &mut Vec<Tag>, new: &[Tag]) {
    for t in new {
        match current.iter_mut().find(|c| c.key == t.key) {
            Some(c) => c.value = t.value.clone(),
            None => current.push(t.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_in_every_form() {
        assert_eq!(cluster_name(None), "default");
        assert_eq!(
            cluster_name(Some("arn:aws:ecs:eu-west-1:000000000000:cluster/apps")),
            "apps"
        );
        assert_eq!(
            service_name("arn:aws:ecs:eu-west-1:000000000000:service/apps/web"),
            "web"
        );
        assert_eq!(
            task_id("arn:aws:ecs:eu-west-1:000000000000:task/apps/0123abcd"),
            "0123abcd"
        );
        assert_eq!(task_definition_ref("web"), ("web".into(), None));
        assert_eq!(task_definition_ref("web:3"), ("web".into(), Some(3)));
        assert_eq!(
            task_definition_ref("arn:aws:ecs:eu-west-1:000000000000:task-definition/web:12"),
            ("web".into(), Some(12))
        );
        assert_eq!(
            tagged("arn:aws:ecs:eu-west-1:000000000000:task-definition/web:12"),
            Some(Tagged::TaskDefinition("web".into(), 12))
        );
        assert_eq!(
            tagged("arn:aws:ecs:eu-west-1:000000000000:service/apps/web"),
            Some(Tagged::Service("apps".into(), "web".into()))
        );
        assert_eq!(taskdef_key("web", 7), "web:0000000007");
    }
}

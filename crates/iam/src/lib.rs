//! codeyard-iam: IAM and STS, the identity half of the Foundation.
//!
//! * [`policy_document`]: the grammar checks IAM applies to policy documents and the
//!   percent-encoding IAM answers them in.
//! * [`iam`]: roles, inline policies, customer managed policies (with versions) and
//!   attachments, stored per account under `iam/<account>/...` (IAM is global: no region).
//! * [`sts`]: temporary credentials (AssumeRole, GetSessionToken) stored under
//!   `sts/credentials`; it is also the server's [`codeyard_core::hub::CredentialIssuer`], so
//!   requests signed with issued keys verify under `--auth enforce` and are attributed to the
//!   assumed-role ARN, and builds get their project role's credentials from it.
//! * [`entities`]: what roles, users and groups share (inline policies, attachments);
//!   [`users`], [`groups`], [`access_keys`]: IAM users, groups and long-term keys.
//! * [`managed`]: the AWS managed policies, with the documents AWS publishes.
//! * [`authorizer`]: the server's [`codeyard_core::Authorizer`], evaluating every access request
//!   with codeyard-policy; [`audit`]: the record of denials `codeyard doctor` reads;
//!   [`simulate`]: SimulatePrincipalPolicy / SimulateCustomPolicy from the same evaluator.
//! * [`iam_api`], [`sts_api`]: the generated `codeyard_api::{iam, sts}` traits implemented over
//!   the domain. The wire decodes forms into the typed inputs and encodes answers as XML.

pub mod access_keys;
mod api_shapes;
pub mod audit;
pub mod authorizer;
pub mod entities;
pub mod groups;
pub mod iam;
pub mod iam_api;
pub mod identities_api;
pub mod managed;
pub mod policy_document;
pub mod records;
pub mod simulate;
pub mod sts;
pub mod sts_api;
pub mod users;

use codeyard_core::AwsError;
use codeyard_wire::shapes::{Problem, validation_message};
use codeyard_wire::{Platform, Registry};
use std::sync::Arc;

/// Registers IAM and STS, STS as the hub's credential issuer, the authorizer (in the mode of
/// `--iam`) and the denial record's endpoint.
pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    let iam = iam::Iam::new(platform.store.clone());
    let sts = sts::Sts::new(platform.store.clone(), iam.clone());
    let mode = platform.config.iam;
    let denials = audit::Denials::new(platform.store.clone());
    // The authorizer reads session policies through its own STS handle: the API's one holds
    // the authorizer (trust decisions), and a cycle would keep both alive.
    let authorizer = authorizer::IamAuthorizer::new(iam.clone(), sts::Sts::new(platform.store.clone(), iam.clone()), mode, denials.clone());
    sts.set_authorizer(Arc::new(authorizer.clone()));
    platform.hub.set_credentials(Arc::new(sts.clone()));
    platform.hub.set_authorizer(Arc::new(authorizer.clone()));
    registry.add_http(Arc::new(audit::DenialsEndpoint { denials, mode }));
    registry.add_aws(codeyard_api::iam::service(iam_api::IamService { iam, authorizer }));
    registry.add_aws(codeyard_api::sts::service(sts_api::StsService { sts }));
    Ok(())
}

/// IAM and STS answer constraint violations with `ValidationError` and name members in
/// camelCase (`roleName`), where the model spells them `RoleName`.
pub(crate) fn query_validation_error(problems: &[Problem]) -> AwsError {
    let renamed: Vec<Problem> = problems
        .iter()
        .map(|p| {
            let camel = p
                .path
                .split('.')
                .map(lower_first)
                .collect::<Vec<_>>()
                .join(".");
            Problem {
                message: p
                    .message
                    .replace(&format!("'{}'", p.path), &format!("'{camel}'")),
                ..p.clone()
            }
        })
        .collect();
    AwsError::client("ValidationError", validation_message(&renamed))
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

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
//! * [`iam_api`], [`sts_api`]: the generated `codeyard_api::{iam, sts}` traits implemented over
//!   the domain. The wire decodes forms into the typed inputs and encodes answers as XML.

pub mod iam;
pub mod iam_api;
pub mod policy_document;
pub mod sts;
pub mod sts_api;

use codeyard_core::AwsError;
use codeyard_wire::shapes::{Problem, validation_message};
use codeyard_wire::{Platform, Registry};
use std::sync::Arc;

/// Registers IAM and STS, and STS as the hub's credential issuer.
pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    let iam = iam::Iam::new(platform.store.clone());
    let sts = sts::Sts::new(platform.store.clone(), iam.clone());
    platform.hub.set_credentials(Arc::new(sts.clone()));
    registry.add_aws(codeyard_api::iam::service(iam_api::IamService { iam }));
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

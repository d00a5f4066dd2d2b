//! codeyard-ssm: AWS Systems Manager Parameter Store (awsJson1.1, `AmazonSSM.*`).
//!
//! * [`names`]: parameter names, hierarchies, selectors (`name:3`, `name:label`), ARNs, labels.
//! * [`store`]: parameters with up to 100 versions, labels and tags, in the state store.
//! * [`filters`]: DescribeParameters' and GetParametersByPath's filters.
//! * [`crypto`]: SecureString values through the hub's KMS [`KeyVault`](codeyard_core::hub::KeyVault),
//!   encryption context `PARAMETER_ARN`, never in plain text in the data dir.
//! * [`api`]: the generated `codeyard_api::ssm::SsmApi` trait over the store.
//!
//! [`ParameterReaderImpl`] is the hub's [`ParameterReader`]: CodeBuild resolves
//! `env.parameter-store` and PARAMETER_STORE variables through it as the build's service role.

pub mod api;
pub mod crypto;
pub mod error;
pub mod filters;
pub mod names;
pub mod store;

use async_trait::async_trait;
use codeyard_core::hub::{Hub, ParameterReader};
use codeyard_core::{AccessRequest, AwsResult, RequestContext};
use codeyard_wire::{Platform, Registry};
use std::sync::Arc;
use store::Parameters;

/// Parameter Store as other services read it. The context (a build's role session) is
/// authorized for `ssm:GetParameters` on the parameter's ARN, as the API would be; decrypting a
/// SecureString is KMS's decision for the same context.
pub struct ParameterReaderImpl {
    parameters: Parameters,
    hub: Arc<Hub>,
}

impl ParameterReaderImpl {
    pub fn new(parameters: Parameters, hub: Arc<Hub>) -> Self {
        ParameterReaderImpl { parameters, hub }
    }
}

#[async_trait]
impl ParameterReader for ParameterReaderImpl {
    async fn parameter_value(&self, ctx: &RequestContext, name: &str) -> AwsResult<String> {
        let arn = match names::parse_reference(&ctx.account, &ctx.region, name) {
            Some(r) => names::arn(&ctx.account, &ctx.region, &r.key),
            None => return Err(error::SsmError::NotFound.into()),
        };
        self.hub
            .authorize(ctx, &AccessRequest::new("ssm:GetParameters", arn))
            .await
            .map_err(|d| d.to_error("AccessDeniedException"))?;
        Ok(self.parameters.get(ctx, name, true).await?.value)
    }
}

/// Registers the SSM API (Parameter Store) and the hub's parameter reader.
pub async fn register(registry: &mut Registry, platform: &Platform) -> anyhow::Result<()> {
    let parameters = Parameters::new(
        platform.store.clone(),
        crypto::Crypto::new(platform.hub.clone()),
    );
    platform
        .hub
        .set_parameters(Arc::new(ParameterReaderImpl::new(
            parameters.clone(),
            platform.hub.clone(),
        )));
    registry.add_aws(codeyard_api::ssm::service(api::SsmService { parameters }));
    Ok(())
}

//! Parameter Store and Secrets Manager values in builds, resolved as CodeBuild resolves them.
//!
//! Sources: the buildspec's `env.parameter-store` and `env.secrets-manager`, and project (or
//! StartBuild override, or CodePipeline action) variables of type PARAMETER_STORE and
//! SECRETS_MANAGER. They are read in DOWNLOAD_SOURCE, after the buildspec, acting as the
//! project's service role (the build's context), through the hub's [`ParameterReader`] and
//! [`SecretReader`], which authorize that context (`ssm:GetParameters`,
//! `secretsmanager:GetSecretValue`, KMS decrypt) as AWS does. A failure fails DOWNLOAD_SOURCE with CodeBuild's phase context:
//! `Decrypted Variables Error` / `parameter does not exist: <name>` or
//! `AccessDeniedException: User: ... is not authorized to perform: ssm:GetParameters ...`,
//! and `Secrets Manager Error` / `ResourceNotFoundException: Secrets Manager can't find the
//! specified secret.` Every value read is masked (`***`) in the build's log.
//!
//! [`ParameterReader`]: codeyard_core::hub::ParameterReader
//! [`SecretReader`]: codeyard_core::hub::SecretReader

pub use crate::environment::Source;
use crate::environment::BuildEnv;
use codeyard_core::hub::Hub;
use codeyard_core::{AwsError, RequestContext};

/// CodeBuild's phase context status code for Parameter Store failures.
pub const PARAMETER_ERROR: &str = "Decrypted Variables Error";
/// CodeBuild's phase context status code for Secrets Manager failures.
pub const SECRET_ERROR: &str = "Secrets Manager Error";

/// A `secrets-manager` reference: `secret-id:json-key:version-stage:version-id`, every part
/// after the id optional (empty or absent). The id may be an ARN, which has colons of its own
/// (`arn:aws:secretsmanager:<region>:<account>:secret:<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub secret_id: String,
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

impl SecretRef {
    pub fn parse(reference: &str) -> Result<SecretRef, String> {
        let parts: Vec<&str> = reference.split(':').collect();
        let id_parts = if reference.starts_with("arn:") { 7 } else { 1 };
        if parts.len() < id_parts || parts.len() > id_parts + 3 || parts[..id_parts].iter().any(|p| p.is_empty()) {
            return Err(format!("invalid secrets manager reference key {reference}"));
        }
        let part = |i: usize| {
            parts
                .get(id_parts + i)
                .filter(|p| !p.is_empty())
                .map(|p| p.to_string())
        };
        Ok(SecretRef {
            secret_id: parts[..id_parts].join(":"),
            json_key: part(0),
            version_stage: part(1),
            version_id: part(2),
        })
    }
}

/// A phase context: (status code, message).
pub type Failure = (String, String);

async fn parameter(hub: &Hub, ctx: &RequestContext, name: &str) -> Result<String, Failure> {
    let fail = |m: String| (PARAMETER_ERROR.to_string(), m);
    let reader = hub.parameters().map_err(|e| fail(e.message))?;
    reader
        .parameter_value(ctx, name)
        .await
        .map_err(|e| match e.code.as_str() {
            "ParameterNotFound" | "ParameterVersionNotFound" | "ParameterVersionLabelNotFound" => {
                fail(format!("parameter does not exist: {name}"))
            }
            _ => fail(described(&e)),
        })
}

fn described(e: &AwsError) -> String {
    format!("{}: {}", e.code, e.message)
}

async fn secret(hub: &Hub, ctx: &RequestContext, reference: &str) -> Result<String, Failure> {
    let fail = |m: String| (SECRET_ERROR.to_string(), m);
    let r = SecretRef::parse(reference).map_err(fail)?;
    let reader = hub.secrets().map_err(|e| fail(e.message))?;
    let value = reader
        .secret_value(ctx, &r.secret_id, r.version_stage.as_deref(), r.version_id.as_deref())
        .await
        .map_err(|e| fail(described(&e)))?;
    let Some(key) = &r.json_key else {
        return Ok(value);
    };
    let doc: serde_json::Value = serde_json::from_str(&value)
        .map_err(|_| fail(format!("secret {} is not a JSON document: cannot read key {key}", r.secret_id)))?;
    match doc.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Null) | None => Err(fail(format!(
            "json key {key} not found in secret {}",
            r.secret_id
        ))),
        Some(other) => Ok(other.to_string()),
    }
}

/// Resolves `sources` (name, source) into `env`, masking each value; parameters first, as
/// CodeBuild decrypts them (its log says so), then secrets. The first failure is returned.
pub async fn resolve(
    hub: &Hub,
    ctx: &RequestContext,
    sources: &[(String, Source)],
    env: &mut BuildEnv,
) -> Result<(), Failure> {
    if sources.iter().any(|(_, s)| matches!(s, Source::Parameter(_))) {
        env.warnings.push("Decrypting parameter store environment variables".into());
    }
    for (name, source) in sources {
        if let Source::Parameter(p) = source {
            let v = parameter(hub, ctx, p).await?;
            env.set_secret(name, &v);
        }
    }
    for (name, source) in sources {
        if let Source::Secret(s) = source {
            let v = secret(hub, ctx, s).await?;
            env.set_secret(name, &v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use codeyard_core::AwsResult;
    use codeyard_core::hub::{ParameterReader, SecretReader};
    use std::sync::Arc;

    #[test]
    fn secret_references_as_aws_reads_them() {
        let r = SecretRef::parse("prod/db").unwrap();
        assert_eq!((r.secret_id.as_str(), r.json_key, r.version_stage), ("prod/db", None, None));
        let r = SecretRef::parse("prod/db:password").unwrap();
        assert_eq!(r.json_key.as_deref(), Some("password"));
        let r = SecretRef::parse("prod/db::AWSPREVIOUS").unwrap();
        assert_eq!((r.json_key, r.version_stage.as_deref()), (None, Some("AWSPREVIOUS")));
        let r = SecretRef::parse("prod/db:user::v-1").unwrap();
        assert_eq!((r.json_key.as_deref(), r.version_stage, r.version_id.as_deref()), (Some("user"), None, Some("v-1")));
        let arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-AbCdEf";
        let r = SecretRef::parse(arn).unwrap();
        assert_eq!((r.secret_id.as_str(), r.json_key), (arn, None));
        let r = SecretRef::parse(&format!("{arn}:password:AWSCURRENT")).unwrap();
        assert_eq!((r.secret_id.as_str(), r.json_key.as_deref(), r.version_stage.as_deref()), (arn, Some("password"), Some("AWSCURRENT")));
        assert!(SecretRef::parse("a:b:c:d:e").is_err());
        assert!(SecretRef::parse(":key").is_err());
        assert!(SecretRef::parse("arn:aws:secretsmanager:us-east-1").is_err());
    }

    struct Fake;

    #[async_trait]
    impl ParameterReader for Fake {
        async fn parameter_value(&self, _: &RequestContext, name: &str) -> AwsResult<String> {
            match name {
                "/app/greeting" => Ok("hello-param".into()),
                "/app/key" => Ok("line-one\nline-two".into()),
                "/app/denied" => Err(AwsError::new(403, "AccessDeniedException", "User: u is not authorized to perform: ssm:GetParameters")),
                _ => Err(AwsError::new(400, "ParameterNotFound", "")),
            }
        }
    }

    #[async_trait]
    impl SecretReader for Fake {
        async fn secret_value(&self, _: &RequestContext, id: &str, stage: Option<&str>, _: Option<&str>) -> AwsResult<String> {
            match (id, stage.unwrap_or("AWSCURRENT")) {
                ("db", "AWSCURRENT") => Ok(r#"{"user":"admin","password":"p@ss-word","port":5432}"#.into()),
                ("db", "AWSPREVIOUS") => Ok(r#"{"password":"old-pass"}"#.into()),
                _ => Err(AwsError::new(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")),
            }
        }
    }

    fn hub() -> Hub {
        let hub = Hub::default();
        hub.set_parameters(Arc::new(Fake));
        hub.set_secrets(Arc::new(Fake));
        hub
    }

    fn ctx() -> RequestContext {
        RequestContext::internal("000000000000", "us-east-1", "http://localhost")
    }

    #[tokio::test]
    async fn resolves_and_masks_every_value() {
        let hub = hub();
        let mut env = BuildEnv::default();
        let sources = vec![
            ("GREETING".to_string(), Source::Parameter("/app/greeting".into())),
            ("KEY".to_string(), Source::Parameter("/app/key".into())),
            ("PASSWORD".to_string(), Source::Secret("db:password".into())),
            ("OLD".to_string(), Source::Secret("db:password:AWSPREVIOUS".into())),
            ("PORT".to_string(), Source::Secret("db:port".into())),
            ("WHOLE".to_string(), Source::Secret("db".into())),
        ];
        resolve(&hub, &ctx(), &sources, &mut env).await.unwrap();
        assert_eq!(env.get("GREETING"), Some("hello-param"));
        assert_eq!(env.get("PASSWORD"), Some("p@ss-word"));
        assert_eq!(env.get("OLD"), Some("old-pass"));
        assert_eq!(env.get("PORT"), Some("5432"));
        assert!(env.get("WHOLE").unwrap().contains("admin"));
        for m in ["hello-param", "line-one", "line-two", "line-one\nline-two", "p@ss-word", "old-pass", "5432"] {
            assert!(env.secrets.iter().any(|s| s == m), "{m} is masked");
        }
        assert_eq!(env.warnings, vec!["Decrypting parameter store environment variables"]);
    }

    #[tokio::test]
    async fn failures_carry_codebuilds_phase_context() {
        let hub = hub();
        let mut env = BuildEnv::default();
        let missing = vec![("X".to_string(), Source::Parameter("/nope".into()))];
        assert_eq!(
            resolve(&hub, &ctx(), &missing, &mut env).await.unwrap_err(),
            (PARAMETER_ERROR.to_string(), "parameter does not exist: /nope".to_string())
        );
        let missing = vec![("X".to_string(), Source::Secret("gone:key".into()))];
        assert_eq!(
            resolve(&hub, &ctx(), &missing, &mut env).await.unwrap_err(),
            (
                SECRET_ERROR.to_string(),
                "ResourceNotFoundException: Secrets Manager can't find the specified secret.".to_string()
            )
        );
        let denied = vec![("X".to_string(), Source::Parameter("/app/denied".into()))];
        assert_eq!(
            resolve(&hub, &ctx(), &denied, &mut env).await.unwrap_err().1,
            "AccessDeniedException: User: u is not authorized to perform: ssm:GetParameters"
        );
        let no_key = vec![("X".to_string(), Source::Secret("db:nokey".into()))];
        assert_eq!(resolve(&hub, &ctx(), &no_key, &mut env).await.unwrap_err().0, SECRET_ERROR);
        // A server without Parameter Store says so in the phase context.
        let bare = Hub::default();
        let e = resolve(&bare, &ctx(), &[("X".to_string(), Source::Parameter("/p".into()))], &mut env)
            .await
            .unwrap_err();
        assert!(e.1.contains("not available"), "{e:?}");
    }
}

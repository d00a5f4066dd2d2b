//! codeyard-api: typed AWS operations at the edge.
//!
//! [`generated`] has one module per botocore model (`codeyard_api::logs`, `::iam`, ...), written
//! by `crates/codegen` (never edit it by hand; `cargo run -p codeyard-codegen` rewrites it and a
//! test fails when it is stale). Each module has:
//!
//! * a struct per model structure (member names as in the model, through serde), an enum per
//!   model enum (with an `Unknown(String)` fallback), and `<Op>Input` / `<Op>Output` aliases;
//! * `<Service>Operation` and `OPERATIONS`: every operation with its IAM action(s), resource
//!   ARN templates and condition keys from AWS's Service Authorization Reference;
//! * the `<Service>Api` trait: one method per operation, answering UnknownOperationException
//!   unless the service overrides it, on an impl block marked [`#[codeyard_api::service]`](service);
//! * `<Service>Api::access_requests`: what IAM must allow for a call, by default resolved from
//!   the IAM data and the input ([`access`]); a service overrides it to add what the input does
//!   not say (a resource policy, a resource found by id);
//! * for awsJson / awsQuery models, `service(api)`: the [`codeyard_wire::AwsService`] the
//!   registry takes. The wire validates the input against the model first, so decoding into
//!   the typed input only fails for what the model cannot express.
//!
//! ```ignore
//! #[codeyard_api::service]
//! impl LogsApi for LogsService {
//!     async fn create_log_group(&self, ctx: &RequestContext, input: CreateLogGroupInput) -> AwsResult<CreateLogGroupOutput> { .. }
//! }
//! registry.add_aws(codeyard_api::logs::service(LogsService { .. }));
//! ```

pub mod access;
pub mod generated;

pub use codeyard_api_macros::service;
pub use generated::*;

use codeyard_core::{AwsError, AwsResult};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One operation of a model and how IAM authorizes it.
#[derive(Debug)]
pub struct Operation {
    /// The model's operation name (`CreateLogGroup`).
    pub name: &'static str,
    /// The trait method (`create_log_group`).
    pub method: &'static str,
    /// The actions a caller needs (most operations one; S3's CopyObject two). Empty for the
    /// few operations the Service Authorization Reference does not list.
    pub iam: &'static [IamAction],
}

/// An IAM action as the Service Authorization Reference defines it.
#[derive(Debug)]
pub struct IamAction {
    /// `logs:CreateLogGroup`.
    pub action: &'static str,
    /// The reference's access levels (`Tagging, Write` is two).
    pub access: &'static [Access],
    /// The resource types the action applies to; none means only `"Resource": "*"`.
    pub resources: &'static [IamResource],
    /// Condition keys the action supports (`aws:RequestTag/${TagKey}`).
    pub condition_keys: &'static [&'static str],
}

/// A resource type an action applies to.
#[derive(Debug)]
pub struct IamResource {
    /// The reference's resource type name (`log-group`).
    pub kind: &'static str,
    /// ARN template: `arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}`.
    pub arn: &'static str,
    /// Whether the request always names a resource of this type.
    pub required: bool,
    /// Condition keys of the resource type (`aws:ResourceTag/${TagKey}`).
    pub condition_keys: &'static [&'static str],
}

/// The reference's access level of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    List,
    Read,
    Write,
    Tagging,
    PermissionsManagement,
}

/// The IAM actions of an operation of a model, `None` when the model or operation is unknown.
pub fn iam_actions(model: &str, operation: &str) -> Option<&'static [IamAction]> {
    let ops = generated::operations(model)?;
    let i = ops.binary_search_by(|o| o.name.cmp(operation)).ok()?;
    Some(ops[i].iam)
}

/// The input or output of an operation that has none in the model: `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Unit {}

/// A model `timestamp`: epoch seconds (fractions allowed) on the awsJson wire, which the
/// awsQuery encoder turns into ISO 8601; ISO strings some clients send are accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub codeyard_core::time::Timestamp);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(codeyard_core::time::from_epoch_millis(ms))
    }
    pub fn millis(&self) -> i64 {
        self.0.timestamp_millis()
    }
}

impl From<codeyard_core::time::Timestamp> for Timestamp {
    fn from(t: codeyard_core::time::Timestamp) -> Self {
        Timestamp(t)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.millis() as f64 / 1000.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        codeyard_core::time::parse_json(&v).map(Timestamp).ok_or_else(|| serde::de::Error::custom(format!("{v} is not a timestamp")))
    }
}

/// A model `blob`: base64 on the wire, bytes here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine;
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(s.as_bytes()).map(Blob).map_err(|e| serde::de::Error::custom(format!("not base64: {e}")))
    }
}

/// A model enum: the known values as variants, anything else kept as `Unknown`.
#[macro_export]
macro_rules! string_enum {
    ($name:ident { $($variant:ident = $value:literal,)* }) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
            /// A value the model does not list.
            Unknown(String),
        }

        impl $name {
            /// Every value the model lists.
            pub const VALUES: &'static [&'static str] = &[$($value),*];

            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $value,)*
                    Self::Unknown(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($value => Self::$variant,)*
                    other => Self::Unknown(other.to_string()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok(Self::from(&*s))
            }
        }
    };
}

/// `service(api)` of a generated module: the [`codeyard_wire::AwsService`] that serves a
/// `<Service>Api` implementation through the module's `dispatch`.
#[doc(hidden)]
#[macro_export]
macro_rules! aws_service {
    ($api:ident, $model:literal) => {
        /// The wire's view of an implementation: register it with `registry.add_aws(service(api))`.
        pub fn service<A: $api>(api: A) -> std::sync::Arc<dyn codeyard_wire::AwsService> {
            let implemented = $crate::implemented_operations(OPERATIONS, A::IMPLEMENTED_METHODS);
            std::sync::Arc::new(Adapter { api, implemented })
        }

        struct Adapter<A> {
            api: A,
            implemented: Vec<&'static str>,
        }

        #[async_trait::async_trait]
        impl<A: $api> codeyard_wire::AwsService for Adapter<A> {
            fn model_name(&self) -> &'static str {
                $model
            }
            fn implemented(&self) -> &[&'static str] {
                &self.implemented
            }
            fn validation_error(&self, operation: &str, problems: &[codeyard_wire::shapes::Problem]) -> codeyard_core::AwsError {
                self.api.validation_error(operation, problems)
            }
            async fn access_requests(
                &self,
                ctx: &codeyard_core::RequestContext,
                operation: &str,
                input: &serde_json::Value,
            ) -> codeyard_core::AwsResult<Vec<codeyard_core::AccessRequest>> {
                self.api.access_requests(ctx, operation, input).await
            }
            fn access_denied_code(&self) -> &'static str {
                $crate::access::denied_code($model)
            }
            async fn call(
                &self,
                ctx: &codeyard_core::RequestContext,
                operation: &str,
                input: serde_json::Value,
            ) -> codeyard_core::AwsResult<serde_json::Value> {
                dispatch(&self.api, ctx, operation, input).await
            }
        }
    };
}

/// The default body of every trait method.
pub fn not_implemented<T>(service_id: &str, operation: &str) -> std::future::Ready<AwsResult<T>> {
    std::future::ready(Err(AwsError::unknown_operation(service_id, operation)))
}

/// Decodes a validated input value into the operation's input type.
pub fn decode<T: DeserializeOwned>(input: serde_json::Value) -> AwsResult<T> {
    serde_json::from_value(input).map_err(|e| AwsError::client("SerializationException", e.to_string()))
}

/// Encodes an operation's output as the awsJson value the wire renders. Absent members are
/// left out rather than sent as `null` (the models have no member where null means anything),
/// which spares every optional field its own `skip_serializing_if`.
pub fn encode<T: Serialize>(output: T) -> AwsResult<serde_json::Value> {
    let mut value = serde_json::to_value(output).map_err(|e| AwsError::internal(format!("output does not encode: {e}")))?;
    drop_nulls(&mut value);
    Ok(value)
}

fn drop_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(members) => {
            members.retain(|_, v| !v.is_null());
            members.values_mut().for_each(drop_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// The operation names whose methods an impl block defines (names that are no operation's
/// method, such as `validation_error`, are not operations).
pub fn implemented_operations(operations: &'static [Operation], methods: &[&str]) -> Vec<&'static str> {
    operations.iter().filter(|o| methods.contains(&o.method)).map(|o| o.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_carry_iam_actions() {
        let create = logs::LogsOperation::CreateLogGroup.info();
        assert_eq!(create.name, "CreateLogGroup");
        assert_eq!(create.iam[0].action, "logs:CreateLogGroup");
        assert_eq!(create.iam[0].resources[0].arn, "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}");
        assert_eq!(logs::LogsOperation::from_name("PutLogEvents"), Some(logs::LogsOperation::PutLogEvents));
        let copy: Vec<&str> = iam_actions("s3", "CopyObject").unwrap().iter().map(|a| a.action).collect();
        assert_eq!(copy, ["s3:GetObject", "s3:PutObject"]);
        assert_eq!(iam_actions("iam", "CreateRole").unwrap()[0].access, [Access::Write]);
    }

    #[test]
    fn types_follow_the_model() {
        let input: logs::CreateLogGroupInput =
            decode(serde_json::json!({"logGroupName": "g", "logGroupClass": "INFREQUENT_ACCESS", "tags": {"a": "b"}})).unwrap();
        assert_eq!(input.log_group_name, "g");
        assert_eq!(input.log_group_class, Some(logs::LogGroupClass::InfrequentAccess));
        let out = encode(logs::DescribeLogGroupsOutput { next_token: Some("t".into()), ..Default::default() }).unwrap();
        assert_eq!(out, serde_json::json!({"nextToken": "t"}));
        let role: iam::GetRoleInput = decode(serde_json::json!({"RoleName": "r"})).unwrap();
        assert_eq!(role.role_name, "r");
        assert_eq!(logs::LogGroupClass::from("NEW"), logs::LogGroupClass::Unknown("NEW".into()));
    }

    #[test]
    fn timestamps_are_epoch_seconds() {
        let t = Timestamp::from_millis(1_700_000_000_123);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1700000000.123");
        assert_eq!(serde_json::from_str::<Timestamp>("1700000000.123").unwrap(), t);
    }
}

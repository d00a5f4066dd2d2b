//! codeyard-policy: IAM policy documents and AWS's policy evaluation logic, pure and
//! table-tested. Nothing here does I/O: the caller gathers the policies that apply to a request
//! (identity policies of the user or role, the resource's policy, the permissions boundary, the
//! session policies) and the request context, and gets a [`Decision`] back.
//!
//! * [`document`]: parsing a policy document (`Version`, `Statement` as an object or a list,
//!   `Effect`, `Action`/`NotAction`, `Resource`/`NotResource`, `Principal`/`NotPrincipal`,
//!   `Condition`) into a [`Policy`].
//! * [`pattern`]: the wildcard matching (`*`, `?`) and policy variables (`${aws:username}`,
//!   `${aws:PrincipalTag/team}`, `${*}`, defaults as in `${aws:username, 'none'}`).
//! * [`condition`]: the condition operators (String*, Numeric*, Date*, Bool, Binary, IpAddress,
//!   Arn*, Null, `...IfExists`, `ForAllValues:` / `ForAnyValue:`).
//! * [`principal`]: who is asking ([`Principal`]) and how a `Principal` element names them.
//! * [`evaluate`]: AWS's evaluation logic ([`evaluate()`]): explicit deny first, then allow,
//!   else implicit deny; resource policies, cross-account requests needing both sides,
//!   permissions boundaries and session policies.
//! * [`message`]: AWS's denial message ("User: arn:... is not authorized to perform: s3:PutObject
//!   on resource: arn:aws:s3:::b/k because no identity-based policy allows the s3:PutObject
//!   action").
//! * [`s3_public`]: whether a bucket's ACL or policy makes an anonymous S3 read public.
//!
//! The logic follows the IAM User Guide's "Policy evaluation logic" pages
//! (reference_policies_evaluation-logic*.html) and "IAM JSON policy elements: Condition operators".
//!
//! Wiring a service: build a [`Request`] (principal, action, resource ARNs, condition keys),
//! a [`PolicySet`] (the parsed policies that apply), call [`evaluate()`], and on a denial answer
//! the protocol's AccessDenied error with [`Decision::message`]:
//!
//! ```
//! use codeyard_policy::{Principal, PolicySet, Request, SourcedPolicy, evaluate};
//! let role = SourcedPolicy::parse("role/R inline policy read",
//!     r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}}"#).unwrap();
//! let req = Request::new(Principal::from_arn("arn:aws:sts::000000000000:assumed-role/R/S"),
//!     "s3:PutObject", vec!["arn:aws:s3:::b/k".into()]).with("aws:RequestedRegion", "eu-west-1");
//! let decision = evaluate(&req, &PolicySet { identity: vec![role], ..Default::default() });
//! assert_eq!(decision.message(&req).unwrap(),
//!     "User: arn:aws:sts::000000000000:assumed-role/R/S is not authorized to perform: s3:PutObject \
//!      on resource: arn:aws:s3:::b/k because no identity-based policy allows the s3:PutObject action");
//! ```
//!
//! Parse documents once and keep the `Arc<SourcedPolicy>` (parsing costs several times an
//! evaluation: `cargo run --release -p codeyard-policy --example evaluate_bench`).

pub mod condition;
pub mod context;
pub mod document;
pub mod evaluate;
pub mod message;
pub mod pattern;
pub mod principal;
pub mod s3_public;

pub use document::{Effect, ParseError, Policy, Statement};
pub use evaluate::{Decision, PolicyKind, PolicySet, Request, SourcedPolicy, evaluate};
pub use principal::{Principal, PrincipalKind};

//! Whether an S3 read without any credentials is public: the bucket's policy allows the
//! anonymous principal (`"Principal": "*"`), or an ACL grants `AllUsers` READ (the canned ACLs
//! `public-read` and `public-read-write`, or an explicit grant to the `AllUsers` group).
//! An explicit Deny in the bucket policy wins over an ACL, as on AWS.

use crate::evaluate::{Decision, PolicySet, Request, SourcedPolicy, evaluate};
use crate::principal::Principal;

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

/// What S3 knows about the target of an anonymous read.
#[derive(Default, Debug)]
pub struct PublicReadInputs<'a> {
    /// The bucket policy text.
    pub bucket_policy: Option<&'a str>,
    /// The bucket's canned ACL (`public-read`).
    pub bucket_canned_acl: Option<&'a str>,
    /// The bucket's explicit ACL as stored (any text naming the AllUsers group with READ or
    /// FULL_CONTROL grants it).
    pub bucket_acl_grants: Option<&'a str>,
    /// The object's canned ACL (object reads only).
    pub object_canned_acl: Option<&'a str>,
}

fn canned_is_public(acl: Option<&str>) -> bool {
    matches!(acl, Some("public-read" | "public-read-write"))
}

fn grants_all_users_read(grants: Option<&str>) -> bool {
    let Some(g) = grants else { return false };
    // Stored as the XML of an AccessControlPolicy: each <Grant> holds a grantee and a permission.
    g.split("<Grant>").skip(1).any(|grant| grant.contains(ALL_USERS) && (grant.contains(">READ<") || grant.contains(">FULL_CONTROL<")))
}

/// Whether the anonymous `action` (`s3:GetObject` for GET/HEAD of an object, `s3:ListBucket`
/// for a listing) on `resource` (`arn:aws:s3:::b/k` or `arn:aws:s3:::b`) is public.
/// `context` adds request keys (`aws:SourceIp`, `s3:prefix`) for policy conditions.
pub fn anonymous_read_allowed(action: &str, resource: &str, inputs: &PublicReadInputs, context: &[(&str, &str)]) -> bool {
    let mut req = Request::new(Principal::anonymous(), action, vec![resource.to_string()]);
    for (k, v) in context {
        req = req.with(k, *v);
    }
    let policy = inputs.bucket_policy.and_then(|p| SourcedPolicy::parse("bucket policy", p).ok());
    let decision = evaluate(&req, &PolicySet { resource: policy, ..Default::default() });
    match decision {
        Decision::Allow => true,
        Decision::ExplicitDeny { .. } => false,
        Decision::ImplicitDeny { .. } => {
            let object_read = action == "s3:GetObject";
            if object_read {
                canned_is_public(inputs.object_canned_acl)
            } else {
                canned_is_public(inputs.bucket_canned_acl) || grants_all_users_read(inputs.bucket_acl_grants)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC_OBJECTS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*"}]}"#;

    #[test]
    fn table() {
        let deny_ip = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
        let grants = "<C><AccessControlList><Grant><Grantee xsi:type=\"Group\"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList></C>";
        let write_grant = "<C><AccessControlList><Grant><Grantee><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>WRITE</Permission></Grant></AccessControlList></C>";
        let rows: Vec<(&str, &str, &str, PublicReadInputs, bool)> = vec![
            ("private by default", "s3:GetObject", "arn:aws:s3:::site/a", PublicReadInputs::default(), false),
            ("policy makes objects public", "s3:GetObject", "arn:aws:s3:::site/a", PublicReadInputs { bucket_policy: Some(PUBLIC_OBJECTS), ..Default::default() }, true),
            ("policy does not make listing public", "s3:ListBucket", "arn:aws:s3:::site", PublicReadInputs { bucket_policy: Some(PUBLIC_OBJECTS), ..Default::default() }, false),
            ("public-read object ACL", "s3:GetObject", "arn:aws:s3:::b/a", PublicReadInputs { object_canned_acl: Some("public-read"), ..Default::default() }, true),
            ("private object ACL", "s3:GetObject", "arn:aws:s3:::b/a", PublicReadInputs { object_canned_acl: Some("private"), bucket_canned_acl: Some("public-read"), ..Default::default() }, false),
            ("public-read bucket ACL lists", "s3:ListBucket", "arn:aws:s3:::b", PublicReadInputs { bucket_canned_acl: Some("public-read"), ..Default::default() }, true),
            ("AllUsers READ grant lists", "s3:ListBucket", "arn:aws:s3:::b", PublicReadInputs { bucket_acl_grants: Some(grants), ..Default::default() }, true),
            ("AllUsers WRITE grant does not list", "s3:ListBucket", "arn:aws:s3:::b", PublicReadInputs { bucket_acl_grants: Some(write_grant), ..Default::default() }, false),
            ("policy deny beats ACL", "s3:GetObject", "arn:aws:s3:::b/a", PublicReadInputs { bucket_policy: Some(deny_ip), object_canned_acl: Some("public-read"), ..Default::default() }, false),
            ("unparseable policy grants nothing", "s3:GetObject", "arn:aws:s3:::b/a", PublicReadInputs { bucket_policy: Some("{"), ..Default::default() }, false),
        ];
        for (name, action, resource, inputs, want) in rows {
            assert_eq!(anonymous_read_allowed(action, resource, &inputs, &[("aws:SourceIp", "127.0.0.1")]), want, "{name}");
        }
    }
}

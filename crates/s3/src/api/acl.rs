//! ACLs of buckets and objects. Canned ACLs and access control policies are kept and
//! returned; they are not enforced (codeyard has no anonymous access).

use super::*;

pub(super) async fn put_bucket_acl(api: &Api, req: S3Request<PutBucketAclInput>) -> R<PutBucketAclOutput> {
    let i = req.input;
    if let Some(policy) = &i.access_control_policy {
        api.store_config(&i.bucket, SubResource::AclPolicy, policy)
            .await?;
        api.remove_config(&i.bucket, SubResource::CannedAcl).await?;
    } else {
        let acl = i
            .acl
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| "private".into());
        api.store_text(&i.bucket, SubResource::CannedAcl, &acl)
            .await?;
        api.remove_config(&i.bucket, SubResource::AclPolicy).await?;
    }
    ok(PutBucketAclOutput {})
}

pub(super) async fn get_bucket_acl(api: &Api, req: S3Request<GetBucketAclInput>) -> R<GetBucketAclOutput> {
    let b = api.engine.bucket(&req.input.bucket).await?;
    if let Some(p) = api
        .config::<AccessControlPolicy>(&req.input.bucket, SubResource::AclPolicy)
        .await?
    {
        return ok(GetBucketAclOutput {
            grants: p.grants,
            owner: p.owner.or_else(|| Some(owner(&b.account))),
        });
    }
    let acl = b.configs.get(SubResource::CannedAcl.key());
    ok(GetBucketAclOutput {
        grants: Some(grants(&b.account, acl.map(String::as_str))),
        owner: Some(owner(&b.account)),
    })
}

pub(super) async fn get_object_acl(api: &Api, req: S3Request<GetObjectAclInput>) -> R<GetObjectAclOutput> {
    let i = req.input;
    let b = api.engine.bucket(&i.bucket).await?;
    let o = api
        .engine
        .get_version(&i.bucket, &i.key, i.version_id.as_deref())
        .await?;
    ok(GetObjectAclOutput {
        grants: Some(grants(&b.account, o.headers.acl.as_deref())),
        owner: Some(owner(&b.account)),
        request_charged: None,
    })
}

pub(super) async fn put_object_acl(api: &Api, req: S3Request<PutObjectAclInput>) -> R<PutObjectAclOutput> {
    let i = req.input;
    // The grant itself is not enforced (codeyard has no anonymous access); the object
    // must exist, as in AWS.
    api.engine
        .get_version(&i.bucket, &i.key, i.version_id.as_deref())
        .await?;
    ok(PutObjectAclOutput {
        request_charged: None,
    })
}

/// The grants a canned ACL stands for: the owner's FULL_CONTROL plus the groups it names.
fn grants(account: &str, acl: Option<&str>) -> Grants {
    let me = owner(account);
    let mut grants = vec![Grant {
        grantee: Some(Grantee {
            display_name: me.display_name.clone(),
            id: me.id.clone(),
            type_: Type::from_static(Type::CANONICAL_USER),
            email_address: None,
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    }];
    let group = |uri: &str, perm: &'static str| Grant {
        grantee: Some(Grantee {
            display_name: None,
            id: None,
            type_: Type::from_static(Type::GROUP),
            email_address: None,
            uri: Some(uri.into()),
        }),
        permission: Some(Permission::from_static(perm)),
    };
    const ALL: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
    const AUTH: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
    match acl {
        Some("public-read") => grants.push(group(ALL, Permission::READ)),
        Some("public-read-write") => {
            grants.push(group(ALL, Permission::READ));
            grants.push(group(ALL, Permission::WRITE));
        }
        Some("authenticated-read") => grants.push(group(AUTH, Permission::READ)),
        _ => {}
    }
    grants
}

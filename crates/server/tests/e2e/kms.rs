//! KMS: keys, aliases, key states, real AES-256-GCM encryption with encryption contexts, key
//! policies that really grant and deny, tags, rotation; the aws CLI; Terraform's
//! `aws_kms_key` and `aws_kms_alias` (apply, empty plan, update, destroy).

use crate::common::*;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyState, Tag};

/// The bytes of the CLI's base64 text output (coreutils `base64 -d`).
fn base64_decode(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("base64").arg("-d").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().expect("base64 runs");
    child.stdin.take().unwrap().write_all(text.trim().trim_matches('"').as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "base64 -d");
    out.stdout
}

async fn kms_client(t: &TestServer) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&t.sdk_config().await)
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_encrypt_and_decrypt_with_their_context() {
    let (_t, kms) = TestServer::with(aws_sdk_kms::Client::new).await;
    let key = kms.create_key().description("app key").tags(Tag::builder().tag_key("team").tag_value("a").build().unwrap()).send().await.unwrap();
    let meta = key.key_metadata().unwrap();
    let id = meta.key_id().to_string();
    let arn = meta.arn().unwrap().to_string();
    assert_eq!(arn, format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}"));
    assert_eq!(meta.key_state(), Some(&KeyState::Enabled));
    assert_eq!(meta.key_manager().map(|m| m.as_str()), Some("CUSTOMER"));
    assert_eq!(meta.key_spec().map(|m| m.as_str()), Some("SYMMETRIC_DEFAULT"));
    assert_eq!(meta.key_usage().map(|m| m.as_str()), Some("ENCRYPT_DECRYPT"));
    assert!(meta.creation_date().is_some());

    kms.create_alias().alias_name("alias/app").target_key_id(&id).send().await.unwrap();
    let alias_arn = format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/app");
    for name in [id.as_str(), arn.as_str(), "alias/app", alias_arn.as_str()] {
        let d = kms.describe_key().key_id(name).send().await.unwrap();
        assert_eq!(d.key_metadata().unwrap().key_id(), id, "DescribeKey by {name}");
    }
    let err = kms.create_alias().alias_name("alias/app").target_key_id(&id).send().await.unwrap_err();
    assert_eq!(error_code(&err), "AlreadyExistsException");
    let err = kms.describe_key().key_id("alias/nope").send().await.unwrap_err();
    assert_eq!(error_code(&err), "NotFoundException");

    // Encrypt by alias, decrypt without a key id; the context is bound.
    let enc = kms.encrypt().key_id("alias/app").plaintext(Blob::new("s3cr3t-plaintext")).encryption_context("app", "web").send().await.unwrap();
    assert_eq!(enc.key_id(), Some(arn.as_str()));
    let blob = enc.ciphertext_blob().unwrap().clone();
    assert!(!blob.as_ref().windows(6).any(|w| w == b"s3cr3t"));
    let dec = kms.decrypt().ciphertext_blob(blob.clone()).encryption_context("app", "web").send().await.unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"s3cr3t-plaintext");
    assert_eq!(dec.key_id(), Some(arn.as_str()));
    let err = kms.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidCiphertextException");
    let err = kms.decrypt().ciphertext_blob(blob.clone()).encryption_context("app", "other").send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidCiphertextException");
    let mut tampered = blob.clone().into_inner();
    *tampered.last_mut().unwrap() ^= 1;
    let err = kms.decrypt().ciphertext_blob(Blob::new(tampered)).encryption_context("app", "web").send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidCiphertextException");
    let err = kms.decrypt().ciphertext_blob(Blob::new("not a ciphertext")).send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidCiphertextException");

    // Data keys.
    let dk = kms.generate_data_key().key_id(&id).key_spec(aws_sdk_kms::types::DataKeySpec::Aes256).send().await.unwrap();
    assert_eq!(dk.plaintext().unwrap().as_ref().len(), 32);
    let back = kms.decrypt().ciphertext_blob(dk.ciphertext_blob().unwrap().clone()).send().await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), dk.plaintext().unwrap().as_ref());
    let dk = kms.generate_data_key_without_plaintext().key_id(&id).number_of_bytes(16).send().await.unwrap();
    let back = kms.decrypt().ciphertext_blob(dk.ciphertext_blob().unwrap().clone()).send().await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref().len(), 16);
    let err = kms.generate_data_key().key_id(&id).send().await.unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
    let r = kms.generate_random().number_of_bytes(24).send().await.unwrap();
    assert_eq!(r.plaintext().unwrap().as_ref().len(), 24);

    // Disabled keys refuse cryptography; enabled again they work.
    kms.disable_key().key_id(&id).send().await.unwrap();
    let err = kms.encrypt().key_id(&id).plaintext(Blob::new("x")).send().await.unwrap_err();
    assert_eq!(error_code(&err), "DisabledException");
    let err = kms.decrypt().ciphertext_blob(blob.clone()).encryption_context("app", "web").send().await.unwrap_err();
    assert_eq!(error_code(&err), "DisabledException");
    assert_eq!(kms.describe_key().key_id(&id).send().await.unwrap().key_metadata().unwrap().key_state(), Some(&KeyState::Disabled));
    kms.enable_key().key_id(&id).send().await.unwrap();
    kms.decrypt().ciphertext_blob(blob.clone()).encryption_context("app", "web").send().await.unwrap();

    // Tags, rotation, description, policies.
    kms.tag_resource().key_id(&id).tags(Tag::builder().tag_key("env").tag_value("prod").build().unwrap()).send().await.unwrap();
    kms.untag_resource().key_id(&id).tag_keys("team").send().await.unwrap();
    let tags = kms.list_resource_tags().key_id(&id).send().await.unwrap();
    let tags: Vec<(String, String)> = tags.tags().iter().map(|t| (t.tag_key().to_string(), t.tag_value().to_string())).collect();
    assert_eq!(tags, vec![("env".to_string(), "prod".to_string())]);
    assert_eq!(kms.get_key_rotation_status().key_id(&id).send().await.unwrap().key_rotation_enabled(), false);
    kms.enable_key_rotation().key_id(&id).send().await.unwrap();
    let rot = kms.get_key_rotation_status().key_id(&id).send().await.unwrap();
    assert!(rot.key_rotation_enabled());
    assert_eq!(rot.rotation_period_in_days(), Some(365));
    kms.disable_key_rotation().key_id(&id).send().await.unwrap();
    kms.update_key_description().key_id(&id).description("renamed").send().await.unwrap();
    let policy = kms.get_key_policy().key_id(&id).policy_name("default").send().await.unwrap().policy().unwrap().to_string();
    let p: serde_json::Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(p["Statement"][0]["Principal"]["AWS"], format!("arn:aws:iam::{ACCOUNT}:root"));
    assert_eq!(p["Statement"][0]["Action"], "kms:*");
    assert_eq!(kms.list_key_policies().key_id(&id).send().await.unwrap().policy_names(), ["default"]);
    let err = kms.put_key_policy().key_id(&id).policy_name("default").policy("not json").send().await.unwrap_err();
    assert_eq!(error_code(&err), "MalformedPolicyDocumentException");

    // Lists and aliases.
    let second = kms.create_key().send().await.unwrap().key_metadata().unwrap().key_id().to_string();
    let keys = kms.list_keys().send().await.unwrap();
    assert_eq!(keys.keys().len(), 2);
    let page = kms.list_keys().limit(1).send().await.unwrap();
    assert!(page.truncated());
    let rest = kms.list_keys().marker(page.next_marker().unwrap()).send().await.unwrap();
    assert_eq!(rest.keys().len(), 1);
    kms.update_alias().alias_name("alias/app").target_key_id(&second).send().await.unwrap();
    let aliases = kms.list_aliases().key_id(&second).send().await.unwrap();
    assert_eq!(aliases.aliases().len(), 1);
    assert_eq!(aliases.aliases()[0].alias_arn(), Some(alias_arn.as_str()));
    let err = kms.create_alias().alias_name("alias/aws/mine").target_key_id(&id).send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidAliasNameException");
    kms.delete_alias().alias_name("alias/app").send().await.unwrap();
    let err = kms.delete_alias().alias_name("alias/app").send().await.unwrap_err();
    assert_eq!(error_code(&err), "NotFoundException");

    // Deletion is scheduled (7-30 days) and can be cancelled (the key comes back Disabled).
    let err = kms.schedule_key_deletion().key_id(&id).pending_window_in_days(5).send().await.unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
    let del = kms.schedule_key_deletion().key_id(&id).pending_window_in_days(7).send().await.unwrap();
    assert_eq!(del.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(del.pending_window_in_days(), Some(7));
    let d = kms.describe_key().key_id(&id).send().await.unwrap();
    assert_eq!(d.key_metadata().unwrap().key_state(), Some(&KeyState::PendingDeletion));
    assert!(d.key_metadata().unwrap().deletion_date().is_some());
    let err = kms.encrypt().key_id(&id).plaintext(Blob::new("x")).send().await.unwrap_err();
    assert_eq!(error_code(&err), "KMSInvalidStateException");
    let err = kms.schedule_key_deletion().key_id(&id).send().await.unwrap_err();
    assert_eq!(error_code(&err), "KMSInvalidStateException");
    let err = kms.enable_key().key_id(&id).send().await.unwrap_err();
    assert_eq!(error_code(&err), "KMSInvalidStateException");
    kms.cancel_key_deletion().key_id(&id).send().await.unwrap();
    assert_eq!(kms.describe_key().key_id(&id).send().await.unwrap().key_metadata().unwrap().key_state(), Some(&KeyState::Disabled));
    let err = kms.cancel_key_deletion().key_id(&id).send().await.unwrap_err();
    assert_eq!(error_code(&err), "KMSInvalidStateException");

    // Asymmetric specs are refused, not faked.
    let err = kms.create_key().key_spec(aws_sdk_kms::types::KeySpec::Rsa2048).key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify).send().await.unwrap_err();
    assert_eq!(error_code(&err), "UnsupportedOperationException");
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_managed_aliases_appear_on_first_use() {
    let (_t, kms) = TestServer::with(aws_sdk_kms::Client::new).await;
    assert!(kms.list_aliases().send().await.unwrap().aliases().is_empty());
    let d = kms.describe_key().key_id("alias/aws/secretsmanager").send().await.unwrap();
    let meta = d.key_metadata().unwrap();
    assert_eq!(meta.key_manager().map(|m| m.as_str()), Some("AWS"));
    let again = kms.describe_key().key_id("alias/aws/secretsmanager").send().await.unwrap();
    assert_eq!(again.key_metadata().unwrap().key_id(), meta.key_id());
    let policy = kms.get_key_policy().key_id(meta.key_id()).send().await.unwrap().policy().unwrap().to_string();
    let p: serde_json::Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(p["Statement"][0]["Condition"]["StringEquals"]["kms:ViaService"], format!("secretsmanager.{REGION}.amazonaws.com"));
    assert_eq!(p["Statement"][0]["Condition"]["StringEquals"]["kms:CallerAccount"], ACCOUNT);
    // Customers cannot change AWS managed keys (their policy allows the account only to read
    // them, and a key policy binds root too) or take their alias names.
    let err = kms.schedule_key_deletion().key_id(meta.key_id()).send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDeniedException");
    let own = kms.create_key().send().await.unwrap().key_metadata().unwrap().key_id().to_string();
    let err = kms.create_alias().alias_name("alias/aws/ssm").target_key_id(&own).send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidAliasNameException");
    // Their policy allows cryptography only through the service (kms:ViaService).
    kms.describe_key().key_id("alias/aws/ssm").send().await.unwrap();
    let err = kms.encrypt().key_id("alias/aws/ssm").plaintext(Blob::new("x")).send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDeniedException");
    let names: Vec<String> = kms.list_aliases().send().await.unwrap().aliases().iter().map(|a| a.alias_name().unwrap().to_string()).collect();
    assert_eq!(names, ["alias/aws/secretsmanager", "alias/aws/ssm"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn key_policies_grant_and_deny() {
    let (t, kms) = TestServer::with(aws_sdk_kms::Client::new).await;
    let user = RoleSession::start(&t, "kms-user", &allow_policy(&[(&["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], &["*"])])).await;
    let as_user = aws_sdk_kms::Client::new(&user.conf);
    let key = kms.create_key().send().await.unwrap().key_metadata().unwrap().key_id().to_string();
    // The default policy delegates to IAM: the role's own policy allows.
    let blob = as_user.encrypt().key_id(&key).plaintext(Blob::new("hello")).send().await.unwrap().ciphertext_blob().unwrap().clone();
    as_user.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap();
    // A Deny in the key policy wins over the role's Allow.
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "No decrypt", "Effect": "Deny", "Principal": {"AWS": user.role_arn.clone()}, "Action": "kms:Decrypt", "Resource": "*"}]});
    kms.put_key_policy().key_id(&key).policy_name("default").policy(policy.to_string()).send().await.unwrap();
    let err = as_user.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDeniedException");
    let msg = err.into_service_error().meta().message().unwrap_or_default().to_string();
    assert!(msg.contains("kms:Decrypt"), "{msg}");
    as_user.encrypt().key_id(&key).plaintext(Blob::new("still allowed")).send().await.unwrap();
    // Root still may.
    kms.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap();
    // A role without kms permissions is refused by IAM.
    let nobody = RoleSession::start(&t, "kms-nobody", "").await;
    let err = aws_sdk_kms::Client::new(&nobody.conf).encrypt().key_id(&key).plaintext(Blob::new("x")).send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDeniedException");

    // A policy without the account statement: the lockout safety check refuses it ...
    let encrypt_only = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": user.role_arn.clone()}, "Action": "kms:Encrypt", "Resource": "*"}]});
    let err = kms.put_key_policy().key_id(&key).policy(encrypt_only.to_string()).send().await.unwrap_err();
    assert_eq!(error_code(&err), "MalformedPolicyDocumentException");
    assert!(kms.get_key_policy().key_id(&key).send().await.unwrap().policy().unwrap().contains("No decrypt"));
    // ... unless bypassed; then IAM policies no longer count, the role's or root's.
    kms.put_key_policy().key_id(&key).policy(encrypt_only.to_string()).bypass_policy_lockout_safety_check(true).send().await.unwrap();
    as_user.encrypt().key_id(&key).plaintext(Blob::new("named by the key policy")).send().await.unwrap();
    let err = as_user.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDeniedException");
    let err = kms.put_key_policy().key_id(&key).policy(policy.to_string()).send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDeniedException", "root is locked out too");
    // CreateKey runs the same check.
    let err = kms.create_key().policy(encrypt_only.to_string()).send().await.unwrap_err();
    assert_eq!(error_code(&err), "MalformedPolicyDocumentException");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_survive_a_restart_and_the_cli_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let kms = kms_client(&t).await;
    let key = kms.create_key().description("durable").send().await.unwrap().key_metadata().unwrap().key_id().to_string();
    let blob = kms.encrypt().key_id(&key).plaintext(Blob::new("kept across restarts")).send().await.unwrap().ciphertext_blob().unwrap().clone();
    t.stop().await;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("kms/master.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let t = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let kms = kms_client(&t).await;
    let dec = kms.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"kept across restarts");

    // The aws CLI: describe, encrypt and decrypt (blobs as files).
    let v = aws_cli_json(&t.endpoint, &["kms", "describe-key", "--key-id", &key]);
    assert_eq!(v["KeyMetadata"]["Description"], "durable");
    assert!(v["KeyMetadata"]["CreationDate"].is_string() || v["KeyMetadata"]["CreationDate"].is_number());
    let work = tempfile::tempdir().unwrap();
    let plain = work.path().join("plain.txt");
    std::fs::write(&plain, "from the cli").unwrap();
    let (ok, out, err) = aws_cli(&t.endpoint, &["kms", "encrypt", "--key-id", &key, "--plaintext", &format!("fileb://{}", plain.display()), "--query", "CiphertextBlob"]);
    assert!(ok, "{err}");
    let ct = base64_decode(&out);
    let ct_file = work.path().join("ct.bin");
    std::fs::write(&ct_file, &ct).unwrap();
    let (ok, out, err) = aws_cli(&t.endpoint, &["kms", "decrypt", "--ciphertext-blob", &format!("fileb://{}", ct_file.display()), "--query", "Plaintext"]);
    assert!(ok, "{err}");
    let p = base64_decode(&out);
    assert_eq!(p, b"from the cli");
    let err = aws_cli_error(&t.endpoint, &["kms", "describe-key", "--key-id", "alias/missing"]);
    assert!(err.contains("NotFoundException"), "{err}");
    t.assert_no_model_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_kms_key_and_alias() {
    let (t, ws, kms) = terraform_applied("kms", aws_sdk_kms::Client::new).await;
    let d = kms.describe_key().key_id("alias/tf-app").send().await.unwrap();
    let id = d.key_metadata().unwrap().key_id().to_string();
    assert_eq!(d.key_metadata().unwrap().description(), Some("codeyard app key"));
    assert!(kms.get_key_rotation_status().key_id(&id).send().await.unwrap().key_rotation_enabled());
    terraform_apply_clean(ws.path(), &t.endpoint, &["-var=description=changed"]);
    assert_eq!(kms.describe_key().key_id(&id).send().await.unwrap().key_metadata().unwrap().description(), Some("changed"));
    terraform_destroy(ws.path(), &t.endpoint, &["-var=description=changed"]);
    let d = kms.describe_key().key_id(&id).send().await.unwrap();
    assert_eq!(d.key_metadata().unwrap().key_state(), Some(&KeyState::PendingDeletion));
    assert!(kms.list_aliases().send().await.unwrap().aliases().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn re_encrypt_moves_a_ciphertext_to_another_key_and_context() {
    let (t, kms) = TestServer::with(aws_sdk_kms::Client::new).await;
    let arn_of = |m: Option<&aws_sdk_kms::types::KeyMetadata>| m.unwrap().arn().unwrap().to_string();
    let from = arn_of(kms.create_key().send().await.unwrap().key_metadata());
    let to = arn_of(kms.create_key().send().await.unwrap().key_metadata());
    let blob = kms.encrypt().key_id(&from).plaintext(Blob::new("moved")).encryption_context("app", "a").send().await.unwrap().ciphertext_blob().unwrap().clone();

    let re = kms.re_encrypt().ciphertext_blob(blob.clone()).source_encryption_context("app", "a").destination_key_id(&to).destination_encryption_context("app", "b").send().await.unwrap();
    assert_eq!(re.source_key_id(), Some(from.as_str()));
    assert_eq!(re.key_id(), Some(to.as_str()));
    assert_eq!(re.source_encryption_algorithm(), Some(&aws_sdk_kms::types::EncryptionAlgorithmSpec::SymmetricDefault));
    let moved = re.ciphertext_blob().unwrap().clone();
    let dec = kms.decrypt().ciphertext_blob(moved.clone()).encryption_context("app", "b").send().await.unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"moved");
    assert_eq!(dec.key_id(), Some(to.as_str()));
    let err = kms.decrypt().ciphertext_blob(moved).encryption_context("app", "a").send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidCiphertextException");

    // The source context must match, SourceKeyId must name the ciphertext's key, the
    // destination must be usable.
    let err = kms.re_encrypt().ciphertext_blob(blob.clone()).destination_key_id(&to).send().await.unwrap_err();
    assert_eq!(error_code(&err), "InvalidCiphertextException");
    let err = kms.re_encrypt().ciphertext_blob(blob.clone()).source_encryption_context("app", "a").source_key_id(&to).destination_key_id(&to).send().await.unwrap_err();
    assert_eq!(error_code(&err), "IncorrectKeyException");
    kms.disable_key().key_id(&to).send().await.unwrap();
    let err = kms.re_encrypt().ciphertext_blob(blob.clone()).source_encryption_context("app", "a").destination_key_id(&to).send().await.unwrap_err();
    assert_eq!(error_code(&err), "DisabledException");
    kms.enable_key().key_id(&to).send().await.unwrap();

    // IAM asks kms:ReEncryptFrom on the source key and kms:ReEncryptTo on the destination.
    let from_only = RoleSession::start(&t, "kms-reencrypt-from", &allow_policy(&[(&["kms:ReEncryptFrom"], &["*"])])).await;
    let err = aws_sdk_kms::Client::new(&from_only.conf).re_encrypt().ciphertext_blob(blob.clone()).source_encryption_context("app", "a").destination_key_id(&to).send().await.unwrap_err();
    assert_eq!(error_code(&err), "AccessDeniedException");
    let msg = err.into_service_error().meta().message().unwrap_or_default().to_string();
    assert!(msg.contains("kms:ReEncryptTo") && msg.contains(&to), "{msg}");
    let both = RoleSession::start(&t, "kms-reencrypt", &allow_policy(&[(&["kms:ReEncryptFrom"], &[&from]), (&["kms:ReEncryptTo"], &[&to])])).await;
    let re = aws_sdk_kms::Client::new(&both.conf).re_encrypt().ciphertext_blob(blob).source_encryption_context("app", "a").destination_key_id(&to).send().await.unwrap();
    assert_eq!(re.key_id(), Some(to.as_str()));
    t.assert_no_model_violations();
}

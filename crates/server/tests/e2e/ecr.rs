//! ECR and its OCI registry, end to end: the API with aws-sdk-rust and the aws CLI, pushes and
//! pulls with skopeo, buildah and podman, the `docker` builds get (podman behind a wrapper)
//! running the acceptance image buildspec's commands, and Terraform.

use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::{ImageIdentifier, ImageScanningConfiguration, ImageTagMutability, Tag};
use crate::common::*;
use std::path::Path;
use std::process::Command;

/// `host:port` of the test server's registry.
pub(crate) fn registry(t: &TestServer) -> String {
    t.endpoint.trim_start_matches("http://").to_string()
}

/// Runs a bash script with container tools confined to `work` (their own vfs storage), the
/// test server's registry marked insecure, and the aws CLI pointed at the server.
pub(crate) fn sh(t: &TestServer, work: &Path, script: &str) -> String {
    let storage = work.join("storage.conf");
    if !storage.exists() {
        std::fs::write(
            &storage,
            format!("[storage]\ndriver = \"vfs\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/root\"\n", work.join("containers").display()),
        )
        .unwrap();
        std::fs::write(work.join("registries.conf"), format!("[[registry]]\nlocation = \"{}\"\ninsecure = true\n", registry(t))).unwrap();
        std::fs::write(work.join("auth.json"), "{\"auths\":{}}").unwrap();
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(work)
        .env("CONTAINERS_STORAGE_CONF", &storage)
        .env("CONTAINERS_REGISTRIES_CONF", work.join("registries.conf"))
        .env("REGISTRY_AUTH_FILE", work.join("auth.json"))
        .env("BUILDAH_ISOLATION", "chroot")
        .env("REG", registry(t))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_ENDPOINT_URL", &t.endpoint)
        .env("AWS_PAGER", "")
        .output()
        .expect("bash runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "script failed:\n{script}\n--- output:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A busybox root filesystem and the acceptance base image's Dockerfile in `dir`, as run.sh
/// prepares them.
const BASE_IMAGE_SETUP: &str = r#"
mkdir -p base/rootfs/bin
cp "$(command -v busybox)" base/rootfs/bin/busybox
for c in sh mkdir ls cat cp echo; do ln -sf busybox base/rootfs/bin/$c; done
cp /work/shared/acceptance/devops-demo/base-image/Dockerfile base/ 2>/dev/null || printf 'FROM scratch\nCOPY rootfs/ /\nCMD ["/bin/sh"]\n' > base/Dockerfile
"#;

async fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

fn err_code<E: aws_sdk_ecr::error::ProvideErrorMetadata>(e: &aws_sdk_ecr::error::SdkError<E>) -> String {
    aws_sdk_ecr::error::ProvideErrorMetadata::code(e.as_service_error().expect("a service error")).unwrap_or_default().to_string()
}

/// Uploads bytes as a layer through the ECR layer API; returns the digest.
pub(crate) async fn upload_layer(ecr: &aws_sdk_ecr::Client, repo: &str, bytes: &[u8]) -> String {
    let up = ecr.initiate_layer_upload().repository_name(repo).send().await.unwrap();
    let id = up.upload_id().unwrap().to_string();
    let mid = bytes.len() / 2;
    let p1 = ecr
        .upload_layer_part()
        .repository_name(repo)
        .upload_id(&id)
        .part_first_byte(0)
        .part_last_byte(mid as i64 - 1)
        .layer_part_blob(Blob::new(&bytes[..mid]))
        .send()
        .await
        .unwrap();
    assert_eq!(p1.last_byte_received(), Some(mid as i64 - 1));
    // A part that does not follow on is refused.
    let gap = ecr
        .upload_layer_part()
        .repository_name(repo)
        .upload_id(&id)
        .part_first_byte(mid as i64 + 5)
        .part_last_byte(mid as i64 + 5)
        .layer_part_blob(Blob::new(&b"x"[..]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&gap), "InvalidLayerPartException");
    ecr.upload_layer_part()
        .repository_name(repo)
        .upload_id(&id)
        .part_first_byte(mid as i64)
        .part_last_byte(bytes.len() as i64 - 1)
        .layer_part_blob(Blob::new(&bytes[mid..]))
        .send()
        .await
        .unwrap();
    let digest = format!("sha256:{}", sha256_of(bytes));
    let done = ecr.complete_layer_upload().repository_name(repo).upload_id(&id).layer_digests(&digest).send().await.unwrap();
    assert_eq!(done.layer_digest(), Some(digest.as_str()));
    digest
}

pub(crate) fn base64_decode(text: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("base64").arg("-d").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

fn sha256_of(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

pub(crate) fn image_manifest(config: &str, config_size: usize, layer: &str, layer_size: usize) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{config_size},"digest":"{config}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{layer_size},"digest":"{layer}"}}]}}"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn api_repositories_images_policies_and_errors() {
    let (t, ecr) = TestServer::with(aws_sdk_ecr::Client::new).await;

    // Repositories.
    let scan = ImageScanningConfiguration::builder().scan_on_push(true).build();
    let immutable = ecr.create_repository().repository_name("team/app").image_tag_mutability(ImageTagMutability::Immutable);
    let created = immutable.image_scanning_configuration(scan).tags(Tag::builder().key("team").value("platform").build().unwrap()).send().await.unwrap();
    let repo = created.repository().unwrap();
    assert_eq!(repo.repository_uri(), Some(format!("{}/team/app", registry(&t)).as_str()));
    assert_eq!(repo.repository_arn(), Some("arn:aws:ecr:eu-west-1:000000000000:repository/team/app"));
    assert!(repo.created_at().is_some());
    let again = ecr.create_repository().repository_name("team/app").send().await.unwrap_err();
    assert_eq!(err_code(&again), "RepositoryAlreadyExistsException");
    let missing = ecr.describe_repositories().repository_names("nope").send().await.unwrap_err();
    assert_eq!(err_code(&missing), "RepositoryNotFoundException");
    let bad = ecr.create_repository().repository_name("Upper Case").send().await.unwrap_err();
    assert_eq!(err_code(&bad), "InvalidParameterException");

    // Layers through the layer API, then PutImage.
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = vec![7u8; 3000];
    let config_digest = upload_layer(&ecr, "team/app", config).await;
    let layer_digest = upload_layer(&ecr, "team/app", &layer).await;
    let avail = ecr
        .batch_check_layer_availability()
        .repository_name("team/app")
        .layer_digests(&layer_digest)
        .layer_digests(format!("sha256:{}", "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(avail.layers().len(), 1);
    assert_eq!(avail.layers()[0].layer_size(), Some(3000));
    assert_eq!(avail.failures()[0].failure_code().map(|c| c.as_str()), Some("MissingLayerDigest"));
    let manifest = image_manifest(&config_digest, config.len(), &layer_digest, layer.len());
    let put = ecr.put_image().repository_name("team/app").image_manifest(&manifest).image_tag("v1").send().await.unwrap();
    let digest = put.image().unwrap().image_id().unwrap().image_digest().unwrap().to_string();
    assert_eq!(digest, format!("sha256:{}", sha256_of(manifest.as_bytes())));
    let dup = ecr.put_image().repository_name("team/app").image_manifest(&manifest).image_tag("v1").send().await.unwrap_err();
    assert_eq!(err_code(&dup), "ImageAlreadyExistsException");
    let unknown_layer = image_manifest(&config_digest, config.len(), &format!("sha256:{}", "1".repeat(64)), 5);
    let e = ecr.put_image().repository_name("team/app").image_manifest(&unknown_layer).image_tag("v9").send().await.unwrap_err();
    assert_eq!(err_code(&e), "LayersNotFoundException");

    // IMMUTABLE: the tag cannot move to another manifest.
    let other = ecr.put_image().repository_name("team/app").image_manifest(manifest.replace("\"size\":3000", "\"size\": 3000")).image_tag("v2").send().await.unwrap();
    let other_digest = other.image().unwrap().image_id().unwrap().image_digest().unwrap().to_string();
    let moved = ecr
        .put_image()
        .repository_name("team/app")
        .image_manifest(manifest.replace("\"size\":3000", "\"size\":  3000"))
        .image_tag("v1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&moved), "ImageTagAlreadyExistsException");

    // Describe, list, get.
    let described = ecr.describe_images().repository_name("team/app").send().await.unwrap();
    assert_eq!(described.image_details().len(), 2);
    let v1 = described.image_details().iter().find(|d| d.image_digest() == Some(digest.as_str())).unwrap();
    assert_eq!(v1.image_tags(), ["v1".to_string()]);
    assert_eq!(v1.image_size_in_bytes(), Some((config.len() + layer.len()) as i64));
    assert_eq!(v1.image_manifest_media_type(), Some("application/vnd.docker.distribution.manifest.v2+json"));
    assert_eq!(v1.artifact_media_type(), Some("application/vnd.docker.container.image.v1+json"));
    assert!(v1.image_pushed_at().is_some());
    let nf = ecr.describe_images().repository_name("team/app").image_ids(ImageIdentifier::builder().image_tag("nope").build()).send().await.unwrap_err();
    assert_eq!(err_code(&nf), "ImageNotFoundException");
    let listed = ecr.list_images().repository_name("team/app").send().await.unwrap();
    assert_eq!(listed.image_ids().len(), 2);
    let image_ids = |tags: &[&str]| Some(tags.iter().map(|t| ImageIdentifier::builder().image_tag(*t).build()).collect::<Vec<_>>());
    let got = ecr.batch_get_image().repository_name("team/app").set_image_ids(image_ids(&["v1", "missing"])).send().await.unwrap();
    assert_eq!(got.images()[0].image_manifest(), Some(manifest.as_str()));
    assert_eq!(got.failures()[0].failure_code().map(|c| c.as_str()), Some("ImageNotFound"));
    let url = ecr.get_download_url_for_layer().repository_name("team/app").layer_digest(&layer_digest).send().await.unwrap();
    let body = reqwest::get(url.download_url().unwrap()).await.unwrap().bytes().await.unwrap();
    assert_eq!(body.as_ref(), layer.as_slice());

    // The same image through the registry.
    let resp = reqwest::Client::new()
        .get(format!("{}/v2/team/app/manifests/v2", t.endpoint))
        .header("accept", "application/vnd.docker.distribution.manifest.v2+json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["docker-content-digest"], other_digest.as_str());
    assert_eq!(resp.headers()["content-type"], "application/vnd.docker.distribution.manifest.v2+json");

    // Authorization token.
    let auth = ecr.get_authorization_token().send().await.unwrap();
    let data = &auth.authorization_data()[0];
    assert_eq!(data.proxy_endpoint(), Some("https://000000000000.dkr.ecr.eu-west-1.amazonaws.com"));
    let decoded = base64_decode(data.authorization_token().unwrap());
    assert!(decoded.starts_with("AWS:") && decoded.len() > 20);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(data.expires_at().unwrap().secs() > now + 11 * 3600);

    // Lifecycle: keep one v-tagged image; applied on the next push.
    let lp = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;
    let bad_lp = ecr.put_lifecycle_policy().repository_name("team/app").lifecycle_policy_text(r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#).send().await.unwrap_err();
    assert_eq!(err_code(&bad_lp), "InvalidParameterException");
    let nolp = ecr.get_lifecycle_policy().repository_name("team/app").send().await.unwrap_err();
    assert_eq!(err_code(&nolp), "LifecyclePolicyNotFoundException");
    ecr.put_lifecycle_policy().repository_name("team/app").lifecycle_policy_text(lp).send().await.unwrap();
    let got_lp = ecr.get_lifecycle_policy().repository_name("team/app").send().await.unwrap();
    assert_eq!(got_lp.lifecycle_policy_text(), Some(lp));
    let after = ecr.describe_images().repository_name("team/app").send().await.unwrap();
    assert_eq!(after.image_details().len(), 1, "the older v-tagged image is expired");
    assert_eq!(after.image_details()[0].image_tags(), ["v2".to_string()]);
    ecr.delete_lifecycle_policy().repository_name("team/app").send().await.unwrap();

    // Repository policy, mutability, scanning, tags.
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage"]}]}"#;
    let nopol = ecr.get_repository_policy().repository_name("team/app").send().await.unwrap_err();
    assert_eq!(err_code(&nopol), "RepositoryPolicyNotFoundException");
    ecr.set_repository_policy().repository_name("team/app").policy_text(policy).send().await.unwrap();
    assert_eq!(ecr.get_repository_policy().repository_name("team/app").send().await.unwrap().policy_text(), Some(policy));
    ecr.delete_repository_policy().repository_name("team/app").send().await.unwrap();
    ecr.put_image_tag_mutability().repository_name("team/app").image_tag_mutability(ImageTagMutability::Mutable).send().await.unwrap();
    ecr.put_image_scanning_configuration()
        .repository_name("team/app")
        .image_scanning_configuration(ImageScanningConfiguration::builder().scan_on_push(false).build())
        .send()
        .await
        .unwrap();
    let arn = repo.repository_arn().unwrap();
    ecr.tag_resource().resource_arn(arn).tags(Tag::builder().key("env").value("dev").build().unwrap()).send().await.unwrap();
    ecr.untag_resource().resource_arn(arn).tag_keys("team").send().await.unwrap();
    let tags = ecr.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
    assert_eq!(tags.tags().iter().map(|t| (t.key(), t.value())).collect::<Vec<_>>(), vec![("env", "dev")]);
    let desc = ecr.describe_repositories().repository_names("team/app").send().await.unwrap();
    assert_eq!(desc.repositories()[0].image_tag_mutability(), Some(&ImageTagMutability::Mutable));
    assert_eq!(desc.repositories()[0].image_scanning_configuration().unwrap().scan_on_push(), false);
    assert!(ecr.describe_registry().send().await.unwrap().registry_id().is_some());

    // BatchDeleteImage, then repository deletion (not empty without force).
    ecr.put_image().repository_name("team/app").image_manifest(&manifest).image_tag("v1").send().await.unwrap();
    let del = ecr.batch_delete_image().repository_name("team/app").set_image_ids(image_ids(&["v1", "ghost"])).send().await.unwrap();
    assert_eq!(del.image_ids().len(), 1);
    assert_eq!(del.failures()[0].failure_code().map(|c| c.as_str()), Some("ImageNotFound"));
    let not_empty = ecr.delete_repository().repository_name("team/app").send().await.unwrap_err();
    assert_eq!(err_code(&not_empty), "RepositoryNotEmptyException");
    ecr.delete_repository().repository_name("team/app").force(true).send().await.unwrap();
    let gone = ecr.describe_repositories().repository_names("team/app").send().await.unwrap_err();
    assert_eq!(err_code(&gone), "RepositoryNotFoundException");

    // Unreferenced blobs are collected.
    let gc: serde_json::Value = reqwest::Client::new().post(format!("{}/_codeyard/ecr/gc?graceSeconds=0", t.endpoint)).send().await.unwrap().json().await.unwrap();
    assert!(gc["deletedBlobs"].as_u64().unwrap() >= 4, "{gc}");
    let left = std::fs::read_dir(t.data_dir.join("registry/blobs/sha256")).unwrap().count();
    assert_eq!(left, 0);

}

/// An OCI layout with a two-layer image, written by hand; prints the manifest digest.
pub(crate) const OCI_LAYOUT: &str = r#"
mkdir -p l1/etc l2/opt layout/blobs/sha256
echo one > l1/etc/one; head -c 200000 /dev/urandom > l2/opt/two
blob() { local d; d=$(sha256sum "$1" | cut -c1-64); cp "$1" layout/blobs/sha256/$d; echo "$d $(stat -c %s "$1")"; }
tar -C l1 -cf l1.tar . ; tar -C l2 -cf l2.tar .
gzip -nc l1.tar > l1.tgz; gzip -nc l2.tar > l2.tgz
read d1 s1 < <(blob l1.tgz); read d2 s2 < <(blob l2.tgz)
u1=$(sha256sum l1.tar | cut -c1-64); u2=$(sha256sum l2.tar | cut -c1-64)
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]}}' $u1 $u2 > config.json
read dc sc < <(blob config.json)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' $dc $sc $d1 $s1 $d2 $s2 > manifest.json
read dm sm < <(blob manifest.json)
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' $dm $sm > layout/index.json
echo '{"imageLayoutVersion":"1.0.0"}' > layout/oci-layout
echo "sha256:$dm"
"#;

/// A server with the ECR repositories `repos`, and a work dir for the image tools.
async fn registry_with(repos: &[&str]) -> (TestServer, aws_sdk_ecr::Client, tempfile::TempDir) {
    let (t, ecr) = TestServer::with(aws_sdk_ecr::Client::new).await;
    for repo in repos {
        ecr.create_repository().repository_name(*repo).send().await.unwrap();
    }
    (t, ecr, tempfile::tempdir().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_round_trips_oci_and_docker_images_with_identical_digests() {
    let (t, ecr, work) = registry_with(&["apps/multi", "apps/mirror"]).await;
    let w = work.path();
    let oci_digest = sh(&t, w, OCI_LAYOUT).trim().to_string();

    // OCI media types, kept as they are.
    sh(&t, w, "skopeo copy -q --dest-tls-verify=false oci:layout:v1 docker://$REG/apps/multi:oci");
    let raw = sh(&t, w, "skopeo inspect --raw --tls-verify=false docker://$REG/apps/multi:oci | sha256sum | cut -c1-64");
    assert_eq!(format!("sha256:{}", raw.trim()), oci_digest);
    sh(&t, w, "skopeo copy -q --src-tls-verify=false docker://$REG/apps/multi:oci oci:back:v1");
    let back = sh(&t, w, "python3 -c \"import json;print(json.load(open('back/index.json'))['manifests'][0]['digest'])\"");
    assert_eq!(back.trim(), oci_digest, "the manifest comes back byte for byte");
    sh(&t, w, "for b in layout/blobs/sha256/*; do cmp $b back/blobs/sha256/$(basename $b); done");

    // Docker schema 2 media types.
    sh(&t, w, "skopeo copy -q --format v2s2 --dest-tls-verify=false oci:layout:v1 docker://$REG/apps/multi:docker");
    sh(&t, w, "skopeo copy -q --src-tls-verify=false docker://$REG/apps/multi:docker dir:docker-back");
    let docker_digest = format!("sha256:{}", sha256_hex(&w.join("docker-back/manifest.json")).await);
    let mt = sh(&t, w, "python3 -c \"import json;print(json.load(open('docker-back/manifest.json'))['mediaType'])\"");
    assert_eq!(mt.trim(), "application/vnd.docker.distribution.manifest.v2+json");
    sh(&t, w, "skopeo copy -q --dest-tls-verify=false dir:docker-back docker://$REG/apps/multi:docker-again");
    let again = sh(&t, w, "skopeo inspect --raw --tls-verify=false docker://$REG/apps/multi:docker-again | sha256sum | cut -c1-64");
    assert_eq!(format!("sha256:{}", again.trim()), docker_digest);

    // Another repository: blobs are mounted, not uploaded again.
    sh(&t, w, "skopeo copy -q --src-tls-verify=false --dest-tls-verify=false docker://$REG/apps/multi:oci docker://$REG/apps/mirror:oci");

    // What ECR says about them (the aws CLI).
    let v = aws_cli_json(&t.endpoint, &["ecr", "describe-images", "--repository-name", "apps/multi"]);
    let details = v["imageDetails"].as_array().unwrap();
    assert_eq!(details.len(), 2);
    let oci = details.iter().find(|d| d["imageDigest"] == oci_digest.as_str()).unwrap();
    assert_eq!(oci["imageTags"], serde_json::json!(["oci"]));
    assert_eq!(oci["imageManifestMediaType"], "application/vnd.oci.image.manifest.v1+json");
    let docker = details.iter().find(|d| d["imageDigest"] == docker_digest.as_str()).unwrap();
    let mut tags: Vec<&str> = docker["imageTags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    tags.sort();
    assert_eq!(tags, ["docker", "docker-again"]);

    // Tags list paging, catalog, ranges, an unknown repository.
    let http = reqwest::Client::new();
    let tl = http.get(format!("{}/v2/apps/multi/tags/list?n=2", t.endpoint)).send().await.unwrap();
    assert!(tl.headers()["link"].to_str().unwrap().contains("last=docker-again"));
    let tl: serde_json::Value = tl.json().await.unwrap();
    assert_eq!(tl["tags"], serde_json::json!(["docker", "docker-again"]));
    let cat: serde_json::Value = http.get(format!("{}/v2/_catalog", t.endpoint)).send().await.unwrap().json().await.unwrap();
    assert_eq!(cat["repositories"], serde_json::json!(["apps/mirror", "apps/multi"]));
    let layer = sh(&t, w, "python3 -c \"import json;print(json.load(open('manifest.json'))['layers'][1]['digest'])\"");
    let part = http.get(format!("{}/v2/apps/mirror/blobs/{}", t.endpoint, layer.trim())).header("range", "bytes=10-19").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().len(), 10);
    let unknown = http.get(format!("{}/v2/no/such/manifests/latest", t.endpoint)).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(unknown.text().await.unwrap().contains("NAME_UNKNOWN"));
    let push_unknown = Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false", "oci:layout:v1"])
        .arg(format!("docker://{}/not/created:x", registry(&t)))
        .current_dir(w)
        .output()
        .unwrap();
    assert!(!push_unknown.status.success(), "a push to a repository ECR does not have fails");

    // Delete by digest through the registry; the image is gone from ECR too.
    let del = http.delete(format!("{}/v2/apps/mirror/manifests/{oci_digest}", t.endpoint)).send().await.unwrap();
    assert_eq!(del.status(), 202);
    let listed = ecr.list_images().repository_name("apps/mirror").send().await.unwrap();
    assert!(listed.image_ids().is_empty());

}

#[tokio::test(flavor = "multi_thread")]
async fn buildah_and_podman_push_and_pull_and_immutable_tags_hold() {
    let (t, ecr, work) = registry_with(&["base/busybox"]).await;
    ecr.create_repository().repository_name("frozen").image_tag_mutability(ImageTagMutability::Immutable).send().await.unwrap();
    let w = work.path();
    sh(&t, w, BASE_IMAGE_SETUP);
    // run.sh's base image push, then a pull with podman and a build FROM it with RUN.
    sh(&t, w, "buildah bud -q --isolation chroot -t $REG/base/busybox:1 base >/dev/null && buildah push -q --tls-verify=false $REG/base/busybox:1 docker://$REG/base/busybox:1");
    sh(&t, w, "buildah rmi -a -f >/dev/null; podman pull -q --tls-verify=false $REG/base/busybox:1 >/dev/null");
    sh(
        &t,
        w,
        "mkdir -p app && printf 'FROM %s/base/busybox:1\\nRUN echo built > /built.txt\\n' $REG > app/Dockerfile && \
         podman build -q --isolation chroot -t $REG/frozen:v1 app >/dev/null && podman push -q --tls-verify=false $REG/frozen:v1",
    );
    let first = ecr.describe_images().repository_name("frozen").send().await.unwrap();
    assert_eq!(first.image_details()[0].image_tags(), ["v1".to_string()]);
    // A different image under the same tag is refused by the IMMUTABLE repository.
    sh(&t, w, "printf 'FROM %s/base/busybox:1\\nRUN echo other > /built.txt\\n' $REG > app/Dockerfile && podman build -q --isolation chroot -t $REG/frozen:v1 app >/dev/null");
    let refused = Command::new("podman")
        .args(["push", "--tls-verify=false"])
        .arg(format!("{}/frozen:v1", registry(&t)))
        .current_dir(w)
        .env("CONTAINERS_STORAGE_CONF", w.join("storage.conf"))
        .env("CONTAINERS_REGISTRIES_CONF", w.join("registries.conf"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("immutable"), "{}", String::from_utf8_lossy(&refused.stderr));
    let after = ecr.describe_images().repository_name("frozen").send().await.unwrap();
    assert_eq!(after.image_details().iter().filter(|d| !d.image_tags().is_empty()).count(), 1);
    assert_eq!(
        after.image_details().iter().find(|d| !d.image_tags().is_empty()).unwrap().image_digest(),
        first.image_details()[0].image_digest(),
        "the tag did not move"
    );
    // Pull what was pushed and find the RUN step's file in it.
    sh(&t, w, "podman rmi -a -f >/dev/null; podman pull -q --tls-verify=false $REG/frozen:v1 >/dev/null && c=$(buildah from $REG/frozen:v1) && grep -q built \"$(buildah mount $c)/built.txt\"");

}

#[tokio::test(flavor = "multi_thread")]
async fn build_docker_runs_the_acceptance_image_buildspec_commands() {
    let (t, ecr, work) = registry_with(&["base/busybox", "crm-demo"]).await;
    let w = work.path();
    sh(&t, w, BASE_IMAGE_SETUP);
    sh(&t, w, "buildah bud -q --isolation chroot -t $REG/base/busybox:1 base >/dev/null && buildah push -q --tls-verify=false $REG/base/busybox:1 docker://$REG/base/busybox:1");

    // The `docker` a build gets, written by the provider the server registered.
    let server = t.server.as_ref().unwrap();
    let providers = server.platform.hub.build_environments();
    assert!(!providers.is_empty(), "ECR registers a build environment");
    let scratch = w.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let ctx = server.platform.internal_context(ACCOUNT, REGION);
    let mut additions = codeyard_core::hub::BuildEnvironmentAdditions::default();
    for p in providers {
        let a = p.prepare(&ctx, &scratch, true).await.unwrap();
        additions.variables.extend(a.variables);
        additions.path_prepend.extend(a.path_prepend);
    }
    assert!(!additions.path_prepend.is_empty(), "no Docker engine here: the wrapper is used");
    let path = format!("{}:{}", additions.path_prepend[0].display(), std::env::var("PATH").unwrap());

    // The buildspec's commands, verbatim except for the file fetched from S3.
    let script = r#"
set -euo pipefail
test "$(command -v docker)" = "$WRAPPER"
$(aws ecr get-login --no-include-email --region $MY_AWS_REGION)
COMMIT_HASH_TAG=$(echo $CODEBUILD_RESOLVED_SOURCE_VERSION | cut -c 1-14)
LATEST_IMAGE_TAG="latest"
REGISTRY=$MY_AWS_ACCOUNT_ID.dkr.ecr.$MY_AWS_REGION.amazonaws.com
cp -r /work/shared/acceptance/devops-demo/app/docker ./docker
cd docker
mkdir -p image/resources
echo "jar bytes $RANDOM" > image/app.jar
cp -r ./resources/* image/resources/
cd image
docker build --build-arg BASE_IMAGE=$BASE_IMAGE -f Dockerfile -t $MY_IMAGE_NAME:$LATEST_IMAGE_TAG .
docker tag $MY_IMAGE_NAME:$LATEST_IMAGE_TAG $REGISTRY/$MY_ECR_REPO:$LATEST_IMAGE_TAG
docker tag $MY_IMAGE_NAME:$LATEST_IMAGE_TAG $REGISTRY/$MY_ECR_REPO:$COMMIT_HASH_TAG
docker push $REGISTRY/$MY_ECR_REPO:$LATEST_IMAGE_TAG
docker push $REGISTRY/$MY_ECR_REPO:$COMMIT_HASH_TAG
docker images | grep crm-demo >/dev/null  # not grep -q: under pipefail an early exit is a SIGPIPE failure
cp app.jar ../../app.jar
"#;
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(script).current_dir(w);
    for (k, v) in &additions.variables {
        cmd.env(k, v);
    }
    cmd.env("PATH", path)
        .env("WRAPPER", additions.path_prepend[0].join("docker"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_ENDPOINT_URL", &t.endpoint)
        .env("MY_AWS_REGION", REGION)
        .env("MY_AWS_ACCOUNT_ID", ACCOUNT)
        .env("MY_ECR_REPO", "crm-demo")
        .env("MY_IMAGE_NAME", "crm-demo-image")
        .env("BASE_IMAGE", format!("{}/base/busybox:1", registry(&t)))
        .env("CODEBUILD_RESOLVED_SOURCE_VERSION", "0123456789abcdef0123456789abcdef01234567");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "buildspec commands failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    let images = ecr.describe_images().repository_name("crm-demo").send().await.unwrap();
    let mut tags: Vec<String> = images.image_details().iter().flat_map(|d| d.image_tags().to_vec()).collect();
    tags.sort();
    assert_eq!(tags, ["0123456789abcd", "latest"]);
    // As run.sh checks: pull with skopeo from the repositoryUri and find the jar in a layer.
    let uri = ecr.describe_repositories().repository_names("crm-demo").send().await.unwrap().repositories()[0].repository_uri().unwrap().to_string();
    sh(
        &t,
        w,
        &format!(
            "skopeo copy -q --src-tls-verify=false docker://{uri}:latest oci:pulled:latest
found=''
for b in pulled/blobs/sha256/*; do
  if tar -tzf $b 2>/dev/null | grep -q 'opt/mylib/app.jar$'; then mkdir -p x && tar -xzf $b -C x opt/mylib/app.jar && found=yes; fi
done
test -n \"$found\" && cmp x/opt/mylib/app.jar app.jar"
        ),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_requires_the_token_under_enforced_auth() {
    let t = TestServer::enforcing("AKIDECRTEST", "s3cret").await;
    let ecr = aws_sdk_ecr::Client::new(&t.sdk_config_with("AKIDECRTEST", "s3cret").await);
    ecr.create_repository().repository_name("locked").send().await.unwrap();
    let http = reqwest::Client::new();
    let anon = http.get(format!("{}/v2/", t.endpoint)).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    assert!(anon.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic "));
    let token = ecr.get_authorization_token().send().await.unwrap().authorization_data()[0].authorization_token().unwrap().to_string();
    let ok = http.get(format!("{}/v2/locked/tags/list", t.endpoint)).header("authorization", format!("Basic {token}")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let wrong = http.get(format!("{}/v2/locked/tags/list", t.endpoint)).basic_auth("AWS", Some("not-a-token")).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let gc = http.post(format!("{}/_codeyard/ecr/gc?graceSeconds=0", t.endpoint)).send().await.unwrap();
    assert_eq!(gc.status(), 401, "garbage collection on demand needs the token too");
    // skopeo with the token as a docker login would pass it.
    let pw = base64_decode(&token);
    let out = Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false", "--creds"])
        .arg(&pw)
        .arg(format!("docker://{}/locked", registry(&t)))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_ecr_repository_lifecycle_and_policy() {
    let (t, ws, ecr) = terraform_applied("ecr", aws_sdk_ecr::Client::new).await;
    let repo = ecr.describe_repositories().repository_names("tf/app").send().await.unwrap();
    let repo = &repo.repositories()[0];
    assert_eq!(repo.image_tag_mutability(), Some(&ImageTagMutability::Immutable));
    assert!(repo.image_scanning_configuration().unwrap().scan_on_push());
    ecr.get_lifecycle_policy().repository_name("tf/app").send().await.unwrap();
    ecr.get_repository_policy().repository_name("tf/app").send().await.unwrap();
    let (code, out) = Command::new("terraform")
        .args(["output", "-raw", "repository_url"])
        .current_dir(ws.path())
        .output()
        .map(|o| (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).to_string()))
        .unwrap();
    assert_eq!(code, 0);
    assert_eq!(out, format!("{}/tf/app", registry(&t)));

    // An image in the repository: destroy still works (force_delete).
    let work = tempfile::tempdir().unwrap();
    sh(&t, work.path(), OCI_LAYOUT);
    sh(&t, work.path(), "skopeo copy -q --dest-tls-verify=false oci:layout:v1 docker://$REG/tf/app:v1");

    // An update (tags).
    terraform_apply(ws.path(), &t.endpoint, &["-var=app_tag_env=prod"]);
    let tags = ecr.list_tags_for_resource().resource_arn(repo.repository_arn().unwrap()).send().await.unwrap();
    assert!(tags.tags().iter().any(|t| t.key() == "env" && t.value() == "prod"));

    terraform_destroy(ws.path(), &t.endpoint, &["-var=app_tag_env=prod"]);
    let left = ecr.describe_repositories().send().await.unwrap();
    assert!(left.repositories().is_empty(), "destroy left {:?}", left.repositories());
}

/// The acceptance app's image buildspec, run verbatim by a codeyard build (S3 source zip of
/// the app tree, the jar in S3 as stage 2 leaves it): it logs in with `aws ecr get-login`,
/// builds with `docker` and pushes `latest` and the commit tag to the AWS registry name.
///
/// `push_repository`: the repository ARN pattern the build role may push to (pulls are allowed
/// everywhere). Returns the server, the work dir, the finished build and its log.
async fn run_acceptance_image_build(push_repository: &str) -> (TestServer, tempfile::TempDir, aws_sdk_codebuild::types::Build, String) {
    use aws_sdk_codebuild::types::{ComputeType, EnvironmentType, EnvironmentVariable, ProjectArtifacts, ProjectEnvironment, ProjectSource, SourceType};
    let (t, ecr) = TestServer::with(aws_sdk_ecr::Client::new).await;
    let cb = aws_sdk_codebuild::Client::new(&t.sdk_config().await);
    let s3 = s3_client(&t.endpoint).await;
    make_bucket(&s3, "app-bucket").await;
    ecr.create_repository().repository_name("base/busybox").send().await.unwrap();
    ecr.create_repository().repository_name("crm").send().await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    sh(&t, w, BASE_IMAGE_SETUP);
    sh(&t, w, "buildah bud -q --isolation chroot -t $REG/base/busybox:1 base >/dev/null && buildah push -q --tls-verify=false $REG/base/busybox:1 docker://$REG/base/busybox:1");
    sh(&t, w, "cd /work/shared/acceptance/devops-demo/app && zip -qr $OLDPWD/app.zip . && cd $OLDPWD && echo \"jar $RANDOM\" > app.jar");
    for (key, file) in [("src/app.zip", "app.zip"), ("app-jar/target/app.jar", "app.jar")] {
        s3.put_object().bucket("app-bucket").key(key).body(aws_sdk_s3::primitives::ByteStream::from(std::fs::read(w.join(file)).unwrap())).send().await.unwrap();
    }
    // What the buildspec does: logs, the app bucket, ECR login, pull of the base image, push.
    let policy = allow_policy(&[
        (&["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], &["*"]),
        (&["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"], &["arn:aws:s3:::app-bucket", "arn:aws:s3:::app-bucket/*"]),
        (&["ecr:GetAuthorizationToken"], &["*"]),
        (&["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"], &[&format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/*")]),
        (&["ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"], &[push_repository]),
    ]);
    let role = create_service_role(&aws_sdk_iam::Client::new(&t.sdk_config().await), "image-build", "codebuild.amazonaws.com", &policy).await;
    let var = |k: &str, v: &str| EnvironmentVariable::builder().name(k).value(v).build().unwrap();
    cb.create_project()
        .name("image")
        .source(
            ProjectSource::builder()
                .r#type(SourceType::S3)
                .location("app-bucket/src/app.zip")
                .buildspec("codebuild/buildspec_build_docker_image.yml")
                .build()
                .unwrap(),
        )
        .artifacts(ProjectArtifacts::builder().r#type(aws_sdk_codebuild::types::ArtifactsType::NoArtifacts).build().unwrap())
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(ComputeType::BuildGeneral1Small)
                .privileged_mode(true)
                .environment_variables(var("MY_AWS_REGION", REGION))
                .environment_variables(var("MY_AWS_ACCOUNT_ID", ACCOUNT))
                .environment_variables(var("MY_ECR_REPO", "crm"))
                .environment_variables(var("MY_IMAGE_NAME", "crm-image"))
                .environment_variables(var("MY_S3_APP_BUCKET", "app-bucket"))
                .environment_variables(var("BASE_IMAGE", &format!("{}/base/busybox:1", registry(&t))))
                .build()
                .unwrap(),
        )
        .service_role(&role)
        .send()
        .await
        .unwrap();
    let id = cb.start_build().project_name("image").send().await.unwrap().build_value().unwrap().id().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let build = loop {
        let b = cb.batch_get_builds().ids(&id).send().await.unwrap().builds()[0].clone();
        if b.build_complete() {
            break b;
        }
        assert!(std::time::Instant::now() < deadline, "the build did not finish: {b:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    let logs = aws_sdk_cloudwatchlogs::Client::new(&t.sdk_config().await);
    let l = build.logs().unwrap();
    let ev = logs.get_log_events().log_group_name(l.group_name().unwrap()).log_stream_name(l.stream_name().unwrap()).send().await;
    let text: Vec<String> = ev.map(|e| e.events().iter().filter_map(|x| x.message().map(str::to_string)).collect()).unwrap_or_default();
    (t, work, build, text.join(""))
}

/// The acceptance app's image buildspec, run verbatim by a codeyard build whose role may push.
#[tokio::test(flavor = "multi_thread")]
async fn codebuild_build_pushes_the_acceptance_image() {
    use aws_sdk_codebuild::types::StatusType;
    let (t, work, build, log) = run_acceptance_image_build(&format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/crm")).await;
    assert_eq!(build.build_status(), Some(&StatusType::Succeeded), "build failed: {:#?}\nlog:\n{log}", build.phases());
    let w = work.path();
    let ecr = aws_sdk_ecr::Client::new(&t.sdk_config().await);
    let images = ecr.describe_images().repository_name("crm").send().await.unwrap();
    let tags: Vec<String> = images.image_details().iter().flat_map(|d| d.image_tags().to_vec()).collect();
    assert!(tags.contains(&"latest".to_string()) && tags.len() == 2, "tags: {tags:?}");
    sh(
        &t,
        w,
        "skopeo copy -q --src-tls-verify=false docker://$REG/crm:latest oci:pulled:latest
for b in pulled/blobs/sha256/*; do
  if tar -tzf $b 2>/dev/null | grep -q 'opt/mylib/app.jar$'; then mkdir -p x && tar -xzf $b -C x opt/mylib/app.jar; fi
done
cmp x/opt/mylib/app.jar app.jar",
    );
    t.assert_no_model_violations();
}

/// The same build with a role that may pull but not push to `crm`: its `docker push` (the
/// token from `aws ecr get-login` is the role session's) is refused by the registry with
/// DENIED, the build fails in POST_BUILD (where the buildspec pushes), and no image lands.
#[tokio::test(flavor = "multi_thread")]
async fn a_build_role_without_push_permission_cannot_docker_push() {
    use aws_sdk_codebuild::types::StatusType;
    let (t, _work, build, log) = run_acceptance_image_build(&format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/other")).await;
    assert_eq!(build.build_status(), Some(&StatusType::Failed), "{log}");
    let failed: Vec<_> = build.phases().iter().filter(|p| p.phase_status() == Some(&StatusType::Failed)).map(|p| p.phase_type().unwrap().as_str().to_string()).collect();
    assert_eq!(failed, ["POST_BUILD"], "{log}");
    assert!(log.contains("is not authorized to perform: ecr:InitiateLayerUpload"), "the denial is in the log:\n{log}");
    let ecr = aws_sdk_ecr::Client::new(&t.sdk_config().await);
    let images = ecr.describe_images().repository_name("crm").send().await.unwrap();
    assert!(images.image_details().is_empty(), "no image was pushed");
}

/// A chunked upload survives a restart halfway; digests are checked; a blob is mounted into
/// another repository without uploading it again; images survive the restart.
#[tokio::test(flavor = "multi_thread")]
async fn chunked_upload_survives_restart_and_mounts_across_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let ecr = aws_sdk_ecr::Client::new(&t.sdk_config().await);
    ecr.create_repository().repository_name("chunks").send().await.unwrap();
    ecr.create_repository().repository_name("other").send().await.unwrap();
    let http = reqwest::Client::new();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let digest = format!("sha256:{}", sha256_of(&data));

    let start = http.post(format!("{}/v2/chunks/blobs/uploads/", t.endpoint)).send().await.unwrap();
    assert_eq!(start.status(), 202);
    let location = start.headers()["location"].to_str().unwrap().to_string();
    let first = http
        .patch(format!("{}{location}", t.endpoint))
        .header("content-range", format!("0-{}", 99_999))
        .header("content-type", "application/octet-stream")
        .body(data[..100_000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 202);
    assert_eq!(first.headers()["range"], "0-99999");

    // Restart on the same data dir.
    let data_dir = t.stop().await;
    let t = TestServer::start_in(data_dir, |_| {}).await;
    let status = http.get(format!("{}{location}", t.endpoint)).send().await.unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(status.headers()["range"], "0-99999");
    let out_of_order = http.patch(format!("{}{location}", t.endpoint)).header("content-range", "150000-150009").body(vec![0u8; 10]).send().await.unwrap();
    assert_eq!(out_of_order.status(), 416);
    let second = http
        .patch(format!("{}{location}", t.endpoint))
        .header("content-range", format!("100000-{}", data.len() - 1))
        .body(data[100_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 202);
    let wrong = http.put(format!("{}{location}?digest=sha256:{}", t.endpoint, "a".repeat(64))).send().await.unwrap();
    assert_eq!(wrong.status(), 400);
    assert!(wrong.text().await.unwrap().contains("DIGEST_INVALID"));

    // The failed PUT discarded the upload; a monolithic POST stores the blob.
    let mono = http.post(format!("{}/v2/chunks/blobs/uploads/?digest={digest}", t.endpoint)).body(data.clone()).send().await.unwrap();
    assert_eq!(mono.status(), 201);
    assert_eq!(mono.headers()["docker-content-digest"], digest.as_str());
    let head = http.head(format!("{}/v2/chunks/blobs/{digest}", t.endpoint)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], data.len().to_string().as_str());
    let absent = http.head(format!("{}/v2/other/blobs/{digest}", t.endpoint)).send().await.unwrap();
    assert_eq!(absent.status(), 404);
    let mount = http.post(format!("{}/v2/other/blobs/uploads/?mount={digest}&from=chunks", t.endpoint)).send().await.unwrap();
    assert_eq!(mount.status(), 201);
    let got = http.get(format!("{}/v2/other/blobs/{digest}", t.endpoint)).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(got.as_ref(), data.as_slice());

    // An image pushed before a restart is still there after it.
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = format!("sha256:{}", sha256_of(config));
    let put = http.post(format!("{}/v2/other/blobs/uploads/?digest={config_digest}", t.endpoint)).body(config.to_vec()).send().await.unwrap();
    assert_eq!(put.status(), 201);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{digest}","size":{}}}]}}"#,
        config.len(),
        data.len()
    );
    let put = http
        .put(format!("{}/v2/other/manifests/v1", t.endpoint))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let data_dir = t.stop().await;
    let t = TestServer::start_in(data_dir, |_| {}).await;
    let got = http.get(format!("{}/v2/other/manifests/v1", t.endpoint)).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.text().await.unwrap(), manifest);
    let ecr = aws_sdk_ecr::Client::new(&t.sdk_config().await);
    let images = ecr.describe_images().repository_name("other").send().await.unwrap();
    assert_eq!(images.image_details()[0].image_tags(), ["v1".to_string()]);
    drop(dir);
    t.assert_no_model_violations();
}

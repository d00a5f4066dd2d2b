//! CodeBuild with `--executor container`: builds run in a podman container of the project's
//! image. The image is made here from the host's own bash and busybox with buildah, holds a
//! file and a tool the host lacks, and is pushed to codeyard's ECR; the project names it by
//! its AWS URI. Checked: the build uses both; it sees CodeBuild's paths; its credentials come
//! from the container credentials endpoint (no keys in the environment) and are the service
//! role's; stop, timeout and a kill -9 of the server leave no container; a missing image fails
//! in PROVISIONING; `runtime-versions` are honoured for what the image declares and refused
//! with CodeBuild's error for what it does not; a LOCAL cache of `/root/...` paths persists between builds. Every test is skipped (with a line saying so) where podman cannot run
//! containers.

use crate::common::*;

use aws_sdk_codebuild::types::{
    ArtifactsType, Build, ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment,
    ProjectSource, SourceType, StatusType,
};
use std::path::Path;
use std::time::{Duration, Instant};

type Cb = aws_sdk_codebuild::Client;

const IMAGE_REPO: &str = "build-tools";

/// Whether podman runs containers here; prints why not.
async fn podman_works() -> bool {
    let dir = tempfile::tempdir().unwrap();
    match codeyard_codebuild::container::Podman::detect(dir.path()).await {
        Ok(_) => true,
        Err(e) => {
            eprintln!("SKIPPED: container builds need podman: {e}");
            false
        }
    }
}

fn sh(script: &str) -> String {
    let out = std::process::Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Builds the test image with buildah (host bash + busybox, a marker file, a tool) and pushes
/// it to the server's registry as `build-tools:1`.
async fn push_test_image(endpoint: &str, work: &Path) {
    push_image(endpoint, work, IMAGE_REPO, "").await
}

/// The test image plus the host's podman, conmon, runc and catatonit (with their libraries):
/// what codeyard's `docker` of privileged builds runs.
async fn push_podman_image(endpoint: &str, work: &Path) {
    let extra = r#"for bin in /usr/bin/podman /usr/bin/conmon /usr/sbin/runc /usr/bin/catatonit; do
  mkdir -p $r$(dirname $bin); cp -L $bin $r$bin
  for lib in $(ldd $bin 2>/dev/null | grep -o '/[^ ]*'); do mkdir -p $r$(dirname $lib); cp -L $lib $r$lib; done
done
mkdir -p $r/etc/containers $r/usr/share/containers $r/usr/bin $r/var/tmp $r/usr/libexec/podman
ln -sf /usr/bin/catatonit $r/usr/libexec/podman/catatonit
cp /etc/containers/policy.json $r/etc/containers/; cp /usr/share/containers/containers.conf /usr/share/containers/seccomp.json $r/usr/share/containers/
ln -sf /bin/busybox $r/usr/bin/env; ln -sf busybox $r/bin/sed"#;
    push_image(endpoint, work, "podman-tools", extra).await
}

async fn push_image(endpoint: &str, work: &Path, repo: &str, extra: &str) {
    let ecr = aws_sdk_ecr::Client::new(&sdk(endpoint).await);
    ecr.create_repository().repository_name(repo).send().await.unwrap();
    let work = work.join(repo);
    let rootfs = work.join("rootfs");
    let host = endpoint.trim_start_matches("http://");
    sh(&format!(
        r#"set -e; r='{root}'; mkdir -p $r/bin $r/tmp $r/opt/codeyard $r/usr/local/bin
cp /bin/busybox /bin/bash $r/bin/
for lib in $(ldd /bin/bash | grep -o '/[^ ]*'); do mkdir -p $r$(dirname $lib); cp -L $lib $r$lib; done
for a in sh sleep head tr cat echo ls wget env mkdir rm mv cp sort grep test printf id chmod whoami touch; do ln -sf busybox $r/bin/$a; done
mkdir -p $r/etc $r/home/builder
printf 'root:x:0:0:root:/root:/bin/sh\nbuilder:x:1000:1000:builder:/home/builder:/bin/sh\n' > $r/etc/passwd
printf 'root:x:0:\nbuilder:x:1000:\n' > $r/etc/group
{extra}
echo marker-from-the-image > $r/opt/codeyard/marker.txt
printf '#!/bin/sh\necho tool-from-the-image\n' > $r/usr/local/bin/codeyard-image-tool; chmod +x $r/usr/local/bin/codeyard-image-tool
# A function, not a variable: quotes inside an expanded variable stay literal characters.
B() {{ buildah --root "{w}/broot" --runroot "{w}/brun" --storage-driver vfs "$@"; }}
c=$(B from scratch); B copy $c $r/ / >/dev/null
B config --env PATH=/usr/local/bin:/usr/bin:/bin $c
B commit -q $c {repo}:1 >/dev/null
B push --tls-verify=false {repo}:1 docker://{host}/{repo}:1 2>&1"#,
        root = rootfs.display(),
        w = work.display(),
    ));
    allow_codebuild_pulls(&ecr, repo).await;
}

/// The repository policy AWS requires for images CodeBuild pulls with its own credentials
/// (`imagePullCredentialsType: CODEBUILD`, the default): the service principal may pull.
async fn allow_codebuild_pulls(ecr: &aws_sdk_ecr::Client, repo: &str) {
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "CodeBuildAccess", "Effect": "Allow",
        "Principal": {"Service": "codebuild.amazonaws.com"},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]}]});
    ecr.set_repository_policy().repository_name(repo).policy_text(policy.to_string()).send().await.unwrap();
}

fn ecr_uri(tag: &str) -> String {
    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{IMAGE_REPO}:{tag}")
}

fn environment(image: &str) -> ProjectEnvironment {
    ProjectEnvironment::builder()
        .r#type(EnvironmentType::LinuxContainer)
        .image(image)
        .compute_type(ComputeType::BuildGeneral1Small)
        .build()
        .unwrap()
}

async fn create_project(cb: &Cb, name: &str, image: &str, buildspec: &str, artifacts: ProjectArtifacts) {
    cb.create_project()
        .name(name)
        .source(ProjectSource::builder().r#type(SourceType::NoSource).buildspec(buildspec).build().unwrap())
        .artifacts(artifacts)
        .environment(environment(image))
        .service_role(format!("arn:aws:iam::{ACCOUNT}:role/container-builds"))
        .timeout_in_minutes(5)
        .send()
        .await
        .unwrap();
}

fn no_artifacts() -> ProjectArtifacts {
    ProjectArtifacts::builder().r#type(ArtifactsType::NoArtifacts).build().unwrap()
}

/// The builds' service role `container-builds`: the usual build permissions and, for the
/// privileged build's `docker push`, ECR's push actions.
async fn create_role(endpoint: &str) {
    let iam = aws_sdk_iam::Client::new(&sdk(endpoint).await);
    create_service_role(&iam, "container-builds", "codebuild.amazonaws.com", &codebuild_role_policy()).await;
    let push = allow_policy(&[(&["ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"], &["*"])]);
    iam.put_role_policy().role_name("container-builds").policy_name("push").policy_document(push).send().await.unwrap();
}

async fn start(cb: &Cb, project: &str) -> String {
    cb.start_build().project_name(project).send().await.unwrap().build_value().unwrap().id().unwrap().to_string()
}

async fn wait_build(cb: &Cb, id: &str, limit: Duration) -> Build {
    let deadline = Instant::now() + limit;
    loop {
        let b = cb.batch_get_builds().ids(id).send().await.unwrap().builds()[0].clone();
        if b.build_complete() {
            return b;
        }
        assert!(Instant::now() < deadline, "build {id} did not complete in {limit:?}: {b:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_phase(cb: &Cb, id: &str, phase: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let b = cb.batch_get_builds().ids(id).send().await.unwrap().builds()[0].clone();
        if b.current_phase() == Some(phase) {
            return;
        }
        assert!(!b.build_complete() && Instant::now() < deadline, "build {id} never reached {phase}: {b:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn phase(b: &Build, name: &str) -> (String, String) {
    let p = b.phases().iter().find(|p| p.phase_type().map(|t| t.as_str()) == Some(name)).unwrap_or_else(|| panic!("no phase {name}: {b:#?}"));
    let status = p.phase_status().map(|s| s.as_str().to_string()).unwrap_or_default();
    let context = p.contexts().iter().map(|c| format!("{}: {}", c.status_code().unwrap_or(""), c.message().unwrap_or(""))).collect::<Vec<_>>().join("\n");
    (status, context)
}

async fn log_text(endpoint: &str, b: &Build) -> String {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk(endpoint).await);
    let l = b.logs().expect("logs location");
    let page = logs
        .get_log_events()
        .log_group_name(l.group_name().unwrap())
        .log_stream_name(l.stream_name().unwrap())
        .start_from_head(true)
        .send()
        .await
        .unwrap();
    page.events().iter().map(|e| format!("{}\n", e.message().unwrap_or(""))).collect()
}

/// Build containers the server's podman storage holds (`podman ps -a --filter label=...`).
fn containers(data_dir: &Path, build_id: Option<&str>) -> Vec<String> {
    let dir = codeyard_codebuild::containers_dir(data_dir);
    let label = match build_id {
        Some(id) => format!("label={}={id}", codeyard_codebuild::container::BUILD_LABEL),
        None => format!("label={}", codeyard_codebuild::container::BUILD_LABEL),
    };
    let out = std::process::Command::new("podman")
        .args(codeyard_codebuild::container::storage_options(&dir))
        .args(["ps", "-a", "-q", "--filter", &label])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect()
}

/// Where podman works: a server with the container executor (and its data dir); `None` (the
/// test is skipped) elsewhere.
async fn container_server() -> Option<(tempfile::TempDir, TestServer)> {
    if !podman_works().await {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::start_in(dir.path().to_path_buf(), |o| o.executor = codeyard_codebuild::ExecutorChoice::Container).await;
    Some((dir, t))
}

/// Where podman works: a container-executor server with the test image pushed and the builds'
/// role made (and the image's work dir); `None` (the test is skipped) elsewhere.
async fn image_server() -> Option<(tempfile::TempDir, TestServer, tempfile::TempDir)> {
    let (dir, t) = container_server().await?;
    let work = tempfile::tempdir().unwrap();
    push_test_image(&t.endpoint, work.path()).await;
    create_role(&t.endpoint).await;
    Some((dir, t, work))
}

/// The tool and file of the image, CodeBuild's paths, credentials from the endpoint only, and
/// those credentials are the service role's (checked with STS from outside).
#[tokio::test(flavor = "multi_thread")]
async fn build_runs_in_an_image_from_codeyards_ecr() {
    let Some((_dir, t, _work)) = image_server().await else {
        return;
    };
    let s3 = s3_client(&t.endpoint).await;
    make_bucket(&s3, "out").await;
    assert!(
        !std::process::Command::new("bash").arg("-c").arg("command -v codeyard-image-tool").status().unwrap().success(),
        "the host must lack the image's tool"
    );
    let buildspec = r#"version: 0.2
phases:
  build:
    commands:
      - cat /opt/codeyard/marker.txt
      - codeyard-image-tool
      - 'if [ -z "$AWS_ACCESS_KEY_ID$AWS_SECRET_ACCESS_KEY" ]; then echo no-keys-in-env; fi'
      - echo "src=$CODEBUILD_SRC_DIR pwd=$(pwd) home=$HOME id=$CODEBUILD_BUILD_ID"
      - 'wget -q -O credentials.json --header "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" "$AWS_CONTAINER_CREDENTIALS_FULL_URI"'
      - 'wget -q -O health.json "$AWS_ENDPOINT_URL/_codeyard/health"'
      - 'if wget -q -O - --header "Authorization: wrong" "$AWS_CONTAINER_CREDENTIALS_FULL_URI"; then exit 1; fi'
artifacts:
  files:
    - credentials.json
    - health.json
"#;
    let artifacts = ProjectArtifacts::builder().r#type(ArtifactsType::S3).location("out").name("result").build().unwrap();
    let cb = Cb::new(&sdk(&t.endpoint).await);
    create_project(&cb, "in-image", &ecr_uri("1"), buildspec, artifacts).await;
    let id = start(&cb, "in-image").await;
    let b = wait_build(&cb, &id, Duration::from_secs(120)).await;
    let log = log_text(&t.endpoint, &b).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{log}\n{b:#?}");
    assert!(log.contains("\nmarker-from-the-image\n"), "{log}");
    assert!(log.contains("\ntool-from-the-image\n"), "{log}");
    assert!(log.contains("\nno-keys-in-env\n"), "{log}");
    assert!(log.contains(&format!("Running in container")) && log.contains(&format!("{}/{IMAGE_REPO}:1", t.endpoint.trim_start_matches("http://"))), "{log}");
    let src_line = log.lines().find(|l| l.starts_with("src=")).unwrap();
    assert!(src_line.starts_with("src=/codebuild/output/src"), "{src_line}");
    let src = src_line.split_whitespace().next().unwrap().trim_start_matches("src=");
    assert!(src_line.contains(&format!("pwd={src} home=/root id={id}")), "{src_line}");

    let get = |key: &'static str| {
        let s3 = s3.clone();
        async move {
            let o = s3.get_object().bucket("out").key(format!("result/{key}")).send().await.unwrap_or_else(|e| panic!("{key}: {e:?}"));
            serde_json::from_slice::<serde_json::Value>(&o.body.collect().await.unwrap().into_bytes()).unwrap()
        }
    };
    let creds = get("credentials.json").await;
    let health = get("health.json").await;
    assert_eq!(health["builds"]["executor"], "container", "{health}");
    for field in ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"] {
        assert!(creds[field].as_str().is_some_and(|s| !s.is_empty()), "{field} missing: {creds}");
    }
    let (key, secret, token) = (creds["AccessKeyId"].as_str().unwrap(), creds["SecretAccessKey"].as_str().unwrap(), creds["Token"].as_str().unwrap());
    let conf = sdk_config_for_session(&t.endpoint, key, secret, token).await;
    let me = aws_sdk_sts::Client::new(&conf).get_caller_identity().send().await.unwrap();
    assert!(me.arn().unwrap().contains(":assumed-role/container-builds/"), "{me:?}");
    assert!(!log.contains(creds["SecretAccessKey"].as_str().unwrap()), "the secret key is masked");
    assert!(containers(&t.data_dir, None).is_empty(), "the container was removed after the build");
    t.assert_no_model_violations();
}

/// An image that cannot be had fails PROVISIONING naming the image; no container is made.
#[tokio::test(flavor = "multi_thread")]
async fn missing_image_fails_in_provisioning() {
    let Some((_dir, t)) = container_server().await else {
        return;
    };
    create_role(&t.endpoint).await;
    let cb = Cb::new(&sdk(&t.endpoint).await);
    let ecr = aws_sdk_ecr::Client::new(&sdk(&t.endpoint).await);
    ecr.create_repository().repository_name(IMAGE_REPO).send().await.unwrap();
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo never\n";
    create_project(&cb, "missing", &ecr_uri("no-such-tag"), spec, no_artifacts()).await;
    let id = start(&cb, "missing").await;
    let b = wait_build(&cb, &id, Duration::from_secs(60)).await;
    assert_eq!(b.build_status(), Some(&StatusType::Failed), "{b:#?}");
    let (status, context) = phase(&b, "PROVISIONING");
    assert_eq!(status, "FAILED");
    assert!(context.starts_with("BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE: Unable to pull customer's container image."), "{context}");
    assert!(context.contains(&format!("{IMAGE_REPO}:no-such-tag")), "{context}");
    assert!(!b.phases().iter().any(|p| p.phase_type().map(|t| t.as_str()) == Some("BUILD")), "{b:#?}");
    assert!(containers(&t.data_dir, None).is_empty());
}

/// StopBuild and the build timeout kill the container and remove it; a kill -9 of the server
/// mid-build leaves a container behind only until the next start-up removes it.
#[tokio::test(flavor = "multi_thread")]
async fn stop_timeout_and_crash_leave_no_container() {
    if !podman_works().await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn_with_env(dir.path(), &[("CODEYARD_BUILD_MINUTE_MS", "2000")], &["--executor", "container"]);
    let work = tempfile::tempdir().unwrap();
    push_test_image(&server.endpoint, work.path()).await;
    create_role(&server.endpoint).await;
    let cb = Cb::new(&sdk(&server.endpoint).await);
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo sleeping\n      - sleep 300\n";
    create_project(&cb, "slow", &ecr_uri("1"), spec, no_artifacts()).await;

    // Stop.
    let id = start(&cb, "slow").await;
    wait_phase(&cb, &id, "BUILD").await;
    assert_eq!(containers(dir.path(), Some(&id)).len(), 1, "one container per build, labelled with its id");
    let t0 = Instant::now();
    cb.stop_build().id(&id).send().await.unwrap();
    let b = wait_build(&cb, &id, Duration::from_secs(30)).await;
    assert_eq!(b.build_status(), Some(&StatusType::Stopped));
    assert!(t0.elapsed() < Duration::from_secs(5), "stop took {:?}", t0.elapsed());
    assert!(containers(dir.path(), None).is_empty(), "stop leaves no container");

    // Timeout: 5 "minutes" of 2 s.
    let id = start(&cb, "slow").await;
    let b = wait_build(&cb, &id, Duration::from_secs(60)).await;
    assert_eq!(b.build_status(), Some(&StatusType::TimedOut), "{b:#?}");
    assert_eq!(phase(&b, "BUILD").0, "TIMED_OUT");
    assert!(containers(dir.path(), None).is_empty(), "timeout leaves no container");

    // kill -9 mid-build, then restart.
    let id = start(&cb, "slow").await;
    wait_phase(&cb, &id, "BUILD").await;
    server.kill9();
    assert_eq!(containers(dir.path(), Some(&id)).len(), 1, "the container outlives a kill -9");
    let server = ServerProcess::spawn(dir.path(), &["--executor", "container"]);
    assert!(containers(dir.path(), None).is_empty(), "start-up removes containers of earlier builds");
    let cb = Cb::new(&sdk(&server.endpoint).await);
    let b = cb.batch_get_builds().ids(&id).send().await.unwrap().builds()[0].clone();
    assert_eq!(b.build_status(), Some(&StatusType::Fault));
    drop(server);
}

/// `auto`: a curated image that cannot be had (the Ubuntu standard images are not published)
/// runs on the host, and the build's log says so; an ECR image still runs in a container.
#[tokio::test(flavor = "multi_thread")]
async fn auto_falls_back_to_the_host_for_a_curated_image_only() {
    if !podman_works().await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::start_in(dir.path().to_path_buf(), |o| o.executor = codeyard_codebuild::ExecutorChoice::Auto).await;
    let work = tempfile::tempdir().unwrap();
    push_test_image(&t.endpoint, work.path()).await;
    create_role(&t.endpoint).await;
    let cb = Cb::new(&sdk(&t.endpoint).await);
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"src=$CODEBUILD_SRC_DIR\"\n";
    create_project(&cb, "curated", "aws/codebuild/standard:7.0", spec, no_artifacts()).await;
    create_project(&cb, "from-ecr", &ecr_uri("1"), spec, no_artifacts()).await;
    let id = start(&cb, "curated").await;
    let b = wait_build(&cb, &id, Duration::from_secs(120)).await;
    let log = log_text(&t.endpoint, &b).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{log}");
    assert!(log.contains("Warning: executor auto: the image aws/codebuild/standard:7.0 (public.ecr.aws/codebuild/standard:7.0) cannot be had"), "{log}");
    assert!(log.contains(&format!("src={}", dir.path().display())), "runs on the host: {log}");
    let id = start(&cb, "from-ecr").await;
    let b = wait_build(&cb, &id, Duration::from_secs(120)).await;
    let log = log_text(&t.endpoint, &b).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{log}");
    assert!(log.contains("src=/codebuild/output/src"), "{log}");
    t.assert_no_model_violations();
}

/// privilegedMode: the build's `docker build` and `docker push` work inside the container
/// (podman behind codeyard's wrapper, AWS registry names mapped to codeyard's registry); the
/// same project without it has no `docker` at all.
#[tokio::test(flavor = "multi_thread")]
async fn privileged_builds_have_docker_others_do_not() {
    let Some((_dir, t)) = container_server().await else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    push_test_image(&t.endpoint, work.path()).await;
    push_podman_image(&t.endpoint, work.path()).await;
    create_role(&t.endpoint).await;
    let ecr = aws_sdk_ecr::Client::new(&sdk(&t.endpoint).await);
    ecr.create_repository().repository_name("app").send().await.unwrap();
    let registry = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com");
    let spec = format!(
        r#"version: 0.2
phases:
  build:
    commands:
      - mkdir -p img
      - printf 'FROM {base}\nRUN echo built-in-the-build > /built.txt\n' > img/Dockerfile
      - docker build -t {registry}/app:1 img
      - docker push {registry}/app:1
"#,
        base = ecr_uri("1")
    );
    let cb = Cb::new(&sdk(&t.endpoint).await);
    let podman_image = format!("{registry}/podman-tools:1");
    cb.create_project()
        .name("privileged")
        .source(ProjectSource::builder().r#type(SourceType::NoSource).buildspec(&spec).build().unwrap())
        .artifacts(no_artifacts())
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image(&podman_image)
                .compute_type(ComputeType::BuildGeneral1Small)
                .privileged_mode(true)
                .build()
                .unwrap(),
        )
        .service_role("r")
        .send()
        .await
        .unwrap();
    create_project(&cb, "unprivileged", &podman_image, "version: 0.2\nphases:\n  build:\n    commands:\n      - docker images\n", no_artifacts()).await;
    let id = start(&cb, "privileged").await;
    let b = wait_build(&cb, &id, Duration::from_secs(180)).await;
    let log = log_text(&t.endpoint, &b).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{log}");
    let pushed = ecr.describe_images().repository_name("app").send().await.unwrap();
    assert_eq!(pushed.image_details().len(), 1, "{log}");
    let id = start(&cb, "unprivileged").await;
    let b = wait_build(&cb, &id, Duration::from_secs(60)).await;
    let log = log_text(&t.endpoint, &b).await;
    assert_eq!(b.build_status(), Some(&StatusType::Failed), "{log}");
    assert!(phase(&b, "BUILD").1.contains("docker images. Reason: exit status 127"), "{log}");
}

/// A LOCAL custom cache of a path under the container's `/root` comes back in the next build.
#[tokio::test(flavor = "multi_thread")]
async fn local_cache_of_root_paths_persists_between_container_builds() {
    let Some((_dir, t, _work)) = image_server().await else {
        return;
    };
    let spec = r#"version: 0.2
phases:
  build:
    commands:
      - mkdir -p /root/.cache-test
      - echo "from-build-$CODEBUILD_BUILD_NUMBER" >> /root/.cache-test/seen.txt
      - cat /root/.cache-test/seen.txt
cache:
  paths:
    - /root/.cache-test/**/*
"#;
    let cb = Cb::new(&sdk(&t.endpoint).await);
    create_project(&cb, "cached", &ecr_uri("1"), spec, no_artifacts()).await;
    let cache = aws_sdk_codebuild::types::ProjectCache::builder()
        .r#type(aws_sdk_codebuild::types::CacheType::Local)
        .modes(aws_sdk_codebuild::types::CacheMode::LocalCustomCache)
        .build()
        .unwrap();
    cb.update_project().name("cached").cache(cache).send().await.unwrap();
    for n in 1..=2 {
        let id = start(&cb, "cached").await;
        let b = wait_build(&cb, &id, Duration::from_secs(120)).await;
        let log = log_text(&t.endpoint, &b).await;
        assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{log}");
        assert!(log.contains(&format!("from-build-{n}")), "{log}");
        if n == 2 {
            assert!(log.contains("\nfrom-build-1\nfrom-build-2\n"), "the first build's file came back:\n{log}");
        }
    }
}

/// `runtime-versions`: a version the image's runtimes file declares runs its commands first in
/// INSTALL; one it lacks fails DOWNLOAD_SOURCE as CodeBuild does; an image without the file
/// skips the selection with CodeBuild's warning.
#[tokio::test(flavor = "multi_thread")]
async fn runtime_versions_follow_what_the_image_declares() {
    let Some((_dir, t, work)) = image_server().await else {
        return;
    };
    let runtimes = r#"mkdir -p $r/codebuild/image/config
printf 'version: 0.1\nruntimes:\n  codeyard:\n    versions:\n      1:\n        commands:\n          - echo installing codeyard 1\n      2:\n        commands:\n          - echo installing codeyard 2\n' > $r/codebuild/image/config/runtimes.yml"#;
    push_image(&t.endpoint, work.path(), "runtime-tools", runtimes).await;
    let cb = Cb::new(&sdk(&t.endpoint).await);
    let spec = |v: &str| format!("version: 0.2\nphases:\n  install:\n    runtime-versions:\n      codeyard: {v}\n  build:\n    commands:\n      - echo built\n");
    let with_runtimes = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/runtime-tools:1");
    let run = |name: &'static str, image: String, spec: String| {
        let cb = cb.clone();
        let endpoint = t.endpoint.clone();
        async move {
            create_project(&cb, name, &image, &spec, no_artifacts()).await;
            let id = start(&cb, name).await;
            let b = wait_build(&cb, &id, Duration::from_secs(120)).await;
            let log = log_text(&endpoint, &b).await;
            (b, log)
        }
    };
    let (b, log) = run("runtime-ok", with_runtimes.clone(), spec("2")).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{log}");
    assert!(log.contains("Selecting 'codeyard' runtime version '2' based on manual selections..."), "{log}");
    assert!(log.contains("\ninstalling codeyard 2\n"), "{log}");

    let (b, log) = run("runtime-missing", with_runtimes, spec("9")).await;
    assert_eq!(b.build_status(), Some(&StatusType::Failed), "{log}");
    assert_eq!(
        phase(&b, "DOWNLOAD_SOURCE").1,
        "YAML_FILE_ERROR: Unknown runtime version named '9' of codeyard. This build image has the following versions: 1, 2"
    );

    let (b, log) = run("runtime-none", ecr_uri("1"), spec("2")).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{log}");
    assert!(log.contains(codeyard_codebuild::runtimes::NOT_SUPPORTED), "{log}");
}

async fn create_project_with(cb: &Cb, name: &str, env: ProjectEnvironment, buildspec: &str, role: &str) {
    cb.create_project()
        .name(name)
        .source(ProjectSource::builder().r#type(SourceType::NoSource).buildspec(buildspec).build().unwrap())
        .artifacts(no_artifacts())
        .environment(env)
        .service_role(format!("arn:aws:iam::{ACCOUNT}:role/{role}"))
        .timeout_in_minutes(5)
        .send()
        .await
        .unwrap();
}

/// Image pulls from codeyard's ECR carry a registry token issued as AWS issues it, under
/// `--iam enforce`: SERVICE_ROLE pulls as the service role (a role without ECR's pull actions
/// fails PROVISIONING with CodeBuild's message; with them the build runs without any
/// repository policy), CODEBUILD pulls as `codebuild.amazonaws.com`, which the repository
/// policy must allow (without the policy: PROVISIONING fails, naming the service).
#[tokio::test(flavor = "multi_thread")]
async fn image_pulls_carry_the_token_of_the_pull_credentials_type() {
    let Some((_dir, t, _work)) = image_server().await else {
        return;
    };
    let iam = aws_sdk_iam::Client::new(&sdk(&t.endpoint).await);
    let ecr = aws_sdk_ecr::Client::new(&sdk(&t.endpoint).await);
    let logs_only = allow_policy(&[(&["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], &["*"])]);
    create_service_role(&iam, "no-ecr", "codebuild.amazonaws.com", &logs_only).await;
    let cb = Cb::new(&sdk(&t.endpoint).await);
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - codeyard-image-tool\n";
    let env = |pull: aws_sdk_codebuild::types::ImagePullCredentialsType| {
        ProjectEnvironment::builder()
            .r#type(EnvironmentType::LinuxContainer)
            .image(ecr_uri("1"))
            .compute_type(ComputeType::BuildGeneral1Small)
            .image_pull_credentials_type(pull)
            .build()
            .unwrap()
    };
    use aws_sdk_codebuild::types::ImagePullCredentialsType as Pull;

    // SERVICE_ROLE, a role without ECR's actions: refused before any pull.
    create_project_with(&cb, "role-no-ecr", env(Pull::ServiceRole), spec, "no-ecr").await;
    let b = wait_build(&cb, &start(&cb, "role-no-ecr").await, Duration::from_secs(60)).await;
    let (status, context) = phase(&b, "PROVISIONING");
    assert_eq!((b.build_status(), status.as_str()), (Some(&StatusType::Failed), "FAILED"), "{b:#?}");
    assert!(context.starts_with("BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE: Unable to pull customer's container image. CannotPullContainerError: Error response from daemon: pull access denied for"), "{context}");
    assert!(context.contains(":assumed-role/no-ecr/AWSCodeBuild-") && context.contains("ecr:GetAuthorizationToken"), "{context}");

    // SERVICE_ROLE, the role may pull, and the repository has no policy: the role's token pulls.
    ecr.delete_repository_policy().repository_name(IMAGE_REPO).send().await.unwrap();
    create_project_with(&cb, "role-pulls", env(Pull::ServiceRole), spec, "container-builds").await;
    let b = wait_build(&cb, &start(&cb, "role-pulls").await, Duration::from_secs(120)).await;
    let log = log_text(&t.endpoint, &b).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{log}\n{b:#?}");
    assert!(log.contains("\ntool-from-the-image\n"), "{log}");

    // CODEBUILD without a repository policy for the service: the registry refuses CodeBuild.
    create_project_with(&cb, "codebuild-pulls", env(Pull::Codebuild), spec, "container-builds").await;
    let b = wait_build(&cb, &start(&cb, "codebuild-pulls").await, Duration::from_secs(60)).await;
    let (status, context) = phase(&b, "PROVISIONING");
    assert_eq!(status, "FAILED", "{b:#?}");
    assert!(context.contains("pull access denied for") && context.contains("codebuild.amazonaws.com is not authorized to perform: ecr:BatchGetImage"), "{context}");

    // ... and with the policy AWS requires, it pulls.
    allow_codebuild_pulls(&ecr, IMAGE_REPO).await;
    let b = wait_build(&cb, &start(&cb, "codebuild-pulls").await, Duration::from_secs(120)).await;
    let log = log_text(&t.endpoint, &b).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{log}\n{b:#?}");
    t.assert_no_model_violations();
}

/// `run-as`, top-level and per phase, runs the commands as that user of the image (who may
/// read and write the sources); a user the image lacks fails the phase.
#[tokio::test(flavor = "multi_thread")]
async fn run_as_runs_commands_as_the_images_user() {
    let Some((_dir, t, _work)) = image_server().await else {
        return;
    };
    let cb = Cb::new(&sdk(&t.endpoint).await);
    let spec = r#"version: 0.2
run-as: builder
phases:
  install:
    run-as: root
    commands:
      - echo "install-as-$(id -un)"
      - echo from-root > made-by-root.txt
  build:
    commands:
      - echo "build-as-$(id -un) uid=$(id -u)"
      - cat made-by-root.txt
      - echo from-builder > made-by-builder.txt
"#;
    create_project(&cb, "run-as", &ecr_uri("1"), spec, no_artifacts()).await;
    let b = wait_build(&cb, &start(&cb, "run-as").await, Duration::from_secs(120)).await;
    let log = log_text(&t.endpoint, &b).await;
    assert_eq!(b.build_status(), Some(&StatusType::Succeeded), "{log}\n{b:#?}");
    assert!(log.contains("\ninstall-as-root\n"), "{log}");
    assert!(log.contains("\nbuild-as-builder uid=1000\n"), "{log}");
    assert!(log.contains("\nfrom-root\n"), "{log}");

    let spec = "version: 0.2\nphases:\n  build:\n    run-as: nobody-here\n    commands:\n      - echo never\n";
    create_project(&cb, "run-as-missing", &ecr_uri("1"), spec, no_artifacts()).await;
    let b = wait_build(&cb, &start(&cb, "run-as-missing").await, Duration::from_secs(120)).await;
    let log = log_text(&t.endpoint, &b).await;
    let (status, context) = phase(&b, "BUILD");
    assert_eq!((b.build_status(), status.as_str()), (Some(&StatusType::Failed), "FAILED"), "{log}");
    assert_eq!(context, "COMMAND_EXECUTION_ERROR: Error while executing command: echo never. Reason: user: unknown user nobody-here");
    assert!(!log.contains("\nnever\n"), "{log}");
    t.assert_no_model_violations();
}

/// The podman probe waits for the first container build: a server started and stopped at
/// once runs no container (no `runc init` or `conmon` left), and its health says so.
#[tokio::test(flavor = "multi_thread")]
async fn podman_is_probed_at_the_first_container_build() {
    let Some((dir, t)) = container_server().await else {
        return;
    };
    let health: serde_json::Value = reqwest::get(format!("{}/_codeyard/health", t.endpoint)).await.unwrap().json().await.unwrap();
    assert_eq!(health["builds"]["executor"], "container", "{health}");
    assert!(health["builds"]["detail"].as_str().unwrap().contains("not probed yet"), "{health}");
    assert!(!dir.path().join("codebuild/containers/probe-rootfs").exists(), "no probe ran at start-up");
    t.stop().await;
    assert!(!dir.path().join("codebuild/containers/probe-rootfs").exists());
    let data = dir.path().display().to_string();
    let left = sh(&format!("ps -eo args | grep -F -- '{data}' | grep -E 'conmon|runc' | grep -v grep || true"));
    assert!(left.is_empty(), "processes left: {left}");
}

/// Every id ListBuildsForProject (or, without a project, ListBuilds) lists, page by page, and
/// how many pages it took.
async fn list_all(cb: &Cb, project: Option<&str>, order: aws_sdk_codebuild::types::SortOrderType) -> (Vec<String>, usize) {
    let (mut out, mut token, mut pages) = (Vec::<String>::new(), None::<String>, 0);
    loop {
        let (page, next) = match project {
            Some(p) => {
                let r = cb.list_builds_for_project().project_name(p).sort_order(order.clone()).set_next_token(token.clone()).send().await.unwrap();
                (r.ids().to_vec(), r.next_token().map(str::to_string))
            }
            None => {
                let r = cb.list_builds().sort_order(order.clone()).set_next_token(token.clone()).send().await.unwrap();
                (r.ids().to_vec(), r.next_token().map(str::to_string))
            }
        };
        assert!(page.len() <= 100);
        pages += 1;
        out.extend(page);
        match next {
            Some(n) => token = Some(n),
            None => return (out, pages),
        }
    }
}

/// ListBuilds and ListBuildsForProject read the build index: newest first or ASCENDING,
/// 100 a page with nextToken; BatchDeleteBuilds takes builds out of it; DeleteProject keeps
/// the project's builds listed (as AWS keeps them) while ListBuildsForProject answers
/// ResourceNotFoundException; a data dir whose index is missing is indexed again at start-up.
/// Host builds (the index does not depend on the executor).
#[tokio::test(flavor = "multi_thread")]
async fn build_listings_page_through_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestServer::start_in(dir.path().to_path_buf(), |_| {}).await;
    let iam = aws_sdk_iam::Client::new(&sdk(&t.endpoint).await);
    create_service_role(&iam, "container-builds", "codebuild.amazonaws.com", &codebuild_role_policy()).await;
    let cb = Cb::new(&sdk(&t.endpoint).await);
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n";
    create_project(&cb, "listed", "aws/codebuild/standard:7.0", spec, no_artifacts()).await;
    create_project(&cb, "other", "aws/codebuild/standard:7.0", spec, no_artifacts()).await;
    let mut ids = Vec::new();
    for i in 0..105 {
        let id = start(&cb, if i % 15 == 0 { "other" } else { "listed" }).await;
        ids.push(id);
    }
    for id in &ids {
        wait_build(&cb, id, Duration::from_secs(120)).await;
    }
    let listed: Vec<String> = ids.iter().filter(|i| i.starts_with("listed:")).cloned().collect();
    let all_pages = |project: Option<&'static str>, order| list_all(&cb, project, order);
    use aws_sdk_codebuild::types::SortOrderType::{Ascending, Descending};
    let (newest_first, pages) = all_pages(None, Descending).await;
    assert_eq!(pages, 2, "105 builds are two pages of at most 100");
    assert_eq!(newest_first, ids.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(all_pages(None, Ascending).await.0, ids);
    assert_eq!(all_pages(Some("listed"), Descending).await.0, listed.iter().rev().cloned().collect::<Vec<_>>());
    let bad = cb.list_builds().next_token("not-a-token").send().await.unwrap_err();
    assert_eq!(bad.as_service_error().and_then(|e| e.meta().code()), Some("InvalidInputException"), "{bad:?}");

    // BatchDeleteBuilds takes a build out of both listings.
    let gone = cb.batch_delete_builds().ids(&listed[0]).send().await.unwrap();
    assert_eq!(gone.builds_deleted(), [listed[0].clone()]);
    assert!(!all_pages(None, Ascending).await.0.contains(&listed[0]));
    assert_eq!(all_pages(Some("listed"), Ascending).await.0, listed[1..].to_vec());

    // DeleteProject: its builds stay listed; the project's own listing is gone.
    cb.delete_project().name("other").send().await.unwrap();
    assert_eq!(all_pages(None, Ascending).await.0.len(), 104);
    let err = cb.list_builds_for_project().project_name("other").send().await.unwrap_err();
    assert_eq!(err.as_service_error().and_then(|e| e.meta().code()), Some("ResourceNotFoundException"), "{err:?}");
    t.assert_no_model_violations();

    // A data dir without the index (as before it existed) is indexed at start-up.
    let data = t.stop().await;
    {
        let store = codeyard_store::SqliteStore::open(&data.join("state.db")).await.unwrap();
        use codeyard_store::StateStore;
        let ns = format!("codebuild/{ACCOUNT}/{REGION}/build-index");
        loop {
            let docs = store.list(&ns, "", None, 500).await.unwrap();
            if docs.is_empty() {
                break;
            }
            let mut batch = codeyard_store::Batch::new();
            for d in docs {
                batch = batch.delete(&ns, d.key, codeyard_store::Expect::Any);
            }
            store.commit(batch).await.unwrap();
        }
    }
    let t = TestServer::start_in(data, |_| {}).await;
    let cb = Cb::new(&sdk(&t.endpoint).await);
    let r = cb.list_builds_for_project().project_name("listed").send().await.unwrap();
    assert_eq!(r.ids().first(), listed.last(), "newest first after the rebuild");
    let (after, _) = list_all(&cb, None, Descending).await;
    assert_eq!(after.len(), 104);
    drop(dir);
}

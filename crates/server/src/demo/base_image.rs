//! The demo's base image, built offline from this machine and pushed to codeyard's registry
//! (nothing can be pulled from a public registry here): a static busybox for the shell, and,
//! where the host has a JDK with `jlink`, a Java runtime (`java.base`, `jdk.httpserver`: all
//! the sample service uses) under `/opt/java` with the glibc libraries it links, so the image
//! the seed pipeline bakes really runs the service (`codeyard demo --next` deploys it to ECS).

use super::{aws_err, ignore_exists, run_cmd, which};
use crate::client::AwsClient;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const BUSYBOX_DOCKERFILE: &str = include_str!("../../../../examples/aws-devops-demo/base-image.Dockerfile");
const JAVA_DOCKERFILE: &str = include_str!("../../../../examples/aws-devops-demo/base-java-image.Dockerfile");

/// The busybox applets the images' RUN steps and start script use.
const APPLETS: &[&str] = &["sh", "mkdir", "ls", "cat", "cp", "echo"];

/// The base image pushed for the demo.
pub(super) struct BaseImage {
    /// `<registry host>/<repository>:<tag>`, what the image build's `FROM` names.
    pub reference: String,
    /// The Java runtime's version (`17.0.15`) when the image has one.
    pub java: Option<String>,
    /// Why there is no Java runtime (no `jlink`, or it failed).
    pub no_java: Option<String>,
}

impl BaseImage {
    pub fn describe(&self) -> String {
        match &self.java {
            Some(v) => format!("busybox and a Java {v} runtime made with jlink"),
            None => "busybox".into(),
        }
    }
}

/// Builds the base image (with a Java runtime when `jlink` works) and pushes it.
pub(super) async fn push(client: &AwsClient, registry_host: &str, work: &Path) -> anyhow::Result<BaseImage> {
    let ctx = work.join("base");
    let rootfs = ctx.join("rootfs");
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin)?;
    let busybox = which("busybox").ok_or_else(|| anyhow::anyhow!("busybox is not installed (./dev demo installs it)"))?;
    std::fs::copy(&busybox, bin.join("busybox"))?;
    for c in APPLETS {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(c));
    }
    let java = match which("jlink") {
        Some(jlink) => java_runtime(&jlink, &rootfs).map_err(|e| format!("{e:#}")),
        None => Err("jlink is not on PATH".to_string()),
    };
    let (repository, tag, dockerfile) = match &java {
        Ok(version) => ("base/java", version.split('.').next().unwrap_or("17").to_string(), JAVA_DOCKERFILE),
        Err(_) => ("base/busybox", "1".to_string(), BUSYBOX_DOCKERFILE),
    };
    ignore_exists(client.json("ecr", "AmazonEC2ContainerRegistry_V20150921.CreateRepository", json!({"repositoryName": repository})).await)
        .map_err(aws_err("creating the base image repository"))?;
    std::fs::write(ctx.join("Dockerfile"), dockerfile)?;
    let image = format!("{registry_host}/{repository}:{tag}");
    // Its own storage in the work dir, so nothing of it stays on the machine after the demo.
    let root = ctx.join("storage").display().to_string();
    let runroot = ctx.join("run").display().to_string();
    let buildah = |args: &[&str]| {
        let mut all = vec!["--root", &root, "--runroot", &runroot, "--storage-driver", "vfs"];
        all.extend_from_slice(args);
        run_cmd("buildah", &all)
    };
    buildah(&["bud", "--isolation", "chroot", "-q", "-t", &image, ctx.to_str().unwrap_or_default()])?;
    buildah(&["push", "--tls-verify=false", &image, &format!("docker://{image}")])?;
    let (java, no_java) = match java {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    Ok(BaseImage { reference: image, java, no_java })
}

/// Links a Java runtime into `<rootfs>/opt/java` with `jlink` and copies the shared libraries
/// it needs (and the dynamic loader) to the paths `ldd` resolves them at; answers its version.
fn java_runtime(jlink: &Path, rootfs: &Path) -> anyhow::Result<String> {
    let jlink = jlink.to_str().unwrap_or("jlink");
    let version = run_cmd(jlink, &["--version"])?;
    let java_home = rootfs.join("opt/java");
    run_cmd(
        jlink,
        &[
            "--add-modules",
            "java.base,jdk.httpserver",
            "--strip-debug",
            "--no-header-files",
            "--no-man-pages",
            "--output",
            java_home.to_str().unwrap_or_default(),
        ],
    )?;
    let mut binaries = vec![java_home.join("bin/java")];
    shared_objects(&java_home.join("lib"), &mut binaries)?;
    for lib in linked_libraries(&binaries, &java_home)? {
        let to = rootfs.join(lib.strip_prefix("/").unwrap_or(&lib));
        std::fs::create_dir_all(to.parent().unwrap_or(rootfs))?;
        // The file a symlink names, under the symlink's name (what the loader looks up).
        std::fs::copy(&lib, &to).map_err(|e| anyhow::anyhow!("copying {}: {e}", lib.display()))?;
    }
    // The JVM keeps its perf data under /tmp.
    let tmp = rootfs.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))?;
    Ok(version.trim().to_string())
}

/// Every `.so` file under `dir`.
fn shared_objects(dir: &Path, found: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            shared_objects(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "so") {
            found.push(path);
        }
    }
    Ok(())
}

/// The libraries outside `own` that `binaries` link, as `ldd` resolves them (the loader too).
fn linked_libraries(binaries: &[PathBuf], own: &Path) -> anyhow::Result<BTreeSet<PathBuf>> {
    let mut libs = BTreeSet::new();
    for binary in binaries {
        let listing = run_cmd("ldd", &[binary.to_str().unwrap_or_default()])?;
        for line in listing.lines() {
            // A library of the runtime itself (libjvm.so) resolves at run time by its RUNPATH.
            if let Some(name) = line.split_whitespace().next().filter(|_| line.contains("not found")) {
                anyhow::ensure!(find_under(&own.join("lib"), name), "{}: {name} not found", binary.display());
                continue;
            }
            let paths = line.split_whitespace().filter(|t| t.starts_with('/')).map(PathBuf::from);
            libs.extend(paths.filter(|p| !p.starts_with(own)));
        }
    }
    Ok(libs)
}

fn find_under(dir: &Path, name: &str) -> bool {
    let mut found = Vec::new();
    shared_objects(dir, &mut found).is_ok() && found.iter().any(|f| f.file_name().is_some_and(|n| n == name))
}

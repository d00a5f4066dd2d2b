//! `codeyard images build-standard`: a stand-in for AWS's curated build images, built from
//! Debian packages with mmdebstrap, for machines where AWS's images cannot be pulled (the
//! Ubuntu `aws/codebuild/standard` images are not published at all).
//!
//! It holds what buildspecs use those images for: bash, git, curl, zip/unzip, tar, a JDK,
//! python3 with the aws CLI (from PyPI: Debian's predates `AWS_ENDPOINT_URL`), podman for the
//! `docker` of privileged builds. The root filesystem is imported into the server's own container
//! storage as `localhost/codeyard/standard:latest` (no registry involved, so it works before
//! the server runs), and the curated names are mapped to it in `<data_dir>/codebuild/
//! image-map.json` (entries already there for other names are kept).

use crate::images::map_file;
use std::path::Path;

pub const STANDARD_IMAGE: &str = "localhost/codeyard/standard:latest";

/// The curated names the stand-in answers for.
pub const CURATED_NAMES: &[&str] = &[
    "aws/codebuild/standard:5.0",
    "aws/codebuild/standard:6.0",
    "aws/codebuild/standard:7.0",
    "aws/codebuild/amazonlinux2-x86_64-standard:4.0",
    "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
    "aws/codebuild/amazonlinux-x86_64-standard:5.0",
];

const PACKAGES: &[&str] = &[
    "bash",
    "ca-certificates",
    "coreutils",
    "curl",
    "findutils",
    "git",
    "grep",
    "gzip",
    "sed",
    "tar",
    "unzip",
    "xz-utils",
    "zip",
    "procps",
    "default-jdk-headless",
    "python3",
    "python3-pip",
    // The `docker` of privileged builds: podman behind codeyard's docker wrapper.
    "podman",
    "runc",
    "catatonit",
];

/// The hook that declares the image's runtimes as CodeBuild's images do, in
/// `/codebuild/image/config/runtimes.yml` (see [`crate::runtimes`]): the JDK and python3
/// Debian installed, under the names AWS's images use (`corretto<N>`, `openjdk<N>`, `3.<n>`).
const RUNTIMES_HOOK: &str = r#"J=$(ls "$1/usr/lib/jvm" | grep -o '^java-[0-9]*' | sort -V | tail -1 | cut -d- -f2)
P=$(ls "$1/usr/bin" | grep -o '^python3\.[0-9]*$' | sort -V | tail -1 | sed 's/^python//')
mkdir -p "$1/codebuild/image/config"
{ echo 'version: 0.1'; echo 'runtimes:'
  if [ -n "$J" ]; then echo '  java:'; echo '    versions:'
    for v in corretto$J openjdk$J $J; do echo "      \"$v\":"; echo '        commands:'; echo "          - echo Selected java $J"; done; fi
  if [ -n "$P" ]; then echo '  python:'; echo '    versions:'
    echo "      \"$P\":"; echo '        commands:'; echo "          - echo Selected python $P"; fi
} > "$1/codebuild/image/config/runtimes.yml""#;

/// Builds the image into the server's storage under `data_dir` and maps the curated names.
///
/// The root filesystem is kept in `cache_dir` (keyed by suite and package list), so building
/// the image again for another data dir (each CI acceptance run uses a fresh one) is an import
/// of a few seconds instead of minutes of mmdebstrap. `mirror` defaults to the host's own apt
/// source, so a machine's mirror or proxy is used as apt uses it.
pub async fn build_standard(
    data_dir: &Path,
    suite: &str,
    mirror: Option<&str>,
    cache_dir: &Path,
) -> anyhow::Result<String> {
    let containers = crate::containers_dir(data_dir);
    std::fs::create_dir_all(&containers)?;
    let work = tempfile_dir(data_dir)?;
    let cached = cache_dir.join(format!("standard-{suite}-{}.tar", recipe_digest()));
    let tarball = if cached.is_file() {
        eprintln!("using the cached root filesystem {}", cached.display());
        cached
    } else {
        let mirror = match mirror {
            Some(m) => m.to_string(),
            None => host_apt_mirror().ok_or_else(|| {
                anyhow::anyhow!("no Debian mirror in this machine's apt sources: pass --mirror URL")
            })?,
        };
        // Built straight into the cache under a temporary name, renamed when complete, so a
        // cut-off build is never taken for a cached one; without a usable cache dir, in `work`.
        if std::fs::create_dir_all(cache_dir).is_ok() {
            let partial = cached.with_extension("tar.partial");
            build_rootfs(&work, &partial, suite, &mirror).await?;
            std::fs::rename(&partial, &cached)?;
            cached
        } else {
            let fresh = work.join("rootfs.tar");
            build_rootfs(&work, &fresh, suite, &mirror).await?;
            fresh
        }
    };
    import_and_map(data_dir, &containers, &tarball, &work).await
}

/// A digest of what goes into the root filesystem, so a changed package list is rebuilt.
fn recipe_digest() -> String {
    use sha2::Digest;
    let recipe = format!("{PACKAGES:?} awscli-from-pypi {RUNTIMES_HOOK}");
    hex::encode(&sha2::Sha256::digest(recipe.as_bytes())[..6])
}

/// The first Debian mirror in the host's apt sources (deb822 `URIs:` or a one-line `deb`).
fn host_apt_mirror() -> Option<String> {
    let mut texts = Vec::new();
    for path in ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"] {
        if let Ok(t) = std::fs::read_to_string(path) {
            texts.push(t);
        }
    }
    texts.iter().flat_map(|t| t.lines()).find_map(|line| {
        let line = line.trim();
        let uri = if let Some(rest) = line.strip_prefix("URIs:") {
            rest.split_whitespace().next()
        } else if let Some(rest) = line.strip_prefix("deb ") {
            rest.split_whitespace().find(|w| w.contains("://"))
        } else {
            None
        }?;
        (!uri.contains("security")).then(|| uri.to_string())
    })
}

async fn build_rootfs(work: &Path, tarball: &Path, suite: &str, mirror: &str) -> anyhow::Result<()> {
    // The aws CLI from PyPI (Debian's 2.9 predates AWS_ENDPOINT_URL, which builds rely on),
    // downloaded by this machine's pip (its proxy and certificates), installed offline inside.
    let wheels = work.join("wheels");
    let downloaded = tokio::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--dest",
        ])
        .arg(&wheels)
        .arg("awscli")
        .status()
        .await
        .is_ok_and(|s| s.success());
    let mut packages: Vec<&str> = PACKAGES.to_vec();
    let mut hooks = vec![format!("--customize-hook={RUNTIMES_HOOK}")];
    if downloaded {
        hooks.push(format!(
            "--customize-hook=cp -r '{w}' \"$1/tmp/wheels\" && chroot \"$1\" python3 -m pip install --quiet --no-index --find-links /tmp/wheels --break-system-packages awscli && rm -rf \"$1/tmp/wheels\"",
            w = wheels.display()
        ));
    } else {
        eprintln!(
            "warning: pip cannot download awscli here; using Debian's aws CLI, which ignores AWS_ENDPOINT_URL"
        );
        packages.retain(|p| *p != "python3-pip");
        packages.push("awscli");
    }
    eprintln!(
        "building a {suite} root filesystem with mmdebstrap (packages: {})",
        packages.join(" ")
    );
    let status = tokio::process::Command::new("mmdebstrap")
        .args(["--variant=apt", "--format=tar", "--quiet"])
        .arg(format!("--include={}", packages.join(",")))
        .args(&hooks)
        .args([suite, &tarball.display().to_string(), mirror])
        .status()
        .await
        .map_err(|e| anyhow::anyhow!("cannot run mmdebstrap (apt install mmdebstrap): {e}"))?;
    anyhow::ensure!(status.success(), "mmdebstrap failed ({status})");
    Ok(())
}

async fn import_and_map(data_dir: &Path, containers: &Path, tarball: &Path, work: &Path) -> anyhow::Result<String> {
    eprintln!("importing it as {STANDARD_IMAGE}");
    // The storage's tmpdir and runroot, outside the data dir when its paths are too long there.
    let _tmpdir = codeyard_podman::PrivateTmpdir::open(containers).map_err(anyhow::Error::msg)?;
    let out = tokio::process::Command::new("podman")
        .args(crate::container::storage_options(containers))
        .arg("import")
        .args([
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ])
        .args(["--change", "ENV LANG=C.UTF-8"])
        .args(["--change", "ENV JAVA_HOME=/usr/lib/jvm/default-java"])
        .args(["--change", "CMD [\"/bin/bash\"]"])
        .arg(tarball)
        .arg(STANDARD_IMAGE)
        .output()
        .await?;
    let _ = std::fs::remove_dir_all(work);
    anyhow::ensure!(
        out.status.success(),
        "podman import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = map_file(data_dir);
    let mut map: serde_json::Map<String, serde_json::Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    for name in CURATED_NAMES {
        map.insert(name.to_string(), serde_json::json!(STANDARD_IMAGE));
    }
    std::fs::write(&path, serde_json::to_string_pretty(&map)?)?;
    Ok(format!(
        "{STANDARD_IMAGE} is in {}; {} now map to it ({})",
        containers.display(),
        CURATED_NAMES.join(", "),
        path.display()
    ))
}

fn tempfile_dir(data_dir: &Path) -> std::io::Result<std::path::PathBuf> {
    let dir = data_dir
        .join("codebuild")
        .join(format!("standard-build-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    /// The runtimes hook, run on a root with a JDK and a python3 as Debian lays them out,
    /// declares them under AWS's names.
    #[test]
    fn the_runtimes_hook_declares_the_jdk_and_python() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("usr/lib/jvm/java-17-openjdk-amd64")).unwrap();
        std::fs::create_dir_all(root.path().join("usr/bin")).unwrap();
        for f in ["python3", "python3.11", "python3.11-config"] {
            std::fs::write(root.path().join("usr/bin").join(f), "").unwrap();
        }
        let ok = std::process::Command::new("sh")
            .args(["-c", super::RUNTIMES_HOOK, "hook"])
            .arg(root.path())
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let text = std::fs::read_to_string(root.path().join("codebuild/image/config/runtimes.yml")).unwrap();
        let r = crate::runtimes::Runtimes::parse(&text).unwrap();
        let want = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
        assert_eq!(r.select(&want("java", "corretto17")).commands, vec!["echo Selected java 17"], "{text}");
        assert_eq!(r.select(&want("python", "3.x")).commands, vec!["echo Selected python 3.11"], "{text}");
        assert!(r.select(&want("java", "corretto21")).error.is_some());
    }
}

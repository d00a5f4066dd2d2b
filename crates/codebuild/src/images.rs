//! Which image a build runs in: from `environment.image` as users write it to a reference
//! podman can pull.
//!
//! 1. Images in codeyard's ECR, by any form of their URI: `<acct>.dkr.ecr.<region>.amazonaws.com/
//!    repo:tag` (also `.com.cn`), the registry's own host (`localhost:4566/repo`, `127.0.0.1:4566/
//!    repo`), with a tag or an `@sha256:` digest. They are pulled from codeyard's registry over
//!    plain HTTP (`--tls-verify=false`).
//! 2. AWS's curated names (`aws/codebuild/standard:7.0`, ...) through the image map: entries
//!    of `CODEYARD_IMAGE_MAP` (`name=ref,name=ref`), then `<data_dir>/codebuild/image-map.json`
//!    (`{"aws/codebuild/standard:7.0": "localhost:4566/codeyard/standard:latest"}`, written by
//!    `codeyard images build-standard`), then the default: the public image AWS publishes under
//!    `public.ecr.aws/codebuild/<name>` (it exists for the Amazon Linux images; the Ubuntu
//!    `standard` images are not published, so they need a map entry).
//! 3. Anything else is pulled by podman as given.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A reference podman can pull, and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedImage {
    /// What podman pulls and runs.
    pub reference: String,
    /// Pulled from codeyard's own registry (plain HTTP).
    pub local_registry: bool,
    /// The curated name it was mapped from, if any.
    pub curated: Option<String>,
    /// How ECR's pull spec names it (the hub's `ContainerImages::pull_spec`): the ECR URI as
    /// written (its account and region name the repository), else the reference.
    pub pull_name: String,
}

pub struct ImageResolver {
    /// `host:port` of codeyard's registry as podman on this machine reaches it.
    pub registry_host: String,
    /// `<data_dir>/codebuild/image-map.json`.
    pub map_file: PathBuf,
}

pub const CURATED_PREFIX: &str = "aws/codebuild/";

impl ImageResolver {
    pub fn new(public_endpoint: &str, data_dir: &Path) -> ImageResolver {
        let host = public_endpoint
            .trim_end_matches('/')
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string();
        ImageResolver {
            registry_host: host,
            map_file: map_file(data_dir),
        }
    }

    /// The user's image map (environment first, then the file).
    pub fn map(&self) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = std::fs::read_to_string(&self.map_file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if let Ok(spec) = std::env::var("CODEYARD_IMAGE_MAP") {
            for entry in spec.split(',').filter(|e| !e.trim().is_empty()) {
                if let Some((k, v)) = entry.split_once('=') {
                    map.insert(k.trim().to_string(), v.trim().to_string());
                }
            }
        }
        map
    }

    pub fn resolve(&self, image: &str) -> Result<ResolvedImage, String> {
        let image = image.trim();
        if image.is_empty() {
            return Err("the project's environment names no image".into());
        }
        if image.starts_with(CURATED_PREFIX) {
            let target = self.map().get(image).cloned().unwrap_or_else(|| {
                format!(
                    "public.ecr.aws/codebuild/{}",
                    &image[CURATED_PREFIX.len()..]
                )
            });
            if target.starts_with(CURATED_PREFIX) {
                return Err(format!(
                    "the image map points {image} at another curated name ({target})"
                ));
            }
            let mut r = self.resolve(&target)?;
            r.curated = Some(image.to_string());
            return Ok(r);
        }
        let own = |rest: &str, pull_name: String| ResolvedImage {
            reference: format!("{}/{rest}", self.registry_host),
            local_registry: true,
            curated: None,
            pull_name,
        };
        if let Some(rest) = strip_ecr_host(image) {
            return Ok(own(rest, image.to_string()));
        }
        let (host, rest) = image.split_once('/').unwrap_or(("", image));
        if !host.is_empty() && self.is_own_host(host) {
            return Ok(own(rest, format!("{}/{rest}", self.registry_host)));
        }
        Ok(ResolvedImage {
            reference: image.to_string(),
            local_registry: false,
            curated: None,
            pull_name: image.to_string(),
        })
    }

    /// `localhost:PORT`, `127.0.0.1:PORT`, `[::1]:PORT` with codeyard's port.
    fn is_own_host(&self, host: &str) -> bool {
        let port = |h: &str| h.rsplit_once(':').map(|(_, p)| p.to_string());
        let name = |h: &str| {
            h.rsplit_once(':')
                .map(|(n, _)| n.to_string())
                .unwrap_or_else(|| h.to_string())
        };
        if host == self.registry_host {
            return true;
        }
        let loopback = |n: &str| matches!(n, "localhost" | "127.0.0.1" | "[::1]");
        port(host).is_some()
            && port(host) == port(&self.registry_host)
            && loopback(&name(host))
            && loopback(&name(&self.registry_host))
    }
}

/// The ECR repository ARN of an image the user named in codeyard's ECR (by an ECR URI or the
/// registry's own host), for the service role's pull permissions; `None` for curated names
/// (AWS pulls those with its own credentials) and other registries. `account` and `region`
/// are the build's, used when the URI does not name them.
pub fn ecr_repository(resolver: &ImageResolver, image: &str, account: &str, region: &str) -> Option<String> {
    let image = image.trim();
    if image.starts_with(CURATED_PREFIX) {
        return None;
    }
    let resolved = resolver.resolve(image).ok()?;
    if !resolved.local_registry {
        return None;
    }
    let (host, rest) = image.split_once('/')?;
    let (acct, reg) = match strip_ecr_host(image) {
        Some(_) => {
            let mut parts = host.split('.');
            let a = parts.next().unwrap_or(account);
            (a, parts.nth(2).unwrap_or(region))
        }
        None => (account, region),
    };
    let name = rest.split('@').next().unwrap_or(rest);
    let name = match name.rsplit_once(':') {
        Some((n, tag)) if !tag.contains('/') => n,
        _ => name,
    };
    Some(format!("arn:aws:ecr:{reg}:{acct}:repository/{name}"))
}

pub fn map_file(data_dir: &Path) -> PathBuf {
    data_dir.join("codebuild").join("image-map.json")
}

/// `<12 digits>.dkr.ecr.<region>.amazonaws.com[.cn]/rest` → `rest`.
fn strip_ecr_host(image: &str) -> Option<&str> {
    let (host, rest) = image.split_once('/')?;
    let mut parts = host.split('.');
    let account = parts.next()?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if parts.next()? != "dkr" || parts.next()? != "ecr" {
        return None;
    }
    let _region = parts.next()?;
    let tail: Vec<&str> = parts.collect();
    match tail.as_slice() {
        ["amazonaws", "com"] | ["amazonaws", "com", "cn"] => Some(rest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(dir: &Path) -> ImageResolver {
        ImageResolver::new("http://localhost:4566", dir)
    }

    #[test]
    fn ecr_uris_go_to_codeyards_registry() {
        let d = tempfile::tempdir().unwrap();
        let r = resolver(d.path());
        for (given, want) in [
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1",
                "localhost:4566/app:1",
            ),
            (
                "000000000000.dkr.ecr.cn-north-1.amazonaws.com.cn/team/app",
                "localhost:4566/team/app",
            ),
            (
                "localhost:4566/app@sha256:abcd",
                "localhost:4566/app@sha256:abcd",
            ),
            ("127.0.0.1:4566/app:2", "localhost:4566/app:2"),
        ] {
            let got = r.resolve(given).unwrap();
            assert_eq!(got.reference, want, "{given}");
            assert!(got.local_registry);
        }
        let other = r.resolve("docker.io/library/alpine:3").unwrap();
        assert_eq!(other.reference, "docker.io/library/alpine:3");
        assert!(!other.local_registry);
        assert!(!r.resolve("localhost:5000/x").unwrap().local_registry);
        assert!(
            !r.resolve("123.dkr.ecr.eu-west-1.amazonaws.com/x")
                .unwrap()
                .local_registry
        );
    }

    #[test]
    fn ecr_images_name_their_repository() {
        let d = tempfile::tempdir().unwrap();
        let r = resolver(d.path());
        let repo = |i: &str| ecr_repository(&r, i, "000000000000", "eu-west-1");
        assert_eq!(
            repo("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:1").as_deref(),
            Some("arn:aws:ecr:us-east-1:123456789012:repository/team/app")
        );
        assert_eq!(
            repo("localhost:4566/app@sha256:abcd").as_deref(),
            Some("arn:aws:ecr:eu-west-1:000000000000:repository/app")
        );
        assert_eq!(repo("aws/codebuild/standard:7.0"), None);
        assert_eq!(repo("docker.io/library/alpine:3"), None);
    }

    #[test]
    fn curated_names_use_the_map_then_public_ecr() {
        let d = tempfile::tempdir().unwrap();
        let r = resolver(d.path());
        let al = r
            .resolve("aws/codebuild/amazonlinux2-x86_64-standard:5.0")
            .unwrap();
        assert_eq!(
            al.reference,
            "public.ecr.aws/codebuild/amazonlinux2-x86_64-standard:5.0"
        );
        assert_eq!(
            al.curated.as_deref(),
            Some("aws/codebuild/amazonlinux2-x86_64-standard:5.0")
        );
        std::fs::create_dir_all(d.path().join("codebuild")).unwrap();
        std::fs::write(
            map_file(d.path()),
            r#"{"aws/codebuild/standard:7.0": "000000000000.dkr.ecr.eu-west-1.amazonaws.com/codeyard/standard:latest"}"#,
        )
        .unwrap();
        let std7 = r.resolve("aws/codebuild/standard:7.0").unwrap();
        assert_eq!(std7.reference, "localhost:4566/codeyard/standard:latest");
        assert!(std7.local_registry);
        assert!(r.resolve("").is_err());
    }
}

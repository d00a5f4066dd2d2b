//! Build caches: the buildspec's `cache.paths` kept between builds of a project.
//!
//! * LOCAL with `LOCAL_CUSTOM_CACHE` (or `LOCAL_SOURCE_CACHE`): a directory per path under
//!   `<data_dir>/codebuild/cache/<account>/<region>/<project>/`.
//! * S3: one zip at `<location>/codeyard-cache.zip` (location is `bucket[/prefix]`).
//!
//! A path is cached from its directory part before the first glob (`/root/.m2/**/*` caches
//! `/root/.m2`); `/root/` means the build's HOME, and relative paths are in the source dir.

use crate::artifacts::{self, Selected};
use crate::build::BuildRecord;
use crate::buildspec::Buildspec;
use crate::io::{put_file, scratch_file};
use codeyard_api::codebuild::CacheType;
use codeyard_core::RequestContext;
use codeyard_wire::Platform;
use std::path::{Path, PathBuf};

enum Store {
    Local(PathBuf),
    S3 { bucket: String, key: String },
}

pub struct Cache {
    store: Store,
    bases: Vec<PathBuf>,
    platform: Platform,
    scratch: PathBuf,
}

fn base_of(pattern: &str, src: &Path, home: &Path) -> PathBuf {
    let mut kept = Vec::new();
    for part in pattern.split('/') {
        if part.contains(['*', '?', '[', '{']) {
            break;
        }
        kept.push(part);
    }
    let dir = kept.join("/");
    if let Some(rest) = dir
        .strip_prefix("/root")
        .or_else(|| dir.strip_prefix("~"))
        .or_else(|| dir.strip_prefix("$HOME"))
    {
        home.join(rest.trim_start_matches('/'))
    } else if dir.starts_with('/') {
        PathBuf::from(dir)
    } else {
        src.join(dir)
    }
}

async fn cp_contents(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    let out = tokio::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

impl Cache {
    pub fn new(
        platform: &Platform,
        b: &BuildRecord,
        spec: &Buildspec,
        src: &Path,
        home: &Path,
    ) -> Option<Cache> {
        let paths = spec
            .cache
            .as_ref()
            .map(|c| c.paths.clone())
            .unwrap_or_default();
        if paths.is_empty() {
            return None;
        }
        let store = match b.config.cache.r#type {
            CacheType::Local => Store::Local(
                platform
                    .config
                    .data_dir
                    .join("codebuild")
                    .join("cache")
                    .join(&b.account)
                    .join(&b.region)
                    .join(&b.project_name),
            ),
            CacheType::S3 => {
                let loc = b.config.cache.location.as_deref().unwrap_or("").trim_matches('/');
                let (bucket, prefix) = loc.split_once('/').unwrap_or((loc, ""));
                let key = if prefix.is_empty() {
                    "codeyard-cache.zip".to_string()
                } else {
                    format!("{prefix}/codeyard-cache.zip")
                };
                Store::S3 {
                    bucket: bucket.to_string(),
                    key,
                }
            }
            _ => return None,
        };
        let bases = paths.iter().map(|p| base_of(p, src, home)).collect();
        Some(Cache {
            store,
            bases,
            platform: platform.clone(),
            scratch: home.parent().unwrap_or(home).join("scratch"),
        })
    }

    /// The cached paths under `home` (`/root/...` in the buildspec), relative to it.
    pub fn home_paths(&self, home: &Path) -> Vec<PathBuf> {
        self.bases
            .iter()
            .filter_map(|b| b.strip_prefix(home).ok())
            .filter(|r| !r.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .collect()
    }

    /// The script a container build runs to move cached paths between the build's home on the
    /// host (`home`, which restore and save use) and the container's own `/root`: `inward`
    /// before the first phase, outward after the last.
    pub fn container_sync_script(&self, home: &Path, inward: bool) -> Option<String> {
        let paths = self.home_paths(home);
        if paths.is_empty() {
            return None;
        }
        let mut script = String::from("set -e\n");
        for rel in paths {
            let host = crate::script::single_quote(&home.join(&rel).display().to_string());
            let inside = crate::script::single_quote(&Path::new("/root").join(&rel).display().to_string());
            script.push_str(&if inward {
                format!("if [ -d {host} ]; then mkdir -p {inside} && cp -a {host}/. {inside}/; fi\n")
            } else {
                format!("if [ -d {inside} ]; then rm -rf {host} && mkdir -p {host} && cp -a {inside}/. {host}/; fi\n")
            });
        }
        Some(script)
    }

    pub async fn restore(&self, ctx: &RequestContext) -> Result<(), String> {
        let from = match &self.store {
            Store::Local(dir) => dir.clone(),
            Store::S3 { bucket, key } => {
                let objects = self.platform.hub.objects().map_err(|e| e.message)?;
                if objects
                    .head_object(ctx, bucket, key, None)
                    .await
                    .map_err(|e| e.message)?
                    .is_none()
                {
                    return Ok(());
                }
                let zip = scratch_file(&self.scratch, "cache.zip");
                objects
                    .get_object_to_file(ctx, bucket, key, None, &zip)
                    .await
                    .map_err(|e| e.message)?;
                let dir = scratch_file(&self.scratch, "cache");
                artifacts::extract_zip(&zip, &dir).map_err(|e| e.to_string())?;
                dir
            }
        };
        for (i, base) in self.bases.iter().enumerate() {
            let cached = from.join(i.to_string());
            if cached.is_dir() {
                cp_contents(&cached, base).await?;
            }
        }
        Ok(())
    }

    pub async fn save(&self, ctx: &RequestContext) -> Result<(), String> {
        match &self.store {
            Store::Local(dir) => {
                for (i, base) in self.bases.iter().enumerate() {
                    if !base.is_dir() {
                        continue;
                    }
                    // Copy aside, then swap: a crash never leaves a half-written cache entry.
                    let tmp = dir.join(format!("{i}.tmp"));
                    let _ = std::fs::remove_dir_all(&tmp);
                    cp_contents(base, &tmp).await?;
                    let _ = std::fs::remove_dir_all(dir.join(i.to_string()));
                    std::fs::rename(&tmp, dir.join(i.to_string())).map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Store::S3 { bucket, key } => {
                let mut files = Vec::new();
                for (i, base) in self.bases.iter().enumerate() {
                    let spec = crate::buildspec::ArtifactSpec {
                        files: vec!["**/*".into()],
                        ..Default::default()
                    };
                    if base.is_dir() {
                        for f in artifacts::select(base, &spec)? {
                            files.push(Selected {
                                name: format!("{i}/{}", f.name),
                                path: f.path,
                            });
                        }
                    }
                }
                let zip = scratch_file(&self.scratch, "cache-out.zip");
                artifacts::write_zip(&files, &zip).map_err(|e| e.to_string())?;
                put_file(&self.platform, ctx, (bucket, key), &zip, None).await
            }
        }
    }
}

//! Which files a buildspec's `artifacts` (or `reports`) section selects, and zip in and out.
//!
//! Globs follow AWS's documented forms (`file`, `dir/file`, `dir/*`, `dir/**/*`, `**/*`):
//! `*` stays within one directory, `**` crosses them. Paths are relative to the source
//! directory, or to `base-directory` (whose own path is then left out of the archive);
//! `discard-paths` keeps only file names; `exclude-paths` removes matches.

use crate::buildspec::ArtifactSpec;
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

fn glob(pattern: &str) -> Result<Glob, String> {
    let p = pattern.trim_start_matches("./");
    GlobBuilder::new(p)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("invalid pattern '{pattern}': {e}"))
}

fn set(patterns: &[String]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(glob(p)?);
        // A plain path naming a directory selects everything under it.
        if !p.contains(['*', '?', '[', '{']) {
            b.add(glob(&format!("{}/**", p.trim_end_matches('/')))?);
        }
    }
    b.build().map_err(|e| e.to_string())
}

/// One selected file: where it is and its path inside the artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    pub path: PathBuf,
    pub name: String,
}

fn relative_files(root: &Path) -> Vec<(PathBuf, String)> {
    walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| !e.file_type().is_dir())
        .filter_map(|e| {
            let rel = e
                .path()
                .strip_prefix(root)
                .ok()?
                .to_string_lossy()
                .replace('\\', "/");
            Some((e.path().to_path_buf(), rel))
        })
        .collect()
}

/// The files a section selects under `src_dir`, in a stable order, without duplicates.
pub fn select(src_dir: &Path, spec: &ArtifactSpec) -> Result<Vec<Selected>, String> {
    let roots: Vec<PathBuf> = match &spec.base_directory {
        None => vec![src_dir.to_path_buf()],
        Some(base) if base.contains(['*', '?', '[']) => {
            let g = glob(base.trim_end_matches('/'))?.compile_matcher();
            walkdir::WalkDir::new(src_dir)
                .sort_by_file_name()
                .into_iter()
                .flatten()
                .filter(|e| e.file_type().is_dir())
                .filter(|e| {
                    e.path()
                        .strip_prefix(src_dir)
                        .is_ok_and(|r| !r.as_os_str().is_empty() && g.is_match(r))
                })
                .map(|e| e.path().to_path_buf())
                .collect()
        }
        Some(base) => vec![src_dir.join(base.trim_start_matches("./").trim_end_matches('/'))],
    };
    let include = set(&spec.files)?;
    let exclude = set(&spec.exclude_paths)?;
    let mut out: Vec<Selected> = Vec::new();
    for root in roots {
        for (path, rel) in relative_files(&root) {
            if !include.is_match(&rel) || exclude.is_match(&rel) {
                continue;
            }
            let name = if spec.discard_paths {
                rel.rsplit('/').next().unwrap_or(&rel).to_string()
            } else {
                rel
            };
            if !out.iter().any(|s| s.name == name) {
                out.push(Selected { path, name });
            }
        }
    }
    Ok(out)
}

/// Writes the files into a new zip at `dest` (deflated, unix modes kept).
pub fn write_zip(files: &[Selected], dest: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = dest.with_extension("zip.tmp");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&tmp)?);
    for f in files {
        let mode = std::fs::metadata(&f.path)?.permissions().mode();
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(mode & 0o777)
            .large_file(std::fs::metadata(&f.path)?.len() >= u32::MAX as u64);
        zip.start_file(f.name.as_str(), opts)
            .map_err(std::io::Error::other)?;
        let mut input = std::fs::File::open(&f.path)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            zip.write_all(&buf[..n])?;
        }
    }
    let file = zip.finish().map_err(std::io::Error::other)?;
    file.sync_all()?;
    std::fs::rename(tmp, dest)
}

/// Extracts a zip into `dest` (entries that would escape it are refused by the zip crate).
pub fn extract_zip(zip_path: &Path, dest: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dest)?;
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(zip_path)?).map_err(std::io::Error::other)?;
    archive.extract(dest).map_err(std::io::Error::other)
}

/// Extracts a downloaded zip into `dest` off the async threads, then removes the zip.
pub async fn extract_downloaded_zip(zip_path: PathBuf, dest: PathBuf) -> std::io::Result<()> {
    let extracted = tokio::task::spawn_blocking(move || {
        let done = extract_zip(&zip_path, &dest);
        let _ = std::fs::remove_file(&zip_path);
        done
    })
    .await;
    extracted.map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path, files: &[&str]) {
        for f in files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
    }

    fn names(v: Vec<Selected>) -> Vec<String> {
        v.into_iter().map(|s| s.name).collect()
    }

    #[test]
    fn globs_base_directory_discard_and_exclude() {
        let d = tempfile::tempdir().unwrap();
        tree(
            d.path(),
            &[
                "a.txt",
                "out/x/1.class",
                "out/x/y/2.class",
                "out/readme.md",
                "src/A.java",
            ],
        );
        let spec = |files: &[&str]| ArtifactSpec {
            files: files.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(
            names(select(d.path(), &spec(&["*"])).unwrap()),
            vec!["a.txt"]
        );
        assert_eq!(
            names(select(d.path(), &spec(&["out/*"])).unwrap()),
            vec!["out/readme.md"]
        );
        assert_eq!(
            names(select(d.path(), &spec(&["out"])).unwrap()),
            vec!["out/readme.md", "out/x/1.class", "out/x/y/2.class"]
        );
        let mut s = spec(&["**/*.class"]);
        s.base_directory = Some("out".into());
        assert_eq!(
            names(select(d.path(), &s).unwrap()),
            vec!["x/1.class", "x/y/2.class"]
        );
        s.discard_paths = true;
        assert_eq!(
            names(select(d.path(), &s).unwrap()),
            vec!["1.class", "2.class"]
        );
        let mut s = spec(&["**/*"]);
        s.exclude_paths = vec!["out/**/*".into(), "src/*".into()];
        assert_eq!(names(select(d.path(), &s).unwrap()), vec!["a.txt"]);
    }

    #[test]
    fn zip_round_trip() {
        let d = tempfile::tempdir().unwrap();
        tree(d.path(), &["in/a/b.txt", "in/c.txt"]);
        let files = select(
            &d.path().join("in"),
            &ArtifactSpec {
                files: vec!["**/*".into()],
                ..Default::default()
            },
        )
        .unwrap();
        write_zip(&files, &d.path().join("o.zip")).unwrap();
        extract_zip(&d.path().join("o.zip"), &d.path().join("x")).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("x/a/b.txt")).unwrap(),
            "in/a/b.txt"
        );
    }
}

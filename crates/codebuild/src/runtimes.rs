//! `phases.install.runtime-versions`, checked against what the build image declares.
//!
//! CodeBuild's curated images declare their runtimes in `/codebuild/image/config/runtimes.yml`
//! (`runtimes: <name>: versions: <version>: commands: [...]`). A selection the image provides
//! is honoured: its commands run first in INSTALL, and the log says
//! `Selecting '<name>' runtime version '<version>' based on manual selections...`; one it does not
//! provide fails DOWNLOAD_SOURCE with `YAML_FILE_ERROR: Unknown runtime version named '<v>' of
//! <name>. This build image has the following versions: ...`, as on AWS. An image without the
//! file (a custom image, or the host) skips the selection with CodeBuild's warning.

use serde_json::Value;

/// Where an image declares its runtimes.
pub const RUNTIMES_FILE: &str = "/codebuild/image/config/runtimes.yml";

/// The warning for an image that declares no runtimes.
pub const NOT_SUPPORTED: &str =
    "Skipping install of runtimes. Runtime version selection is not supported by this build image.";

/// An image's runtimes: name -> (version -> commands), in the file's order.
#[derive(Debug, Default, PartialEq)]
pub struct Runtimes(pub Vec<(String, Vec<(String, Vec<String>)>)>);

/// What a selection adds to the build: log lines and INSTALL's first commands, or (`error`)
/// CodeBuild's message for a runtime or version the image does not provide.
#[derive(Debug, Default, PartialEq)]
pub struct Selection {
    pub notes: Vec<String>,
    pub commands: Vec<String>,
    pub error: Option<String>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Runtimes {
    pub fn parse(yaml: &str) -> Result<Runtimes, String> {
        let doc: Value = serde_saphyr::from_str(yaml).map_err(|e| format!("invalid {RUNTIMES_FILE}: {e}"))?;
        let mut out = Vec::new();
        for (name, body) in doc["runtimes"].as_object().into_iter().flatten() {
            let mut versions = Vec::new();
            for (version, v) in body["versions"].as_object().into_iter().flatten() {
                let commands = v["commands"].as_array().into_iter().flatten().filter_map(text).collect();
                versions.push((version.clone(), commands));
            }
            out.push((name.clone(), versions));
        }
        Ok(Runtimes(out))
    }

    /// The version `wanted` names among `versions` (`default` excluded): itself, `latest`
    /// (the highest), or `<prefix>.x` (the highest starting with `<prefix>`).
    fn find<'a>(versions: &'a [(String, Vec<String>)], wanted: &str) -> Option<&'a (String, Vec<String>)> {
        let real = || versions.iter().filter(|(v, _)| v != "default");
        if let Some(exact) = real().find(|(v, _)| v == wanted) {
            return Some(exact);
        }
        let prefix = match wanted {
            "latest" => "",
            w => w.strip_suffix(".x").or_else(|| w.strip_suffix('x'))?,
        };
        real().filter(|(v, _)| v.starts_with(prefix)).max_by(|a, b| natural(&a.0).cmp(&natural(&b.0)))
    }

    /// The selections of `wanted` (name, version), up to the first the image does not provide.
    pub fn select(&self, wanted: &[(String, String)]) -> Selection {
        let mut sel = Selection::default();
        if let Err(e) = self.select_into(wanted, &mut sel) {
            sel.error = Some(e);
        }
        sel
    }

    fn select_into(&self, wanted: &[(String, String)], sel: &mut Selection) -> Result<(), String> {
        for (name, version) in wanted {
            let Some((_, versions)) = self.0.iter().find(|(n, _)| n == name) else {
                let names: Vec<&str> = self.0.iter().map(|(n, _)| n.as_str()).collect();
                return Err(format!(
                    "Unknown runtime named '{name}'. This build image has the following runtimes: {}",
                    names.join(", ")
                ));
            };
            sel.notes.push(format!("Selecting '{name}' runtime version '{version}' based on manual selections..."));
            let Some((_, commands)) = Self::find(versions, version) else {
                let list: Vec<&str> = versions.iter().map(|(v, _)| v.as_str()).filter(|v| *v != "default").collect();
                return Err(format!(
                    "Unknown runtime version named '{version}' of {name}. This build image has the following versions: {}",
                    list.join(", ")
                ));
            };
            sel.commands.extend(commands.iter().cloned());
        }
        Ok(())
    }
}

/// A version as numbers where it has them (`3.10` after `3.9`).
fn natural(v: &str) -> Vec<(u64, String)> {
    v.split('.')
        .map(|p| {
            let digits: String = p.chars().filter(|c| c.is_ascii_digit()).collect();
            (digits.parse().unwrap_or(0), p.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "version: 0.1\nruntimes:\n  java:\n    versions:\n      corretto17:\n        commands:\n          - echo java 17\n      corretto21:\n        commands:\n          - echo java 21\n      default:\n        commands:\n          - echo default\n  python:\n    versions:\n      3.9:\n        commands: [echo py39]\n      3.11:\n        commands: [echo py311]\n";

    fn want(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn provided_versions_are_selected() {
        let r = Runtimes::parse(FILE).unwrap();
        let s = r.select(&want(&[("java", "corretto21"), ("python", "3.x")]));
        assert_eq!(s.error, None);
        assert_eq!(s.commands, vec!["echo java 21", "echo py311"]);
        assert_eq!(s.notes[0], "Selecting 'java' runtime version 'corretto21' based on manual selections...");
        assert_eq!(r.select(&want(&[("python", "latest")])).commands, vec!["echo py311"]);
        assert_eq!(r.select(&want(&[("python", "3.9")])).commands, vec!["echo py39"]);
    }

    #[test]
    fn missing_ones_get_codebuilds_message() {
        let r = Runtimes::parse(FILE).unwrap();
        assert_eq!(
            r.select(&want(&[("java", "corretto8")])).error.unwrap(),
            "Unknown runtime version named 'corretto8' of java. This build image has the following versions: corretto17, corretto21"
        );
        assert_eq!(
            r.select(&want(&[("nodejs", "18")])).error.unwrap(),
            "Unknown runtime named 'nodejs'. This build image has the following runtimes: java, python"
        );
    }
}

//! The buildspec (versions 0.1 and 0.2) as AWS reads it.
//!
//! Parsed leniently the way AWS's agent is lenient: YAML 1.1 booleans (`yes`/`no`/`on`/`off`)
//! arrive as strings from a YAML 1.2 parser and are accepted wherever AWS takes a boolean;
//! `version` may be a number or a string; a command may be a number (`- 42`) and is then
//! taken as its text. Anything AWS would reject (no version, no phases and no artifacts, an
//! unknown phase name) gives a [`BuildspecError`] whose text names the problem, which the build
//! shows as its DOWNLOAD_SOURCE context (`YAML_FILE_ERROR`).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct BuildspecError(pub String);

impl std::fmt::Display for BuildspecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The four command phases, in the order they run.
pub const PHASES: [(&str, &str); 4] = [
    ("install", "INSTALL"),
    ("pre_build", "PRE_BUILD"),
    ("build", "BUILD"),
    ("post_build", "POST_BUILD"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    #[default]
    Abort,
    Continue,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phase {
    pub commands: Vec<String>,
    pub finally: Vec<String>,
    pub on_failure: OnFailure,
    pub run_as: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArtifactSpec {
    pub files: Vec<String>,
    pub name: Option<String>,
    pub discard_paths: bool,
    pub base_directory: Option<String>,
    pub exclude_paths: Vec<String>,
    pub enable_symlinks: bool,
    pub s3_prefix: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportSpec {
    /// The key under `reports:`: a name (group `<project>-<name>`) or a report group ARN.
    pub name: String,
    pub files: Vec<String>,
    pub base_directory: Option<String>,
    pub discard_paths: bool,
    pub file_format: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheSpec {
    pub paths: Vec<String>,
    pub key: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buildspec {
    /// "0.1" or "0.2".
    pub version: String,
    pub shell: Option<String>,
    pub variables: Vec<(String, String)>,
    pub parameter_store: Vec<(String, String)>,
    pub secrets_manager: Vec<(String, String)>,
    pub exported_variables: Vec<String>,
    pub git_credential_helper: bool,
    pub run_as: Option<String>,
    /// `phases.install.runtime-versions`: (runtime, version), see [`crate::runtimes`].
    pub runtime_versions: Vec<(String, String)>,
    /// Indexed like [`PHASES`]; a phase absent from the file has no commands.
    pub phases: [Phase; 4],
    pub artifacts: Option<ArtifactSpec>,
    pub secondary_artifacts: Vec<(String, ArtifactSpec)>,
    pub reports: Vec<ReportSpec>,
    pub cache: Option<CacheSpec>,
}

/// A YAML 1.1 boolean as AWS accepts it: a real bool, or yes/no/true/false/on/off as text.
pub fn truthy(v: Option<&Value>) -> Result<bool, BuildspecError> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "y" => Ok(true),
            "no" | "false" | "off" | "n" | "" => Ok(false),
            other => Err(BuildspecError(format!("invalid boolean value '{other}'"))),
        },
        Some(other) => Err(BuildspecError(format!("invalid boolean value {other}"))),
    }
}

/// A scalar as text (`1` and `true` are commands or values too).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

fn string_list(v: Option<&Value>, what: &str) -> Result<Vec<String>, BuildspecError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                scalar(i)
                    .ok_or_else(|| BuildspecError(format!("{what}: expected a list of strings")))
            })
            .collect(),
        Some(v) => scalar(v)
            .map(|s| vec![s])
            .ok_or_else(|| BuildspecError(format!("{what}: expected a list"))),
    }
}

fn string_map(v: Option<&Value>, what: &str) -> Result<Vec<(String, String)>, BuildspecError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                scalar(v)
                    .map(|s| (k.clone(), s))
                    .ok_or_else(|| BuildspecError(format!("{what}.{k}: expected a string")))
            })
            .collect(),
        Some(_) => Err(BuildspecError(format!("{what}: expected a map"))),
    }
}

fn opt_string(v: Option<&Value>) -> Option<String> {
    v.and_then(scalar).filter(|s| !s.is_empty())
}

fn artifact_spec(v: &Value, what: &str) -> Result<ArtifactSpec, BuildspecError> {
    let files = string_list(v.get("files"), &format!("{what}.files"))?;
    Ok(ArtifactSpec {
        files,
        name: opt_string(v.get("name")),
        discard_paths: truthy(v.get("discard-paths"))?,
        base_directory: opt_string(v.get("base-directory")),
        exclude_paths: string_list(v.get("exclude-paths"), &format!("{what}.exclude-paths"))?,
        enable_symlinks: truthy(v.get("enable-symlinks"))?,
        s3_prefix: opt_string(v.get("s3-prefix")),
    })
}

impl Buildspec {
    pub fn parse(text: &str) -> Result<Buildspec, BuildspecError> {
        let doc: Value = serde_saphyr::from_str(text)
            .map_err(|e| BuildspecError(format!("YAML_FILE_ERROR: {e}")))?;
        Self::from_value(&doc)
    }

    pub fn from_value(doc: &Value) -> Result<Buildspec, BuildspecError> {
        let Some(root) = doc.as_object() else {
            return Err(BuildspecError(
                "YAML_FILE_ERROR: the buildspec is not a YAML map".into(),
            ));
        };
        let version = match root.get("version") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.trim().to_string(),
            None => return Err(BuildspecError("YAML_FILE_ERROR: missing version".into())),
            Some(_) => return Err(BuildspecError("YAML_FILE_ERROR: invalid version".into())),
        };
        if version != "0.1" && version != "0.2" {
            return Err(BuildspecError(format!(
                "YAML_FILE_ERROR: invalid buildspec version {version}; expected 0.1 or 0.2"
            )));
        }
        let mut spec = Buildspec {
            version,
            ..Default::default()
        };
        spec.run_as = opt_string(root.get("run-as"));
        if let Some(env) = root.get("env").filter(|v| !v.is_null()) {
            spec.shell = opt_string(env.get("shell"));
            spec.variables = string_map(env.get("variables"), "env.variables")?;
            spec.parameter_store = string_map(env.get("parameter-store"), "env.parameter-store")?;
            spec.secrets_manager = string_map(env.get("secrets-manager"), "env.secrets-manager")?;
            spec.exported_variables =
                string_list(env.get("exported-variables"), "env.exported-variables")?;
            spec.git_credential_helper = truthy(env.get("git-credential-helper"))?;
        }
        if let Some(phases) = root.get("phases").filter(|v| !v.is_null()) {
            let Some(phases) = phases.as_object() else {
                return Err(BuildspecError(
                    "YAML_FILE_ERROR: phases is not a map".into(),
                ));
            };
            for (name, body) in phases {
                let Some(i) = PHASES.iter().position(|(n, _)| n == name) else {
                    return Err(BuildspecError(format!(
                        "YAML_FILE_ERROR: unknown phase {name}"
                    )));
                };
                let what = format!("phases.{name}");
                if name == "install" {
                    spec.runtime_versions = string_map(body.get("runtime-versions"), "phases.install.runtime-versions")
                        .map_err(|e| BuildspecError(format!("YAML_FILE_ERROR: {}", e.0)))?;
                }
                let on_failure = match opt_string(body.get("on-failure")).as_deref() {
                    None | Some("ABORT") => OnFailure::Abort,
                    Some("CONTINUE") => OnFailure::Continue,
                    Some(other) => {
                        return Err(BuildspecError(format!(
                            "YAML_FILE_ERROR: invalid on-failure value '{other}' in {what}; expected ABORT or CONTINUE"
                        )));
                    }
                };
                spec.phases[i] = Phase {
                    commands: string_list(body.get("commands"), &format!("{what}.commands"))?,
                    finally: string_list(body.get("finally"), &format!("{what}.finally"))?,
                    on_failure,
                    run_as: opt_string(body.get("run-as")),
                };
            }
        }
        if let Some(a) = root.get("artifacts").filter(|v| !v.is_null()) {
            let primary = artifact_spec(a, "artifacts")?;
            if let Some(Value::Object(sec)) = a.get("secondary-artifacts") {
                for (id, body) in sec {
                    spec.secondary_artifacts.push((
                        id.clone(),
                        artifact_spec(body, &format!("secondary-artifacts.{id}"))?,
                    ));
                }
            }
            spec.artifacts = Some(primary);
        }
        if let Some(Value::Object(reports)) = root.get("reports") {
            for (name, body) in reports {
                spec.reports.push(ReportSpec {
                    name: name.clone(),
                    files: string_list(body.get("files"), &format!("reports.{name}.files"))?,
                    base_directory: opt_string(body.get("base-directory")),
                    discard_paths: truthy(body.get("discard-paths"))?,
                    file_format: opt_string(body.get("file-format"))
                        .unwrap_or_else(|| "JUNITXML".into()),
                });
            }
        }
        if let Some(c) = root.get("cache").filter(|v| !v.is_null()) {
            spec.cache = Some(CacheSpec {
                paths: string_list(c.get("paths"), "cache.paths")?,
                key: opt_string(c.get("key")),
            });
        }
        Ok(spec)
    }
}

/// Map from phase API name to index in [`PHASES`].
pub fn phase_index(api_name: &str) -> Option<usize> {
    PHASES.iter().position(|(_, n)| *n == api_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_yaml11_booleans_and_numeric_version() {
        let s = Buildspec::parse(
            "version: 0.2\nenv:\n  variables:\n    A: 1\n  exported-variables: [A]\n  git-credential-helper: yes\nphases:\n  build:\n    on-failure: CONTINUE\n    commands:\n      - echo hi\n      - 42\n    finally:\n      - echo done\nartifacts:\n  files: ['**/*']\n  discard-paths: yes\n  base-directory: out\n  secondary-artifacts:\n    second:\n      files: [x]\n      discard-paths: 'no'\n",
        )
        .unwrap();
        assert_eq!(s.version, "0.2");
        assert_eq!(s.variables, vec![("A".into(), "1".into())]);
        assert!(s.git_credential_helper);
        assert_eq!(s.phases[2].commands, vec!["echo hi", "42"]);
        assert_eq!(s.phases[2].on_failure, OnFailure::Continue);
        let a = s.artifacts.unwrap();
        assert!(a.discard_paths);
        assert_eq!(a.base_directory.as_deref(), Some("out"));
        assert_eq!(s.secondary_artifacts[0].0, "second");
        assert!(!s.secondary_artifacts[0].1.discard_paths);
    }

    #[test]
    fn string_version_and_errors() {
        assert_eq!(
            Buildspec::parse("version: '0.1'\nphases: {}\n")
                .unwrap()
                .version,
            "0.1"
        );
        assert!(
            Buildspec::parse("phases: {}")
                .unwrap_err()
                .0
                .contains("missing version")
        );
        assert!(
            Buildspec::parse("version: 0.3")
                .unwrap_err()
                .0
                .contains("0.3")
        );
        assert!(
            Buildspec::parse("version: 0.2\nphases:\n  compile:\n    commands: [x]\n")
                .unwrap_err()
                .0
                .contains("compile")
        );
        assert!(
            Buildspec::parse("version: 0.2\nphases:\n  build:\n    on-failure: MAYBE\n").is_err()
        );
        assert!(Buildspec::parse("version: [").is_err());
    }

    #[test]
    fn secret_sources_are_read() {
        let s = Buildspec::parse(
            "version: 0.2\nenv:\n  parameter-store:\n    DB: /prod/db\n  secrets-manager:\n    PW: prod/db:password\n",
        )
        .unwrap();
        assert_eq!(s.parameter_store, vec![("DB".to_string(), "/prod/db".to_string())]);
        assert_eq!(s.secrets_manager, vec![("PW".to_string(), "prod/db:password".to_string())]);
        let s = Buildspec::parse("version: 0.2\nphases:\n  install:\n    runtime-versions:\n      java: corretto17\n      python: 3.11\n").unwrap();
        assert_eq!(s.runtime_versions, vec![("java".into(), "corretto17".into()), ("python".into(), "3.11".into())]);
    }
}

//! Image manifests as the registry sees them: which kind a document is, which blobs and
//! manifests it references, and the sizes ECR reports. Pure functions over bytes.

use serde_json::Value;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// What a manifest document tells the registry.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedManifest {
    pub media_type: String,
    /// The config's media type (ECR's `artifactMediaType`), or the manifest's `artifactType`.
    pub artifact_type: Option<String>,
    /// Blobs that must exist in the repository (config and layers, non-distributable ones
    /// excluded).
    pub blobs: Vec<String>,
    /// Manifests an index or list references.
    pub children: Vec<String>,
    /// Sum of config and layer sizes (ECR's `imageSizeInBytes` for single images).
    pub size: u64,
    /// The manifest this one is a referrer of.
    pub subject: Option<String>,
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// The digest string of some bytes: `sha256:<hex>`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A digest in the form the registry stores (`sha256:` and 64 lowercase hex digits).
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A tag as Docker and ECR allow it.
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Parses a manifest. `declared` is the Content-Type (registry) or `imageManifestMediaType`
/// (PutImage); the document's own `mediaType` wins when both are present and agree, and a
/// disagreement is an error, as in ECR.
pub fn parse(bytes: &[u8], declared: Option<&str>) -> Result<ParsedManifest, String> {
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("manifest is not valid JSON: {e}"))?;
    let obj = doc.as_object().ok_or("manifest is not a JSON object")?;
    let declared = declared
        .map(|d| d.split(';').next().unwrap_or(d).trim())
        .filter(|d| !d.is_empty() && *d != "application/json" && *d != "application/octet-stream");
    let inner = obj.get("mediaType").and_then(Value::as_str);
    if let (Some(d), Some(i)) = (declared, inner)
        && d != i
    {
        return Err(format!(
            "manifest media type {i} does not match the declared {d}"
        ));
    }
    let media_type = match inner.or(declared) {
        Some(m) => m.to_string(),
        None if obj.contains_key("manifests") => OCI_INDEX.to_string(),
        None if obj.contains_key("config") => OCI_MANIFEST.to_string(),
        None if obj.get("schemaVersion").and_then(Value::as_i64) == Some(1) => {
            DOCKER_SCHEMA1_SIGNED.to_string()
        }
        None => return Err("cannot tell the manifest's media type".into()),
    };
    let annotations = match obj.get("annotations") {
        None | Some(Value::Null) => None,
        Some(a) => Some(serde_json::from_value(a.clone()).map_err(|_| "annotations must map strings to strings")?),
    };
    let subject = obj
        .get("subject")
        .and_then(|s| s.get("digest"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut parsed = ParsedManifest {
        media_type: media_type.clone(),
        artifact_type: obj
            .get("artifactType")
            .and_then(Value::as_str)
            .map(str::to_string),
        blobs: Vec::new(),
        children: Vec::new(),
        size: 0,
        subject,
        annotations,
    };
    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = obj.get("config").ok_or("image manifest has no config")?;
            let (digest, size, mt) = descriptor(config)?;
            if parsed.artifact_type.is_none() {
                parsed.artifact_type = mt.clone();
            }
            parsed.blobs.push(digest);
            parsed.size += size;
            for layer in obj
                .get("layers")
                .and_then(Value::as_array)
                .ok_or("image manifest has no layers")?
            {
                let (digest, size, mt) = descriptor(layer)?;
                parsed.size += size;
                let foreign = mt
                    .as_deref()
                    .is_some_and(|m| m.contains("foreign") || m.contains("nondistributable"))
                    && layer.get("urls").is_some();
                if !foreign {
                    parsed.blobs.push(digest);
                }
            }
        }
        OCI_INDEX | DOCKER_LIST => {
            for m in obj
                .get("manifests")
                .and_then(Value::as_array)
                .ok_or("index has no manifests")?
            {
                let (digest, _, _) = descriptor(m)?;
                parsed.children.push(digest);
            }
        }
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => {
            for l in obj
                .get("fsLayers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(d) = l.get("blobSum").and_then(Value::as_str) {
                    parsed.blobs.push(d.to_string());
                }
            }
        }
        other => return Err(format!("unsupported manifest media type {other}")),
    }
    parsed.blobs.dedup();
    Ok(parsed)
}

fn descriptor(v: &Value) -> Result<(String, u64, Option<String>), String> {
    let digest = v
        .get("digest")
        .and_then(Value::as_str)
        .ok_or("descriptor without digest")?;
    if !valid_digest(digest) {
        return Err(format!("invalid digest {digest}"));
    }
    let size = v
        .get("size")
        .and_then(Value::as_u64)
        .ok_or("descriptor without size")?;
    Ok((
        digest.to_string(),
        size,
        v.get("mediaType")
            .and_then(Value::as_str)
            .map(str::to_string),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn docker_manifest_lists_config_and_layers() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{D1}","size":10}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{D2}","size":32}}]}}"#
        );
        let p = parse(m.as_bytes(), Some(DOCKER_MANIFEST)).unwrap();
        assert_eq!(p.blobs, vec![D1.to_string(), D2.to_string()]);
        assert_eq!(p.size, 42);
        assert_eq!(
            p.artifact_type.as_deref(),
            Some("application/vnd.docker.container.image.v1+json")
        );
        assert!(
            parse(m.as_bytes(), Some(OCI_MANIFEST)).is_err(),
            "declared type must agree"
        );
    }

    #[test]
    fn oci_index_without_media_type_is_recognised() {
        let m = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":5}}]}}"#
        );
        let p = parse(m.as_bytes(), None).unwrap();
        assert_eq!(p.media_type, OCI_INDEX);
        assert_eq!(p.children, vec![D1.to_string()]);
        assert!(parse(b"[1]", None).is_err());
        assert!(
            parse(
                br#"{"config":{"digest":"sha256:zz","size":1},"layers":[]}"#,
                None
            )
            .is_err()
        );
    }

    #[test]
    fn tags_and_digests() {
        assert!(
            valid_tag("latest")
                && valid_tag("v1.2-rc_3")
                && !valid_tag("-x")
                && !valid_tag("a/b")
                && !valid_tag("")
        );
        assert!(valid_digest(D1) && !valid_digest("sha256:ABC") && !valid_digest("md5:00"));
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}

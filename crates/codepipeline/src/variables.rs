//! `#{namespace.variable}` references in action configuration: `#{codepipeline.PipelineExecutionId}`,
//! `#{variables.<name>}` (V2 pipeline variables) and `#{<action namespace>.<output variable>}`.

use std::collections::BTreeMap;

/// Every `(namespace, variable)` a value refers to.
pub fn references(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("#{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        if let Some((ns, var)) = inner.split_once('.') {
            out.push((ns.trim().to_string(), var.trim().to_string()));
        }
        rest = &after[end + 1..];
    }
    out
}

pub fn has_references(value: &str) -> bool {
    !references(value).is_empty()
}

/// Replaces every reference; a reference with no value is an error naming it.
pub fn resolve(
    value: &str,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("#{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        match inner.split_once('.') {
            Some((ns, var)) => match lookup(ns.trim(), var.trim()) {
                Some(v) => out.push_str(&v),
                None => return Err(format!("Unable to resolve variable '#{{{inner}}}'")),
            },
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Resolves a whole configuration map.
pub fn resolve_map(
    config: &BTreeMap<String, String>,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<BTreeMap<String, String>, String> {
    config
        .iter()
        .map(|(k, v)| Ok((k.clone(), resolve(v, lookup)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_and_reports_missing() {
        let look = |ns: &str, v: &str| match (ns, v) {
            ("codepipeline", "PipelineExecutionId") => Some("e-1".to_string()),
            ("Src", "CommitId") => Some("abc".to_string()),
            _ => None,
        };
        assert_eq!(
            resolve(
                "id=#{codepipeline.PipelineExecutionId}/#{Src.CommitId}",
                &look
            )
            .unwrap(),
            "id=e-1/abc"
        );
        assert_eq!(
            resolve("plain #{nodot} text", &look).unwrap(),
            "plain #{nodot} text"
        );
        assert!(
            resolve("#{variables.x}", &look)
                .unwrap_err()
                .contains("variables.x")
        );
        assert_eq!(
            references("a #{ns.v} b #{variables.w}"),
            vec![("ns".into(), "v".into()), ("variables".into(), "w".into())]
        );
    }
}

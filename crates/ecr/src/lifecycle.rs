//! ECR lifecycle policies: validation of the policy text and evaluation of its rules against a
//! repository's images. Pure: the service applies the result after each push.
//!
//! Semantics as AWS documents them: rules are evaluated from the lowest `rulePriority` up; an
//! image matched by a rule's selection is claimed by that rule (kept or expired) and no later
//! rule looks at it; `imageCountMoreThan` keeps the newest N of the rule's images,
//! `sinceImagePushed` expires those pushed more than N days ago.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::HashSet;

#[derive(Clone, Debug, Deserialize)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub rule_priority: i64,
    #[serde(default)]
    pub description: Option<String>,
    pub selection: Selection,
    pub action: Action,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    pub tag_status: String,
    #[serde(default)]
    pub tag_prefix_list: Vec<String>,
    #[serde(default)]
    pub tag_pattern_list: Vec<String>,
    pub count_type: String,
    #[serde(default)]
    pub count_unit: Option<String>,
    pub count_number: i64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Action {
    #[serde(rename = "type")]
    pub kind: String,
}

/// An image as the rules see it.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: DateTime<Utc>,
}

/// Parses and checks a policy; the error is the reason AWS would give.
pub fn validate(text: &str) -> Result<Policy, String> {
    let policy: Policy = serde_json::from_str(text)
        .map_err(|e| format!("Lifecycle policy validation failure: {e}"))?;
    if policy.rules.is_empty() {
        return Err("Lifecycle policy validation failure: object has missing required properties ([\"rules\"])".into());
    }
    let mut priorities = HashSet::new();
    let max_priority = policy
        .rules
        .iter()
        .map(|r| r.rule_priority)
        .max()
        .unwrap_or(0);
    for r in &policy.rules {
        let fail = |m: &str| {
            Err(format!(
                "Lifecycle policy validation failure: rule {}: {m}",
                r.rule_priority
            ))
        };
        if r.rule_priority < 1 {
            return fail("rulePriority must be a positive integer");
        }
        if !priorities.insert(r.rule_priority) {
            return fail("rulePriority must be unique");
        }
        if r.action.kind != "expire" {
            return fail("action type must be \"expire\"");
        }
        let s = &r.selection;
        match s.tag_status.as_str() {
            "tagged" => {
                if s.tag_prefix_list.is_empty() && s.tag_pattern_list.is_empty() {
                    return fail(
                        "tagPrefixList or tagPatternList is required when tagStatus is tagged",
                    );
                }
                if !s.tag_prefix_list.is_empty() && !s.tag_pattern_list.is_empty() {
                    return fail("tagPrefixList and tagPatternList cannot both be set");
                }
            }
            "untagged" | "any" => {
                if !s.tag_prefix_list.is_empty() || !s.tag_pattern_list.is_empty() {
                    return fail(
                        "tagPrefixList and tagPatternList are only allowed when tagStatus is tagged",
                    );
                }
                if s.tag_status == "any" && r.rule_priority != max_priority {
                    return fail("a rule with tagStatus any must have the highest rulePriority");
                }
            }
            other => return fail(&format!("unknown tagStatus {other}")),
        }
        match s.count_type.as_str() {
            "imageCountMoreThan" if s.count_unit.is_some() => {
                return fail("countUnit is not allowed with imageCountMoreThan");
            }
            "imageCountMoreThan" => {}
            "sinceImagePushed" if s.count_unit.as_deref() != Some("days") => {
                return fail("countUnit must be days with sinceImagePushed");
            }
            "sinceImagePushed" => {}
            other => return fail(&format!("unknown countType {other}")),
        }
        if s.count_number < 1 {
            return fail("countNumber must be at least 1");
        }
    }
    Ok(policy)
}

fn glob_match(pattern: &str, text: &str) -> bool {
    // '*' matches any run of characters; everything else literally.
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(p) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else if let Some(pos) = rest.find(p) {
            rest = &rest[pos + p.len()..];
        } else {
            return false;
        }
    }
    true
}

fn selects(s: &Selection, image: &Candidate) -> bool {
    match s.tag_status.as_str() {
        "untagged" => image.tags.is_empty(),
        "any" => true,
        _ => {
            // Every prefix (or pattern) of the list must match one of the image's tags.
            !image.tags.is_empty()
                && s.tag_prefix_list
                    .iter()
                    .all(|p| image.tags.iter().any(|t| t.starts_with(p.as_str())))
                && s.tag_pattern_list
                    .iter()
                    .all(|p| image.tags.iter().any(|t| glob_match(p, t)))
        }
    }
}

/// The digests the policy expires now.
pub fn evaluate(policy: &Policy, images: &[Candidate], now: DateTime<Utc>) -> Vec<String> {
    let mut rules: Vec<&Rule> = policy.rules.iter().collect();
    rules.sort_by_key(|r| r.rule_priority);
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut expired = Vec::new();
    for rule in rules {
        let mut matched: Vec<&Candidate> = images
            .iter()
            .filter(|i| !claimed.contains(i.digest.as_str()) && selects(&rule.selection, i))
            .collect();
        matched.sort_by(|a, b| {
            b.pushed_at
                .cmp(&a.pushed_at)
                .then_with(|| a.digest.cmp(&b.digest))
        });
        let n = rule.selection.count_number;
        for (i, image) in matched.iter().enumerate() {
            claimed.insert(image.digest.as_str());
            let expire = match rule.selection.count_type.as_str() {
                "imageCountMoreThan" => i as i64 >= n,
                _ => now.signed_duration_since(image.pushed_at) > chrono::Duration::days(n),
            };
            if expire {
                expired.push(image.digest.clone());
            }
        }
    }
    expired
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(d: &str, tags: &[&str], age_days: i64) -> Candidate {
        Candidate {
            digest: d.into(),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            pushed_at: Utc::now()
                - chrono::Duration::days(age_days)
                - chrono::Duration::seconds(d.len() as i64),
        }
    }

    #[test]
    fn keeps_newest_tagged_and_expires_old_untagged() {
        let p = validate(
            r#"{"rules":[
              {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}},
              {"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}"#,
        )
        .unwrap();
        let images = vec![
            img("a", &["v1"], 3),
            img("b", &["v2"], 2),
            img("c", &["v3"], 0),
            img("d", &[], 5),
            img("e", &[], 0),
            img("f", &["latest"], 9),
        ];
        let mut out = evaluate(&p, &images, Utc::now());
        out.sort();
        assert_eq!(out, vec!["a".to_string(), "d".to_string()]);
    }

    #[test]
    fn rejects_bad_policies() {
        assert!(validate("{}").is_err());
        assert!(validate(r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#).is_err());
        assert!(validate(r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countNumber":1},"action":{"type":"expire"}}]}"#).is_err());
        assert!(
            glob_match("prod*", "prod-1")
                && glob_match("*-rc*", "v1-rc2")
                && !glob_match("prod*", "dev")
        );
    }
}

//! CloudWatch Logs filter patterns for unstructured events: terms, quoted phrases, `?term`
//! (match any of these) and `-term` (exclude). Matching is case-sensitive, as in CloudWatch
//! Logs. JSON (`{ $.x = 1 }`) and space-delimited (`[a, b]`) patterns are refused with a
//! clear message rather than matched wrongly.

use crate::store::{LogsResult, invalid};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FilterPattern {
    /// Every one of these must occur.
    all: Vec<String>,
    /// At least one of these must occur (when there are any).
    any: Vec<String>,
    /// None of these may occur.
    none: Vec<String>,
}

impl FilterPattern {
    pub fn parse(pattern: &str) -> LogsResult<FilterPattern> {
        let p = pattern.trim();
        if p.starts_with('{') || p.starts_with('[') {
            return Err(invalid(
                "codeyard supports term, \"quoted phrase\", ?term and -term filter patterns; JSON and space-delimited patterns are not implemented",
            ));
        }
        let mut out = FilterPattern::default();
        for token in tokens(p)? {
            if let Some(t) = token.strip_prefix('?') {
                out.any.push(unquote(t));
            } else if let Some(t) = token.strip_prefix('-').filter(|t| !t.is_empty()) {
                out.none.push(unquote(t));
            } else {
                out.all.push(unquote(&token));
            }
        }
        Ok(out)
    }

    pub fn matches(&self, message: &str) -> bool {
        self.all.iter().all(|t| message.contains(t.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|t| message.contains(t.as_str())))
            && !self.none.iter().any(|t| message.contains(t.as_str()))
    }
}

/// Splits on whitespace, keeping quoted phrases (with their optional `?`/`-` prefix) whole.
fn tokens(p: &str) -> LogsResult<Vec<String>> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in p.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(invalid("Invalid character(s) in term '\"'"));
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

fn unquote(t: &str) -> String {
    t.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_phrases_any_and_none() {
        let p = FilterPattern::parse("ERROR \"disk full\"").unwrap();
        assert!(p.matches("ERROR: disk full on /dev/sda"));
        assert!(!p.matches("ERROR: disk almost full"));
        assert!(!p.matches("error: disk full"));
        let any = FilterPattern::parse("?WARN ?ERROR").unwrap();
        assert!(any.matches("a WARN b") && any.matches("ERROR") && !any.matches("INFO"));
        let none = FilterPattern::parse("build -debug").unwrap();
        assert!(none.matches("build ok") && !none.matches("build debug"));
        assert!(FilterPattern::parse("").unwrap().matches("anything"));
        assert!(FilterPattern::parse("{ $.level = \"x\" }").is_err());
    }
}

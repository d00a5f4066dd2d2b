//! Timestamps as AWS encodes them.
//!
//! * awsJson: epoch seconds as a JSON number (fractions allowed). Terraform's Go SDK rejects
//!   strings, so never emit ISO strings in awsJson.
//! * awsQuery / rest-xml: ISO 8601 (`2024-01-02T03:04:05.000Z`).
//! * HTTP headers (Last-Modified): RFC 7231.

use chrono::{DateTime, SecondsFormat, Utc};

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    Utc::now()
}

/// Epoch seconds with millisecond precision, as a JSON number for awsJson.
pub fn epoch_json(t: &Timestamp) -> serde_json::Value {
    let ms = t.timestamp_millis();
    let secs = ms as f64 / 1000.0;
    serde_json::Number::from_f64(secs).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)
}

/// Epoch milliseconds (CloudWatch Logs uses these as integers).
pub fn epoch_millis(t: &Timestamp) -> i64 {
    t.timestamp_millis()
}

pub fn iso8601(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn http_date(t: &Timestamp) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub fn from_epoch_millis(ms: i64) -> Timestamp {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Reads an awsJson timestamp (number of epoch seconds, or an ISO string some clients send).
pub fn parse_json(v: &serde_json::Value) -> Option<Timestamp> {
    match v {
        serde_json::Value::Number(n) => {
            let f = n.as_f64()?;
            DateTime::from_timestamp_millis((f * 1000.0).round() as i64)
        }
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn epoch_is_a_number() {
        let t = from_epoch_millis(1_700_000_000_123);
        assert_eq!(epoch_json(&t).to_string(), "1700000000.123");
        assert_eq!(parse_json(&epoch_json(&t)), Some(t));
        assert_eq!(iso8601(&t), "2023-11-14T22:13:20.123Z");
    }
}

//! The request's condition keys, a leaf that [`condition`](crate::condition) and
//! [`pattern`](crate::pattern) both read.

use std::collections::BTreeMap;

/// The request's condition keys. Names are case-insensitive (`aws:SourceIp` = `aws:sourceip`);
/// values are lists (one element for single-valued keys).
#[derive(Clone, Debug, Default)]
pub struct Context {
    keys: BTreeMap<String, Vec<String>>,
}

impl Context {
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.keys.insert(key.to_ascii_lowercase(), vec![value.into()]);
    }
    pub fn set_multi(&mut self, key: &str, values: Vec<String>) {
        self.keys.insert(key.to_ascii_lowercase(), values);
    }
    pub fn remove(&mut self, key: &str) {
        self.keys.remove(&key.to_ascii_lowercase());
    }
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.keys.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.keys.iter()
    }
}

//! Resource tags as AWS services keep them: at most [`MAX_TAGS`] per resource (AWS's quota
//! for almost every service). TagResource adds or replaces and is refused as a whole when the
//! resource would end up over the quota; UntagResource removes the keys named and ignores
//! the others. Each service answers [`TooManyTags`] with its own code and message.
//!
//! A resource keeps its tags in a map (`BTreeMap<String, String>`) or, where AWS answers them
//! in the order they were added, a list of `(key, value)` pairs or of the service's own tag
//! type ([`Tag`]).

use std::collections::BTreeMap;

/// Tags per resource (KMS, Secrets Manager, SSM, CloudWatch Logs, ECR, CodeCommit, IAM).
pub const MAX_TAGS: usize = 50;

/// The resource would have more than the quota of tags; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyTags;

/// One tag of a list of tags.
pub trait Tag {
    fn new(key: String, value: String) -> Self;
    fn key(&self) -> &str;
    fn set_value(&mut self, value: String);
}

impl Tag for (String, String) {
    fn new(key: String, value: String) -> Self {
        (key, value)
    }
    fn key(&self) -> &str {
        &self.0
    }
    fn set_value(&mut self, value: String) {
        self.1 = value;
    }
}

/// Where a resource keeps its tags.
pub trait TagSet: Clone {
    /// Adds the tag, or gives the key already there the new value.
    fn put(&mut self, key: String, value: String);
    fn remove_key(&mut self, key: &str);
    fn count(&self) -> usize;
}

impl TagSet for BTreeMap<String, String> {
    fn put(&mut self, key: String, value: String) {
        self.insert(key, value);
    }
    fn remove_key(&mut self, key: &str) {
        self.remove(key);
    }
    fn count(&self) -> usize {
        self.len()
    }
}

/// A list keeps its order: a replaced tag stays where it was, a new one goes last.
impl<T: Tag + Clone> TagSet for Vec<T> {
    fn put(&mut self, key: String, value: String) {
        match self.iter_mut().find(|t| t.key() == key) {
            Some(t) => t.set_value(value),
            None => self.push(T::new(key, value)),
        }
    }
    fn remove_key(&mut self, key: &str) {
        self.retain(|t| t.key() != key);
    }
    fn count(&self) -> usize {
        self.len()
    }
}

/// Adds `new` to `tags` (a key already there gets the new value). Refused, leaving `tags`
/// as it was, when the result would have more than `max` tags.
pub fn add<S, I>(tags: &mut S, new: I, max: usize) -> Result<(), TooManyTags>
where
    S: TagSet,
    I: IntoIterator<Item = (String, String)>,
{
    let mut merged = tags.clone();
    for (k, v) in new {
        merged.put(k, v);
    }
    if merged.count() > max {
        return Err(TooManyTags);
    }
    *tags = merged;
    Ok(())
}

/// Removes the keys named; keys the resource does not have are ignored, as AWS does.
pub fn remove<S, I, K>(tags: &mut S, keys: I)
where
    S: TagSet,
    I: IntoIterator<Item = K>,
    K: AsRef<str>,
{
    for k in keys {
        tags.remove_key(k.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn add_replaces_and_refuses_over_the_quota_without_changing_anything() {
        let mut t: BTreeMap<String, String> = (0..49).map(|i| pair(&format!("k{i}"), "v")).collect();
        add(&mut t, [pair("k0", "new")], MAX_TAGS).unwrap();
        assert_eq!(t["k0"], "new");
        add(&mut t, [pair("k49", "v")], MAX_TAGS).unwrap();
        assert_eq!(t.len(), 50);
        assert_eq!(add(&mut t, [pair("k50", "v")], MAX_TAGS), Err(TooManyTags));
        assert_eq!(t.len(), 50);
        remove(&mut t, ["k0", "absent"]);
        assert_eq!(t.len(), 49);
    }

    #[test]
    fn a_list_keeps_its_order() {
        let mut t = vec![pair("a", "1"), pair("b", "2")];
        add(&mut t, [pair("c", "3"), pair("a", "9")], 3).unwrap();
        assert_eq!(t, [pair("a", "9"), pair("b", "2"), pair("c", "3")]);
        assert_eq!(add(&mut t, [pair("d", "4")], 3), Err(TooManyTags));
        remove(&mut t, &["b".to_string()]);
        assert_eq!(t, [pair("a", "9"), pair("c", "3")]);
    }
}

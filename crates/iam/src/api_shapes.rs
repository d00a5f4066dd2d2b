//! What the two halves of the IAM API ([`crate::iam_api`], [`crate::identities_api`]) share:
//! tags between the model and the domain, and the `Marker` / `MaxItems` of a listing.

use crate::iam as domain;
use codeyard_api::iam::Tag;
use codeyard_core::{AwsError, AwsResult};

/// MaxItems when a listing does not say.
const DEFAULT_MAX_ITEMS: usize = 100;

pub(crate) fn tags_in(tags: Option<Vec<Tag>>) -> Vec<domain::Tag> {
    tags.into_iter().flatten().map(|t| domain::Tag { key: t.key, value: t.value }).collect()
}

pub(crate) fn tags_out(tags: &[domain::Tag]) -> Vec<Tag> {
    tags.iter().map(|t| Tag { key: t.key.clone(), value: t.value.clone() }).collect()
}

/// A listing's `Marker` and `MaxItems`.
pub(crate) struct Page {
    marker: Option<String>,
    max: usize,
}

impl Page {
    pub(crate) fn of(marker: Option<String>, max_items: Option<i32>) -> Self {
        Page { marker, max: max_items.map_or(DEFAULT_MAX_ITEMS, |m| m.max(0) as usize) }
    }

    /// One page of a listing ordered by `key`: the items after the marker, at most MaxItems,
    /// and the marker of the next page when there is one.
    pub(crate) fn by_key<T>(&self, items: Vec<T>, key: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
        let rest: Vec<T> = match &self.marker {
            Some(m) => items.into_iter().filter(|i| key(i).as_str() > m.as_str()).collect(),
            None => items,
        };
        self.cut(rest, key)
    }

    /// Like [`Page::by_key`] for listings in a fixed order that is not the key order: the
    /// marker is the key of the last item returned.
    pub(crate) fn in_order<T>(&self, items: Vec<T>, key: impl Fn(&T) -> String) -> AwsResult<(Vec<T>, Option<String>)> {
        let start = match &self.marker {
            Some(m) => match items.iter().position(|i| key(i) == *m) {
                Some(pos) => pos + 1,
                None => return Err(AwsError::client("InvalidInput", "Invalid Marker.")),
            },
            None => 0,
        };
        Ok(self.cut(items.into_iter().skip(start).collect(), key))
    }

    fn cut<T>(&self, mut rest: Vec<T>, key: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
        if rest.len() > self.max {
            rest.truncate(self.max);
            let next = rest.last().map(&key);
            return (rest, next);
        }
        (rest, None)
    }
}

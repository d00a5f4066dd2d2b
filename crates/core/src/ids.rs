//! Identifiers in the shapes AWS uses.

use rand::Rng;

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A request id as AWS prints them (a UUID).
pub fn request_id() -> String {
    uuid()
}

/// `len` random characters from `[A-Z0-9]` (IAM ids, short suffixes).
pub fn upper_alnum(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..len).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// `len` random characters from `[A-Za-z0-9]`.
pub fn alnum(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

pub fn hex(len: usize) -> String {
    const CHARS: &[u8] = b"0123456789abcdef";
    let mut rng = rand::rng();
    (0..len).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

//! The cryptography: AES-256-GCM everywhere (RustCrypto `aes-gcm`), random 96-bit nonces.
//!
//! * The **master key** (32 random bytes) lives in `<data_dir>/kms/master.key`, mode 0600,
//!   created on first start. It wraps every key's material, so the state store holds no key
//!   material in the clear.
//! * A KMS key's **material** (32 random bytes) is stored wrapped: nonce + AES-GCM(master,
//!   material) with the key's ARN as additional data (a wrapped material cannot be moved to
//!   another key record).
//! * A **ciphertext blob** (what Encrypt answers) is
//!   `"CYK1" | len(key id) | key id | nonce | AES-GCM(material, plaintext)`, with the key id and
//!   the encryption context (canonical: sorted keys, JSON) as additional data, so Decrypt finds
//!   the key from the blob alone and refuses a different context.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

const MAGIC: &[u8; 4] = b"CYK1";
const NONCE_LEN: usize = 12;

/// The server's master key.
#[derive(Clone)]
pub struct MasterKey(Key<Aes256Gcm>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Key material wrapped under the master key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WrappedMaterial {
    /// base64 of nonce + ciphertext + tag.
    pub wrapped: String,
}

impl MasterKey {
    /// Reads `<dir>/master.key`, or creates it (0600) with fresh random bytes.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<MasterKey> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("master.key");
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => return Ok(MasterKey(*Key::<Aes256Gcm>::from_slice(&bytes))),
            Ok(bytes) => anyhow::bail!("{} holds {} bytes, not a 32-byte key", path.display(), bytes.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let key = Aes256Gcm::generate_key(OsRng);
        let tmp = dir.join(format!("master.key.tmp-{}", std::process::id()));
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            f.write_all(key.as_slice())?;
            f.sync_all()?;
        }
        // Another process may have won the race: keep whichever is there.
        match std::fs::hard_link(&tmp, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
        }
        let _ = std::fs::remove_file(&tmp);
        Self::load_or_create(dir)
    }

    /// Fresh random key material, wrapped for the key `key_arn`.
    pub fn new_material(&self, key_arn: &str) -> WrappedMaterial {
        let material = Aes256Gcm::generate_key(OsRng);
        WrappedMaterial { wrapped: b64(&seal(&self.0, material.as_slice(), key_arn.as_bytes())) }
    }

    /// The key material of `key_arn`.
    pub fn unwrap(&self, key_arn: &str, m: &WrappedMaterial) -> Result<Key<Aes256Gcm>, CryptoError> {
        let bytes = unb64(&m.wrapped).ok_or(CryptoError::Corrupt)?;
        let raw = open(&self.0, &bytes, key_arn.as_bytes())?;
        if raw.len() != 32 {
            return Err(CryptoError::Corrupt);
        }
        Ok(*Key::<Aes256Gcm>::from_slice(&raw))
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum CryptoError {
    /// Not a blob this server produced.
    NotACiphertext,
    /// Authentication failed: wrong key, wrong encryption context, or tampered.
    Invalid,
    /// A stored record does not decode.
    Corrupt,
}

fn seal(key: &Key<Aes256Gcm>, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key);
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ct = cipher.encrypt(&nonce, Payload { msg: plaintext, aad }).expect("AES-GCM encryption of a bounded message");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    out
}

fn open(key: &Key<Aes256Gcm>, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Invalid);
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    Aes256Gcm::new(key).decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad }).map_err(|_| CryptoError::Invalid)
}

/// The additional data: the key id and the canonical encryption context.
fn aad(key_id: &str, context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut a = key_id.as_bytes().to_vec();
    a.push(0);
    a.extend_from_slice(serde_json::to_string(context).unwrap_or_default().as_bytes());
    a
}

/// Encrypts `plaintext` under `material` of `key_id` with `context` bound to it.
pub fn encrypt(key_id: &str, material: &Key<Aes256Gcm>, plaintext: &[u8], context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(key_id.len() as u8);
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&seal(material, plaintext, &aad(key_id, context)));
    out
}

/// The key id a ciphertext blob names.
pub fn key_id_of(blob: &[u8]) -> Result<String, CryptoError> {
    let rest = blob.strip_prefix(MAGIC.as_slice()).ok_or(CryptoError::NotACiphertext)?;
    let (&len, rest) = rest.split_first().ok_or(CryptoError::NotACiphertext)?;
    let id = rest.get(..len as usize).ok_or(CryptoError::NotACiphertext)?;
    String::from_utf8(id.to_vec()).map_err(|_| CryptoError::NotACiphertext)
}

/// Decrypts a blob [`encrypt`] produced, with the same context.
pub fn decrypt(blob: &[u8], material: &Key<Aes256Gcm>, context: &BTreeMap<String, String>) -> Result<Vec<u8>, CryptoError> {
    let key_id = key_id_of(blob)?;
    let sealed = &blob[MAGIC.len() + 1 + key_id.len()..];
    open(material, sealed, &aad(&key_id, context))
}

/// Random bytes (GenerateRandom, data keys).
pub fn random_bytes(n: usize) -> Vec<u8> {
    use aes_gcm::aead::rand_core::RngCore;
    let mut v = vec![0u8; n];
    OsRng.fill_bytes(&mut v);
    v
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_binds_key_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::load_or_create(dir.path()).unwrap();
        let again = MasterKey::load_or_create(dir.path()).unwrap();
        assert_eq!(master.0, again.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let wrapped = master.new_material("arn:k1");
        let material = master.unwrap("arn:k1", &wrapped).unwrap();
        assert_eq!(master.unwrap("arn:k2", &wrapped).unwrap_err(), CryptoError::Invalid);
        let mut ctx = BTreeMap::new();
        ctx.insert("a".to_string(), "b".to_string());
        let blob = encrypt("k1", &material, b"hello", &ctx);
        assert_eq!(key_id_of(&blob).unwrap(), "k1");
        assert_eq!(decrypt(&blob, &material, &ctx).unwrap(), b"hello");
        assert_eq!(decrypt(&blob, &material, &BTreeMap::new()).unwrap_err(), CryptoError::Invalid);
        let mut tampered = blob.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(decrypt(&tampered, &material, &ctx).unwrap_err(), CryptoError::Invalid);
        assert_eq!(key_id_of(b"nope").unwrap_err(), CryptoError::NotACiphertext);
    }
}

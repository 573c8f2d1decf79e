//! Secret values, sealed with XChaCha20-Poly1305 before they reach the database. The additional
//! data binds each ciphertext to its service, environment and name, so a sealed value copied to
//! another secret's row does not open. The key lives outside the database: a file in the data
//! directory (mode 0600, created at first start) or `SLIPWAY_SECRETS_KEY`.

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use slipway_core::SealedSecret;
use std::path::Path;

const NONCE: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("a secrets key is 32 bytes (base64 of them in SLIPWAY_SECRETS_KEY or the key file); got {0}")]
    BadKey(String),
    #[error("secret {name:?} was sealed with key {sealed_with}, not with the current key {current}; rotate with `slipway secrets rotate-key --old-key-file …`")]
    WrongKey {
        name: String,
        sealed_with: String,
        current: String,
    },
    #[error("secret {0:?} does not open with the current key (corrupted or moved)")]
    Corrupt(String),
    #[error("cannot read or write the key file {path}: {error}")]
    Io { path: String, error: String },
    #[error("no randomness available: {0}")]
    Random(String),
}

/// The key that seals secrets.
#[derive(Clone)]
pub struct SecretKey {
    cipher: XChaCha20Poly1305,
    id: String,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

impl SecretKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.len() != 32 {
            return Err(SecretError::BadKey(format!("{} bytes", bytes.len())));
        }
        let id = format!("{:x}", Sha256::digest(bytes))[..12].to_string();
        let cipher = XChaCha20Poly1305::new_from_slice(bytes)
            .map_err(|_| SecretError::BadKey("an unusable key".into()))?;
        Ok(Self { cipher, id })
    }

    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| SecretError::BadKey("text that is not base64".into()))?;
        Self::from_bytes(&bytes)
    }

    /// A new random key, as base64 (what the key file holds).
    pub fn generate() -> Result<String, SecretError> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Reads the key file, creating it (mode 0600) with a new key when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        let io = |e: std::io::Error| SecretError::Io {
            path: path.display().to_string(),
            error: e.to_string(),
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = Self::generate()?;
                write_private(path, &format!("{text}\n")).map_err(io)?;
                Self::from_base64(&text)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A short fingerprint of the key (not secret), recorded with each sealed value.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `value` for one secret; the caller fills in the version.
    pub fn seal(
        &self,
        service: &str,
        environment: &str,
        name: &str,
        value: &str,
    ) -> Result<SealedSecret, SecretError> {
        let mut nonce = [0u8; NONCE];
        getrandom::getrandom(&mut nonce).map_err(|e| SecretError::Random(e.to_string()))?;
        let aad = aad(service, environment, name);
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| SecretError::Corrupt(name.to_string()))?;
        let mut ciphertext = nonce.to_vec();
        ciphertext.extend_from_slice(&ct);
        Ok(SealedSecret {
            service: service.to_string(),
            environment: environment.to_string(),
            name: name.to_string(),
            version: 0,
            key_id: self.id.clone(),
            ciphertext,
        })
    }

    pub fn open(&self, sealed: &SealedSecret) -> Result<String, SecretError> {
        if sealed.key_id != self.id {
            return Err(SecretError::WrongKey {
                name: sealed.name.clone(),
                sealed_with: sealed.key_id.clone(),
                current: self.id.clone(),
            });
        }
        if sealed.ciphertext.len() < NONCE {
            return Err(SecretError::Corrupt(sealed.name.clone()));
        }
        let (nonce, ct) = sealed.ciphertext.split_at(NONCE);
        let aad = aad(&sealed.service, &sealed.environment, &sealed.name);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| SecretError::Corrupt(sealed.name.clone()))?;
        String::from_utf8(plain).map_err(|_| SecretError::Corrupt(sealed.name.clone()))
    }
}

fn aad(service: &str, environment: &str, name: &str) -> Vec<u8> {
    format!("slipway-secret:v1\0{service}\0{environment}\0{name}").into_bytes()
}

/// Writes a file only its owner can read, without a window where it is readable by others.
pub fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_base64(&SecretKey::generate().unwrap()).unwrap()
    }

    #[test]
    fn seal_and_open() {
        let k = key();
        let sealed = k
            .seal("api", "dev", "DB_PASSWORD", "hunter2 ünïcode")
            .unwrap();
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(k.open(&sealed).unwrap(), "hunter2 ünïcode");
        // Two seals of one value differ (random nonce).
        assert_ne!(
            k.seal("api", "dev", "DB_PASSWORD", "x").unwrap().ciphertext,
            k.seal("api", "dev", "DB_PASSWORD", "x").unwrap().ciphertext
        );
    }

    #[test]
    fn a_ciphertext_moved_to_another_secret_or_key_does_not_open() {
        let k = key();
        let mut sealed = k.seal("api", "dev", "A", "v").unwrap();
        sealed.name = "B".into();
        assert!(matches!(k.open(&sealed), Err(SecretError::Corrupt(_))));
        let mut sealed = k.seal("api", "dev", "A", "v").unwrap();
        sealed.environment = "prod".into();
        assert!(matches!(k.open(&sealed), Err(SecretError::Corrupt(_))));
        let other = key();
        let sealed = k.seal("api", "dev", "A", "v").unwrap();
        assert!(matches!(
            other.open(&sealed),
            Err(SecretError::WrongKey { .. })
        ));
        let mut tampered = k.seal("api", "dev", "A", "v").unwrap();
        let last = tampered.ciphertext.len() - 1;
        tampered.ciphertext[last] ^= 1;
        assert!(matches!(k.open(&tampered), Err(SecretError::Corrupt(_))));
    }

    #[test]
    fn key_files_are_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.key");
        let a = SecretKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(a.id(), b.id());
        assert!(SecretKey::from_base64("c2hvcnQ=").is_err());
    }
}

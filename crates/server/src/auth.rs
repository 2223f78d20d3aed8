//! JWT authentication at the handshake. (Interface fixed; the implementation is being written.)

use std::path::PathBuf;

use serde::Deserialize;

/// How tokens are verified; absent everywhere means guest mode.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HMAC secret (HS256/384/512).
    pub secret: Option<String>,
    /// PEM public key file (RS*, PS*, ES*, EdDSA).
    pub public_key: Option<PathBuf>,
    /// JWKS file.
    pub jwks: Option<PathBuf>,
    /// Accepted algorithms (default: those the key type allows).
    pub algorithms: Vec<String>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required `aud` (any of).
    pub audience: Vec<String>,
    /// Clock skew allowed for `exp`/`nbf`, seconds.
    pub leeway: u64,
}

impl AuthConfig {
    /// Whether any key is configured (otherwise the chat runs in guest mode).
    pub fn enabled(&self) -> bool {
        self.secret.is_some() || self.public_key.is_some() || self.jwks.is_some()
    }
}

/// Why a token or a key was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Anything, for now.
    #[error("{0}")]
    Invalid(String),
}

/// The claims handlers see.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// `sub`.
    pub sub: String,
    /// `name`, when present.
    pub name: Option<String>,
    /// `rooms` the user may join, when the token limits them.
    pub rooms: Option<Vec<String>>,
    /// Every claim.
    pub all: serde_json::Map<String, serde_json::Value>,
}

/// Verifies tokens with the configured keys.
pub struct Verifier {}

impl Verifier {
    /// Loads the keys; fails naming the bad field.
    pub fn from_config(_config: &AuthConfig) -> Result<Self, AuthError> {
        Err(AuthError::Invalid("not written yet".into()))
    }
    /// Checks signature, `exp`, `nbf`, `iss`, `aud`.
    pub fn verify(&self, _token: &str) -> Result<Claims, AuthError> {
        Err(AuthError::Invalid("not written yet".into()))
    }
}

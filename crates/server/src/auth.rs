//! JWT authentication at the handshake.
//!
//! A [`Verifier`] holds the configured keys: an HMAC secret (HS256/384/512), a PEM public
//! key (RS*, PS*, ES256/ES384, EdDSA) and/or a JWK set (the key is picked by the token's
//! `kid`). Each key verifies only the algorithms of its type, and only the algorithms
//! allowed by the configuration are accepted at all, so a token signed with HS256 using an
//! RSA public key as the secret (the classic algorithm confusion) is refused.
//!
//! Checked: the signature, `exp` (required), `nbf` (when present), both with
//! `leeway`; `iss` when `issuer` is set (then required); `aud` when `audience` is set (then
//! required; with no `audience` configured the claim is not checked, as Node's
//! `jsonwebtoken` does); `sub` is required, it is the user's id.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

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

/// The largest `leeway` accepted: past a day, `exp` means little.
pub const MAX_LEEWAY: u64 = 86_400;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Why a token or a key was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// The signature does not match the key.
    #[error("bad signature")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` names none of the configured audiences.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim (`exp`, `sub`, and `iss`/`aud` when configured) is missing or has
    /// the wrong type.
    #[error("missing or invalid claim {0}")]
    MissingClaim(String),
    /// Not a JWT, or a claim has an unusable shape.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The token's `kid` names no configured key.
    #[error("unknown key id {0:?}")]
    UnknownKid(String),
    /// The token has no `kid` but several keys could verify it.
    #[error("the token has no kid and several keys could verify it")]
    KidRequired,
    /// The token's `alg` is not accepted (not configured, or not for the key's type).
    #[error("algorithm {0} not allowed")]
    AlgorithmNotAllowed(String),
    /// A key file could not be read.
    #[error("cannot read {field} ({}): {source}", path.display())]
    KeyFile {
        /// The configuration field, e.g. `auth.public_key`.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A key file was read but holds no usable key.
    #[error("{field} ({}): {reason}", path.display())]
    InvalidKey {
        /// The configuration field.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration value is unusable.
    #[error("{field}: {reason}")]
    Config {
        /// The configuration field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl AuthError {
    /// Whether this is about the server's configuration rather than a token.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Self::KeyFile { .. } | Self::InvalidKey { .. } | Self::Config { .. }
        )
    }
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

const HMAC: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
const RSA: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
// Which of the two a PEM key is for is in its curve; a token with the other one fails
// the signature check.
const EC: &[Algorithm] = &[Algorithm::ES256, Algorithm::ES384];
const ED: &[Algorithm] = &[Algorithm::EdDSA];

struct Key {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

/// Verifies tokens with the configured keys.
pub struct Verifier {
    keys: Vec<Key>,
    allowed: Vec<Algorithm>,
    issuer: Option<String>,
    audience: Vec<String>,
    leeway: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.len())
            .field("allowed", &self.allowed)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish()
    }
}

fn read_key_file(field: &'static str, path: &Path) -> Result<Vec<u8>, AuthError> {
    std::fs::read(path).map_err(|source| AuthError::KeyFile {
        field,
        path: path.to_owned(),
        source,
    })
}

fn pem_key(path: &Path) -> Result<Key, AuthError> {
    const FIELD: &str = "auth.public_key";
    let pem = read_key_file(FIELD, path)?;
    let invalid = |reason: &str| AuthError::InvalidKey {
        field: FIELD,
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let text = String::from_utf8_lossy(&pem);
    // jsonwebtoken would take a PKCS#1 private key as an RSA key and then refuse every
    // signature; say what is wrong instead.
    if text.contains("PRIVATE KEY-----") {
        return Err(invalid(
            "this is a private key; give the public key (openssl pkey -in key.pem -pubout)",
        ));
    }
    if !text.contains("PUBLIC KEY-----") {
        return Err(invalid("not a PEM public key"));
    }
    let (key, algorithms) = if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
        (k, RSA)
    } else if let Ok(k) = DecodingKey::from_ec_pem(&pem) {
        (k, EC)
    } else if let Ok(k) = DecodingKey::from_ed_pem(&pem) {
        (k, ED)
    } else {
        return Err(invalid(
            "not an RSA, EC (P-256, P-384) or Ed25519 public key in PEM",
        ));
    };
    Ok(Key {
        kid: None,
        algorithms: algorithms.to_vec(),
        key,
    })
}

fn key_algorithm(a: KeyAlgorithm) -> Option<Algorithm> {
    Some(match a {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        // Encryption algorithms: not for signatures.
        KeyAlgorithm::RSA1_5 | KeyAlgorithm::RSA_OAEP | KeyAlgorithm::RSA_OAEP_256 => return None,
    })
}

/// One JWK as a key, or why it cannot verify signatures.
fn jwk_key(jwk: &Jwk) -> Result<Key, String> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("an encryption key (use: enc)".into());
    }
    let by_type: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => RSA.to_vec(),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err(format!("unsupported curve {:?}", p.curve)),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => ED.to_vec(),
            _ => return Err(format!("unsupported curve {:?}", p.curve)),
        },
        AlgorithmParameters::OctetKey(_) => HMAC.to_vec(),
    };
    let algorithms = match jwk.common.key_algorithm {
        None => by_type,
        Some(a) => match key_algorithm(a) {
            Some(a) if by_type.contains(&a) => vec![a],
            _ => return Err(format!("algorithm {a} does not fit the key type")),
        },
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    Ok(Key {
        kid: jwk.common.key_id.clone(),
        algorithms,
        key,
    })
}

fn jwks_keys(path: &Path) -> Result<Vec<Key>, AuthError> {
    const FIELD: &str = "auth.jwks";
    let bytes = read_key_file(FIELD, path)?;
    let invalid = |reason: String| AuthError::InvalidKey {
        field: FIELD,
        path: path.to_owned(),
        reason,
    };
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<Value>,
    }
    let set: Set = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("not a JWK set ({{\"keys\": [...]}}): {e}")))?;
    let mut keys = Vec::new();
    for (i, v) in set.keys.into_iter().enumerate() {
        // One key this build cannot use (another curve, an encryption key) must not make
        // the others unusable: it is skipped with a warning.
        let key = serde_json::from_value::<Jwk>(v)
            .map_err(|e| e.to_string())
            .and_then(|jwk| jwk_key(&jwk));
        match key {
            Ok(k) => keys.push(k),
            Err(reason) => {
                tracing::warn!(file = %path.display(), index = i, reason, "JWK skipped")
            }
        }
    }
    if keys.is_empty() {
        return Err(invalid("no usable signature key".into()));
    }
    Ok(keys)
}

fn auth_error(e: jsonwebtoken::errors::Error) -> AuthError {
    match e.into_kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthError::AlgorithmNotAllowed("of the token".into())
        }
        // A signature of the wrong size or shape for the key.
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::Crypto(_) => {
            AuthError::BadSignature
        }
        ErrorKind::Base64(e) => AuthError::Malformed(format!("bad base64: {e}")),
        ErrorKind::Json(e) => AuthError::Malformed(format!("bad JSON: {e}")),
        ErrorKind::Utf8(e) => AuthError::Malformed(format!("bad UTF-8: {e}")),
        ErrorKind::InvalidToken => AuthError::Malformed("not a JWT".into()),
        other => AuthError::Malformed(format!("{other:?}")),
    }
}

impl Verifier {
    /// Loads the keys; fails naming the bad field.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthError> {
        if !config.enabled() {
            return Err(AuthError::Config {
                field: "auth",
                reason: "no key: set auth.secret, auth.public_key or auth.jwks".into(),
            });
        }
        if config.leeway > MAX_LEEWAY {
            return Err(AuthError::Config {
                field: "auth.leeway",
                reason: format!("at most {MAX_LEEWAY} seconds"),
            });
        }
        let mut keys = Vec::new();
        if let Some(secret) = &config.secret {
            if secret.is_empty() {
                return Err(AuthError::Config {
                    field: "auth.secret",
                    reason: "empty".into(),
                });
            }
            if secret.len() < 32 {
                tracing::warn!("auth.secret is shorter than 32 bytes: easy to guess offline");
            }
            keys.push(Key {
                kid: None,
                algorithms: HMAC.to_vec(),
                key: DecodingKey::from_secret(secret.as_bytes()),
            });
        }
        if let Some(path) = &config.public_key {
            keys.push(pem_key(path)?);
        }
        if let Some(path) = &config.jwks {
            keys.extend(jwks_keys(path)?);
        }
        let supported: HashSet<Algorithm> = keys
            .iter()
            .flat_map(|k| k.algorithms.iter().copied())
            .collect();
        let allowed = if config.algorithms.is_empty() {
            let mut all: Vec<Algorithm> = supported.into_iter().collect();
            all.sort_by_key(|a| format!("{a:?}"));
            all
        } else {
            let mut allowed = Vec::new();
            for name in &config.algorithms {
                let a = Algorithm::from_str(name).map_err(|_| AuthError::Config {
                    field: "auth.algorithms",
                    reason: format!(
                        "unknown algorithm {name:?} (HS256/384/512, RS256/384/512, \
                         PS256/384/512, ES256, ES384, EdDSA)"
                    ),
                })?;
                if !supported.contains(&a) {
                    return Err(AuthError::Config {
                        field: "auth.algorithms",
                        reason: format!("{name} is not verifiable with any configured key"),
                    });
                }
                allowed.push(a);
            }
            allowed
        };
        Ok(Self {
            keys,
            allowed,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: config.leeway,
        })
    }

    /// The algorithms accepted.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.allowed
    }

    /// Checks signature, `exp`, `nbf`, `iss`, `aud`.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed("too long".into()));
        }
        let header = jsonwebtoken::decode_header(token).map_err(auth_error)?;
        let alg = header.alg;
        if !self.allowed.contains(&alg) {
            return Err(AuthError::AlgorithmNotAllowed(format!("{alg:?}")));
        }
        let fit: Vec<&Key> = self
            .keys
            .iter()
            .filter(|k| k.algorithms.contains(&alg))
            .collect();
        let without_kid: Vec<&Key> = fit.iter().copied().filter(|k| k.kid.is_none()).collect();
        let candidates = match &header.kid {
            Some(kid) => {
                let named: Vec<&Key> = fit
                    .iter()
                    .copied()
                    .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
                    .collect();
                if !named.is_empty() {
                    named
                } else if !without_kid.is_empty() {
                    // A secret or a PEM key has no id; the token's `kid` means nothing to it.
                    without_kid
                } else {
                    return Err(AuthError::UnknownKid(kid.clone()));
                }
            }
            None if fit.len() <= 1 => fit,
            None if !without_kid.is_empty() => without_kid,
            None => return Err(AuthError::KidRequired),
        };
        if candidates.is_empty() {
            return Err(AuthError::AlgorithmNotAllowed(format!("{alg:?}")));
        }
        let mut v = Validation::new(alg);
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        if self.audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.audience);
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        let mut first_err = None;
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &v) {
                Ok(data) => return claims(data.claims),
                Err(e) => {
                    let e = auth_error(e);
                    // Another key of the same type may still verify it.
                    let retry = matches!(e, AuthError::BadSignature);
                    first_err.get_or_insert(e);
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(first_err.unwrap_or(AuthError::BadSignature))
    }
}

fn claims(all: Map<String, Value>) -> Result<Claims, AuthError> {
    let sub = match all.get("sub") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(AuthError::MissingClaim("sub".into())),
    };
    let name = match all.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    };
    let rooms = match all.get("rooms") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|r| r.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    AuthError::Malformed("the rooms claim must be an array of strings".into())
                })?,
        ),
        Some(_) => {
            return Err(AuthError::Malformed(
                "the rooms claim must be an array of strings".into(),
            ))
        }
    };
    Ok(Claims {
        sub,
        name,
        rooms,
        all,
    })
}

/// The token of a handshake: `auth.token` of the CONNECT packet, else the
/// `Authorization: Bearer` header of the request that opened the connection.
pub fn token_from_handshake(h: &iolite::Handshake) -> Option<String> {
    if let Some(t) = h.auth().get("token").and_then(Value::as_str) {
        if !t.trim().is_empty() {
            return Some(t.trim().to_owned());
        }
    }
    let value = h
        .headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

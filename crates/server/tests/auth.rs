//! JWT verification with real keys: the committed fixtures (`tests/fixtures/generate.sh`,
//! made with openssl) sign tokens that the server's verifier checks.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use iolite_server::auth::{token_from_handshake, AuthConfig, AuthError, Verifier};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const SECRET: &str = "a test secret that is long enough for HS512 tests";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&h, claims, key).unwrap()
}

fn claims() -> Value {
    json!({
        "sub": "user-1",
        "name": "Ada",
        "iss": "https://issuer.test",
        "aud": "chat",
        "exp": now() + 600,
        "rooms": ["general", "ops"],
        "team": "blue",
    })
}

fn with(mut c: Value, key: &str, v: Value) -> Value {
    c[key] = v;
    c
}

fn without(mut c: Value, key: &str) -> Value {
    c.as_object_mut().unwrap().remove(key);
    c
}

/// One way to configure keys, with what signs tokens for it.
struct Family {
    name: &'static str,
    config: AuthConfig,
    algs: Vec<Algorithm>,
    key: EncodingKey,
    kid: Option<&'static str>,
    /// Another key of the same type, whose signatures must be refused.
    other: Option<EncodingKey>,
}

fn checked(mut config: AuthConfig) -> AuthConfig {
    config.issuer = Some("https://issuer.test".into());
    config.audience = vec!["chat".into(), "admin".into()];
    config.leeway = 30;
    config
}

fn pem_config(file: &str) -> AuthConfig {
    checked(AuthConfig {
        public_key: Some(fixture(file)),
        ..Default::default()
    })
}

fn jwks_config(file: &str) -> AuthConfig {
    checked(AuthConfig {
        jwks: Some(fixture(file)),
        ..Default::default()
    })
}

fn rsa(file: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(&read(file)).unwrap()
}

fn ec(file: &str) -> EncodingKey {
    EncodingKey::from_ec_pem(&read(file)).unwrap()
}

fn families() -> Vec<Family> {
    use Algorithm::*;
    let rsa_algs = vec![RS256, RS384, RS512, PS256, PS384, PS512];
    vec![
        Family {
            name: "secret",
            config: checked(AuthConfig {
                secret: Some(SECRET.into()),
                ..Default::default()
            }),
            algs: vec![HS256, HS384, HS512],
            key: EncodingKey::from_secret(SECRET.as_bytes()),
            kid: None,
            other: Some(EncodingKey::from_secret(b"another secret")),
        },
        Family {
            name: "RSA PEM",
            config: pem_config("rsa_public.pem"),
            algs: rsa_algs.clone(),
            key: rsa("rsa_private.pem"),
            kid: None,
            other: Some(rsa("rsa2_private.pem")),
        },
        Family {
            name: "EC P-256 PEM",
            config: pem_config("ec_p256_public.pem"),
            algs: vec![ES256],
            key: ec("ec_p256_private.pem"),
            kid: None,
            other: None,
        },
        Family {
            name: "EC P-384 PEM",
            config: pem_config("ec_p384_public.pem"),
            algs: vec![ES384],
            key: ec("ec_p384_private.pem"),
            kid: None,
            other: None,
        },
        Family {
            name: "Ed25519 PEM",
            config: pem_config("ed25519_public.pem"),
            algs: vec![EdDSA],
            key: EncodingKey::from_ed_pem(&read("ed25519_private.pem")).unwrap(),
            kid: None,
            other: None,
        },
        Family {
            name: "JWKS rsa-1",
            config: jwks_config("jwks.json"),
            algs: rsa_algs.clone(),
            key: rsa("rsa_private.pem"),
            kid: Some("rsa-1"),
            other: Some(rsa("rsa2_private.pem")),
        },
        Family {
            name: "JWKS rsa-2",
            config: jwks_config("jwks.json"),
            algs: vec![RS256, PS512],
            key: rsa("rsa2_private.pem"),
            kid: Some("rsa-2"),
            other: Some(rsa("rsa_private.pem")),
        },
        Family {
            name: "JWKS ec-256",
            config: jwks_config("jwks.json"),
            algs: vec![ES256],
            key: ec("ec_p256_private.pem"),
            kid: Some("ec-256"),
            other: None,
        },
        Family {
            name: "JWKS ec-384",
            config: jwks_config("jwks.json"),
            algs: vec![ES384],
            key: ec("ec_p384_private.pem"),
            kid: Some("ec-384"),
            other: None,
        },
        Family {
            name: "JWKS ed-1",
            config: jwks_config("jwks.json"),
            algs: vec![EdDSA],
            key: EncodingKey::from_ed_pem(&read("ed25519_private.pem")).unwrap(),
            kid: Some("ed-1"),
            other: None,
        },
        Family {
            name: "JWKS single key, no kid",
            config: jwks_config("jwks_single.json"),
            algs: rsa_algs,
            key: rsa("rsa_private.pem"),
            kid: None,
            other: Some(rsa("rsa2_private.pem")),
        },
    ]
}

/// Swaps the signature of `token` for the one of `donor` (same header, other payload).
fn splice(token: &str, donor: &str) -> String {
    let (head_payload, _) = token.rsplit_once('.').unwrap();
    let (_, sig) = donor.rsplit_once('.').unwrap();
    format!("{head_payload}.{sig}")
}

#[test]
fn every_family_checks_signature_and_claims() {
    for f in families() {
        let v = Verifier::from_config(&f.config).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        for &alg in &f.algs {
            let what = format!("{} {alg:?}", f.name);
            let tok = |c: &Value| sign(alg, &f.key, f.kid, c);

            let c = v
                .verify(&tok(&claims()))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(c.sub, "user-1", "{what}");
            assert_eq!(c.name.as_deref(), Some("Ada"), "{what}");
            assert_eq!(
                c.rooms,
                Some(vec!["general".into(), "ops".into()]),
                "{what}"
            );
            assert_eq!(c.all["team"], "blue", "{what}");

            // exp: past the leeway refused, within it accepted.
            let r = v.verify(&tok(&with(claims(), "exp", json!(now() - 120))));
            assert!(matches!(r, Err(AuthError::Expired)), "{what}: {r:?}");
            assert_eq!(r.unwrap_err().to_string(), "token expired");
            assert!(v
                .verify(&tok(&with(claims(), "exp", json!(now() - 10))))
                .is_ok());
            let r = v.verify(&tok(&without(claims(), "exp")));
            assert!(
                matches!(&r, Err(AuthError::MissingClaim(c)) if c == "exp"),
                "{what}: {r:?}"
            );

            // nbf: in the future past the leeway refused, within it accepted.
            let r = v.verify(&tok(&with(claims(), "nbf", json!(now() + 120))));
            assert!(matches!(r, Err(AuthError::NotYetValid)), "{what}: {r:?}");
            assert!(v
                .verify(&tok(&with(claims(), "nbf", json!(now() + 10))))
                .is_ok());
            assert!(v
                .verify(&tok(&with(claims(), "nbf", json!(now() - 10))))
                .is_ok());

            // iss.
            let r = v.verify(&tok(&with(claims(), "iss", json!("https://evil.test"))));
            assert!(matches!(r, Err(AuthError::WrongIssuer)), "{what}: {r:?}");
            let r = v.verify(&tok(&without(claims(), "iss")));
            assert!(
                matches!(&r, Err(AuthError::MissingClaim(c)) if c == "iss"),
                "{what}: {r:?}"
            );

            // aud: any of the configured ones, as a string or in an array.
            let r = v.verify(&tok(&with(claims(), "aud", json!("billing"))));
            assert!(matches!(r, Err(AuthError::WrongAudience)), "{what}: {r:?}");
            let r = v.verify(&tok(&with(claims(), "aud", json!(["billing", "x"]))));
            assert!(matches!(r, Err(AuthError::WrongAudience)), "{what}: {r:?}");
            assert!(v
                .verify(&tok(&with(claims(), "aud", json!(["billing", "admin"]))))
                .is_ok());
            let r = v.verify(&tok(&without(claims(), "aud")));
            assert!(
                matches!(&r, Err(AuthError::MissingClaim(c)) if c == "aud"),
                "{what}: {r:?}"
            );

            // sub is the user id.
            let r = v.verify(&tok(&without(claims(), "sub")));
            assert!(
                matches!(&r, Err(AuthError::MissingClaim(c)) if c == "sub"),
                "{what}: {r:?}"
            );

            // Bad signatures: a payload that is not the one signed, another key.
            let other_payload = tok(&with(claims(), "sub", json!("admin")));
            let r = v.verify(&splice(&other_payload, &tok(&claims())));
            assert!(matches!(r, Err(AuthError::BadSignature)), "{what}: {r:?}");
            assert_eq!(r.unwrap_err().to_string(), "bad signature");
            if let Some(other) = &f.other {
                let r = v.verify(&sign(alg, other, f.kid, &claims()));
                assert!(matches!(r, Err(AuthError::BadSignature)), "{what}: {r:?}");
            }
            // An expired token with a bad signature is refused for its signature.
            let expired = tok(&with(claims(), "exp", json!(now() - 1000)));
            let r = v.verify(&splice(&expired, &tok(&claims())));
            assert!(matches!(r, Err(AuthError::BadSignature)), "{what}: {r:?}");
        }
    }
}

#[test]
fn hmac_signed_with_the_public_key_is_refused() {
    // The classic confusion: the attacker signs HS256 with the server's public key bytes
    // as the secret, hoping it verifies with "the key" as an HMAC secret.
    let pem = read("rsa_public.pem");
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&pem),
        None,
        &claims(),
    );
    for config in [
        pem_config("rsa_public.pem"),
        jwks_config("jwks_single.json"),
    ] {
        let v = Verifier::from_config(&config).unwrap();
        let r = v.verify(&forged);
        assert!(
            matches!(&r, Err(AuthError::AlgorithmNotAllowed(a)) if a == "HS256"),
            "{r:?}"
        );
        assert_eq!(r.unwrap_err().to_string(), "algorithm HS256 not allowed");
    }
    // Same with the JWKS key id.
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&pem),
        Some("rsa-1"),
        &claims(),
    );
    let v = Verifier::from_config(&jwks_config("jwks.json")).unwrap();
    assert!(matches!(
        v.verify(&forged),
        Err(AuthError::AlgorithmNotAllowed(_))
    ));
    // And an EC key: no HMAC either.
    let pem = read("ec_p256_public.pem");
    let forged = sign(
        Algorithm::HS512,
        &EncodingKey::from_secret(&pem),
        None,
        &claims(),
    );
    let v = Verifier::from_config(&pem_config("ec_p256_public.pem")).unwrap();
    assert!(matches!(
        v.verify(&forged),
        Err(AuthError::AlgorithmNotAllowed(_))
    ));
}

#[test]
fn configured_algorithms_restrict_the_key_type() {
    let mut config = pem_config("rsa_public.pem");
    config.algorithms = vec!["RS256".into()];
    let v = Verifier::from_config(&config).unwrap();
    let key = rsa("rsa_private.pem");
    assert!(v
        .verify(&sign(Algorithm::RS256, &key, None, &claims()))
        .is_ok());
    for alg in [Algorithm::RS512, Algorithm::PS256] {
        let r = v.verify(&sign(alg, &key, None, &claims()));
        assert!(
            matches!(r, Err(AuthError::AlgorithmNotAllowed(_))),
            "{alg:?}: {r:?}"
        );
    }
    // A secret and a public key side by side: each verifies only its own type.
    let config = AuthConfig {
        secret: Some(SECRET.into()),
        public_key: Some(fixture("rsa_public.pem")),
        ..Default::default()
    };
    let v = Verifier::from_config(&config).unwrap();
    let c = json!({"sub": "u", "exp": now() + 60});
    assert!(v
        .verify(&sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(SECRET.as_bytes()),
            None,
            &c
        ))
        .is_ok());
    assert!(v.verify(&sign(Algorithm::RS256, &key, None, &c)).is_ok());
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&read("rsa_public.pem")),
        None,
        &c,
    );
    assert!(matches!(v.verify(&forged), Err(AuthError::BadSignature)));
}

#[test]
fn jwks_picks_the_key_by_kid() {
    let v = Verifier::from_config(&jwks_config("jwks.json")).unwrap();
    let key = rsa("rsa_private.pem");
    let r = v.verify(&sign(Algorithm::RS256, &key, Some("rsa-9"), &claims()));
    assert!(
        matches!(&r, Err(AuthError::UnknownKid(k)) if k == "rsa-9"),
        "{r:?}"
    );
    assert_eq!(r.unwrap_err().to_string(), "unknown key id \"rsa-9\"");
    // Two RSA keys and no kid: which one?
    let r = v.verify(&sign(Algorithm::RS256, &key, None, &claims()));
    assert!(matches!(r, Err(AuthError::KidRequired)), "{r:?}");
    // The right signature under the other key's id.
    let r = v.verify(&sign(Algorithm::RS256, &key, Some("rsa-2"), &claims()));
    assert!(matches!(r, Err(AuthError::BadSignature)), "{r:?}");
    // One EC key for each curve: no kid is fine, the algorithm picks it.
    let r = v.verify(&sign(
        Algorithm::ES256,
        &ec("ec_p256_private.pem"),
        None,
        &claims(),
    ));
    assert!(r.is_ok(), "{r:?}");
    // The P-256 key's id with ES384: that key is pinned to ES256.
    let r = v.verify(&sign(
        Algorithm::ES384,
        &ec("ec_p384_private.pem"),
        Some("ec-256"),
        &claims(),
    ));
    assert!(matches!(r, Err(AuthError::UnknownKid(_))), "{r:?}");
}

#[test]
fn garbage_tokens_are_malformed() {
    let v = Verifier::from_config(&AuthConfig {
        secret: Some(SECRET.into()),
        ..Default::default()
    })
    .unwrap();
    let long = "a".repeat(20_000);
    let garbage = [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "....",
        "bm90IGpzb24.eyJzdWIiOiJ1MSIsImV4cCI6OTk5OTk5OTk5OX0.sig",
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1MSIsImV4cCI6OTk5OTk5OTk5OX0.",
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1MSIsImV4cCI6OTk5OTk5OTk5OX0",
        "\u{0}\u{1}.\u{2}.\u{3}",
        "é.é.é",
        long.as_str(),
    ];
    for g in garbage {
        let r = v.verify(g);
        assert!(
            matches!(r, Err(AuthError::Malformed(_))),
            "{:?}: {r:?}",
            &g[..g.len().min(40)]
        );
    }
    // A valid header over junk: the signature (checked first) cannot match.
    for g in [
        "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.%%%.sig",
    ] {
        let r = v.verify(g);
        assert!(matches!(r, Err(AuthError::BadSignature)), "{g}: {r:?}");
    }
    // A well-signed token whose claims have the wrong shapes.
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let c = json!({"sub": "u", "exp": now() + 60, "rooms": "general"});
    let r = v.verify(&sign(Algorithm::HS256, &key, None, &c));
    assert!(matches!(r, Err(AuthError::Malformed(_))), "{r:?}");
    let c = json!({"sub": "u", "exp": now() + 60, "rooms": ["a", 1]});
    let r = v.verify(&sign(Algorithm::HS256, &key, None, &c));
    assert!(matches!(r, Err(AuthError::Malformed(_))), "{r:?}");
    let c = json!({"sub": 42, "exp": now() + 60});
    let r = v.verify(&sign(Algorithm::HS256, &key, None, &c));
    assert!(matches!(r, Err(AuthError::MissingClaim(_))), "{r:?}");
    let c = json!({"sub": "u", "exp": "tomorrow"});
    let r = v.verify(&sign(Algorithm::HS256, &key, None, &c));
    assert!(matches!(r, Err(AuthError::MissingClaim(_))), "{r:?}");
    // Without iss/aud configured, neither is required; a name is optional.
    let c = json!({"sub": "u", "exp": now() + 60, "aud": "whatever"});
    let claims = v.verify(&sign(Algorithm::HS256, &key, None, &c)).unwrap();
    assert_eq!(claims.name, None);
    assert_eq!(claims.rooms, None);
}

#[test]
fn bad_configuration_names_the_field() {
    let missing = fixture("does-not-exist.pem");
    let e = Verifier::from_config(&AuthConfig {
        public_key: Some(missing.clone()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::KeyFile {
                field: "auth.public_key",
                ..
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("auth.public_key") && text.contains("does-not-exist.pem"),
        "{text}"
    );
    assert!(e.is_config());

    let e = Verifier::from_config(&AuthConfig {
        jwks: Some(fixture("nope.json")),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::KeyFile {
                field: "auth.jwks",
                ..
            }
        ),
        "{e:?}"
    );

    let e = Verifier::from_config(&AuthConfig {
        public_key: Some(fixture("rsa_private.pem")),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::InvalidKey {
                field: "auth.public_key",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("private key"), "{e}");

    let e = Verifier::from_config(&AuthConfig {
        public_key: Some(fixture("jwks.json")),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::InvalidKey {
                field: "auth.public_key",
                ..
            }
        ),
        "{e:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad_pem = dir.path().join("bad.pem");
    std::fs::write(
        &bad_pem,
        "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let e = Verifier::from_config(&AuthConfig {
        public_key: Some(bad_pem),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(e, AuthError::InvalidKey { .. }), "{e:?}");

    for (name, content) in [
        ("not-json.json", "not json"),
        ("no-keys.json", r#"{"keys": []}"#),
        (
            "unusable.json",
            r#"{"keys": [{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}, {"kty": "XYZ"}]}"#,
        ),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        let e = Verifier::from_config(&AuthConfig {
            jwks: Some(p),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            matches!(
                e,
                AuthError::InvalidKey {
                    field: "auth.jwks",
                    ..
                }
            ),
            "{name}: {e:?}"
        );
    }

    let e = Verifier::from_config(&AuthConfig {
        public_key: Some(fixture("rsa_public.pem")),
        algorithms: vec!["HS256".into()],
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::Config {
                field: "auth.algorithms",
                ..
            }
        ),
        "{e:?}"
    );
    let e = Verifier::from_config(&AuthConfig {
        secret: Some(SECRET.into()),
        algorithms: vec!["HS999".into()],
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::Config {
                field: "auth.algorithms",
                ..
            }
        ),
        "{e:?}"
    );
    let e = Verifier::from_config(&AuthConfig {
        secret: Some(SECRET.into()),
        leeway: 10_000_000,
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::Config {
                field: "auth.leeway",
                ..
            }
        ),
        "{e:?}"
    );
    let e = Verifier::from_config(&AuthConfig {
        secret: Some(String::new()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::Config {
                field: "auth.secret",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(Verifier::from_config(&AuthConfig::default()).is_err());
}

fn handshake(auth: Value, authorization: Option<&str>) -> iolite::Handshake {
    let mut headers = http::HeaderMap::new();
    if let Some(a) = authorization {
        headers.insert(http::header::AUTHORIZATION, a.parse().unwrap());
    }
    iolite::Handshake::new(
        auth,
        headers,
        "/socket.io/?EIO=4&transport=websocket",
        None,
        SystemTime::now(),
    )
}

#[test]
fn token_comes_from_auth_or_the_bearer_header() {
    let h = handshake(json!({"token": "from-auth"}), Some("Bearer from-header"));
    assert_eq!(token_from_handshake(&h).as_deref(), Some("from-auth"));
    let h = handshake(json!({}), Some("Bearer from-header"));
    assert_eq!(token_from_handshake(&h).as_deref(), Some("from-header"));
    let h = handshake(json!({"token": ""}), Some("bearer  spaced "));
    assert_eq!(token_from_handshake(&h).as_deref(), Some("spaced"));
    let h = handshake(json!({"token": 42}), Some("Basic dXNlcjpwYXNz"));
    assert_eq!(token_from_handshake(&h), None);
    let h = handshake(json!({}), Some("Bearer"));
    assert_eq!(token_from_handshake(&h), None);
    let h = handshake(json!({}), None);
    assert_eq!(token_from_handshake(&h), None);
}

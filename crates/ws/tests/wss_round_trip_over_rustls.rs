//! wss://: a server wraps accepted TCP streams in tokio-rustls and then calls `accept`;
//! the client connects with `ClientBuilder::tls` and a rustls config trusting a
//! self-signed certificate for "localhost".

use std::net::SocketAddr;
use std::sync::Arc;

use iolite_test_support::harness::{echo, PATIENCE};
use iolite_ws::{accept, ClientBuilder, Config, Error, Message};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS echo server on 127.0.0.1:0 with a fresh self-signed certificate for localhost.
async fn wss_server() -> (SocketAddr, CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("self-signed certificate");
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("certificate and key match");
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("listener address");
    let config = Arc::new(Config::default());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, config) = (acceptor.clone(), config.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok((ws, _)) = accept(tls, config).await {
                    echo(ws).await;
                }
            });
        }
    });
    (addr, cert)
}

fn client_tls(trusted: Option<CertificateDer<'static>>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(cert) = trusted {
        roots.add(cert).expect("a valid certificate");
    }
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

#[tokio::test]
async fn wss_round_trip() {
    let (addr, cert) = wss_server().await;
    let (mut ws, _) = ClientBuilder::new(format!("wss://localhost:{}/", addr.port()))
        .tls(client_tls(Some(cert)))
        .connect()
        .await
        .unwrap();
    let sent = [
        Message::text("over TLS"),
        Message::binary((0..100_000u32).map(|i| i as u8).collect::<Vec<u8>>()),
    ];
    for m in &sent {
        ws.send(m.clone()).unwrap();
    }
    for want in sent {
        let got = tokio::time::timeout(PATIENCE, ws.recv()).await.unwrap();
        assert_eq!(got.unwrap().unwrap(), want);
    }
}

#[tokio::test]
async fn untrusted_certificate_is_an_error_not_a_connection() {
    let (addr, _) = wss_server().await;
    let refused = ClientBuilder::new(format!("wss://localhost:{}/", addr.port()))
        .tls(client_tls(None))
        .connect()
        .await;
    match refused {
        Err(Error::Io(_) | Error::Tls(_)) => {}
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => panic!("connected to a server with an untrusted certificate"),
    }
}

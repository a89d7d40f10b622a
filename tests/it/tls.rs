//! `apply_tls` against a real HTTPS server on 127.0.0.1 with a freshly generated self-signed
//! certificate: default trust, an extra CA file, fingerprint pinning and `verify = false`.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use std::time::Duration;
use syncdeck::config::TlsSettings;
use syncdeck::tls::{Fingerprint, apply_tls, tls_failure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const BODY: &str = r#"{"ok":true}"#;

struct Server {
    url: String,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start_server() -> Server {
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert_der = generated.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/",
        listener.local_addr().unwrap().port()
    );
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A rejected handshake is the expected outcome of several tests.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    answer_one(tls).await;
                }
            });
        }
    });
    Server {
        url,
        cert_der,
        cert_pem: generated.cert.pem(),
        task,
    }
}

/// Reads one request head and answers it with a fixed HTTP/1.1 response, then closes.
async fn answer_one<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Elastic-Product: Elasticsearch\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn client(tls: &TlsSettings) -> reqwest::Client {
    let builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    apply_tls(builder, tls).unwrap().build().unwrap()
}

async fn get(server: &Server, tls: &TlsSettings) -> Result<reqwest::Response, reqwest::Error> {
    client(tls).get(&server.url).send().await
}

async fn assert_accepted(server: &Server, tls: &TlsSettings) {
    let response = get(server, tls).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("x-elastic-product").unwrap(),
        "Elasticsearch"
    );
    assert_eq!(response.text().await.unwrap(), BODY);
}

#[tokio::test]
async fn default_settings_reject_a_self_signed_certificate() {
    let server = start_server().await;
    let err = get(&server, &TlsSettings::default()).await.unwrap_err();
    let why = tls_failure(&err).expect("a TLS failure");
    assert!(why.contains("invalid peer certificate"), "{why}");
}

#[tokio::test]
async fn ca_file_with_the_certificate_accepts_it() {
    let server = start_server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, &server.cert_pem).unwrap();
    let tls = TlsSettings {
        ca_file: Some(path),
        ..TlsSettings::default()
    };
    assert_accepted(&server, &tls).await;
}

#[tokio::test]
async fn the_right_fingerprint_accepts_it_in_any_spelling() {
    let server = start_server().await;
    let pin = Fingerprint::of_der(&server.cert_der).to_string();
    for spelling in [pin.clone(), pin.replace(':', "").to_lowercase()] {
        let tls = TlsSettings {
            fingerprint: Some(spelling),
            ..TlsSettings::default()
        };
        assert_accepted(&server, &tls).await;
    }
}

#[tokio::test]
async fn a_wrong_fingerprint_rejects_it_with_both_fingerprints() {
    let server = start_server().await;
    let wrong = Fingerprint::of_der(b"some other certificate");
    let actual = Fingerprint::of_der(&server.cert_der);
    // Pinning wins over `verify = false`: the operator asked for this exact certificate.
    let tls = TlsSettings {
        fingerprint: Some(wrong.to_string()),
        verify: false,
        ..TlsSettings::default()
    };
    let err = get(&server, &tls).await.unwrap_err();
    let why = tls_failure(&err).expect("a TLS failure");
    assert_eq!(
        why,
        format!("certificate fingerprint mismatch: expected {wrong}, got {actual}")
    );
}

#[tokio::test]
async fn verify_false_accepts_it() {
    let server = start_server().await;
    let tls = TlsSettings {
        verify: false,
        ..TlsSettings::default()
    };
    assert_accepted(&server, &tls).await;
}

#[tokio::test]
async fn a_non_tls_failure_is_not_reported_as_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = client(&TlsSettings::default())
        .get(format!("https://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(tls_failure(&err), None);
}

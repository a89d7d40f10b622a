//! TLS set-up for the HTTP clients: trusting an extra CA file, turning verification off, and
//! pinning the server certificate by its SHA-256 fingerprint.
//! Owns only the `reqwest::ClientBuilder` TLS options; it sends nothing and reads no profile.
//!
//! Precedence: a fingerprint pin replaces chain verification (like the Elasticsearch clients'
//! `ssl_assert_fingerprint`), so `ca_file` and `verify` are ignored when one is set; otherwise
//! `verify = false` accepts any certificate; otherwise the built-in roots plus `ca_file` apply.

use crate::config::TlsSettings;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why the TLS options could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("CA file '{}': cannot read: {source}", path.display())]
    CaRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CA file '{}': no certificate found", path.display())]
    CaEmpty { path: PathBuf },
    #[error("CA file '{}': invalid certificate: {reason}", path.display())]
    CaInvalid { path: PathBuf, reason: String },
    #[error("TLS fingerprint '{value}' is not valid: {reason}")]
    BadFingerprint { value: String, reason: String },
    #[error("cannot set up TLS: {0}")]
    Setup(#[from] rustls::Error),
}

/// A SHA-256 certificate fingerprint (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Parses hex, with or without colons (or spaces), in any case.
    pub fn parse(value: &str) -> Result<Self, TlsError> {
        let bad = |reason: &str| TlsError::BadFingerprint {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let digits: Vec<u8> = value
            .bytes()
            .filter(|b| !matches!(b, b':' | b' ' | b'\t'))
            .collect();
        if digits.len() != 64 {
            return Err(bad(&format!(
                "expected 64 hex digits (SHA-256), got {}",
                digits.len()
            )));
        }
        let mut bytes = [0u8; 32];
        for (slot, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let (Some(hi), Some(lo)) = (hex_value(pair[0]), hex_value(pair[1])) else {
                return Err(bad(
                    "only hex digits 0-9 and a-f, optionally separated by ':'",
                ));
            };
            *slot = hi << 4 | lo;
        }
        Ok(Self(bytes))
    }

    /// The SHA-256 of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }
}

/// Upper-case hex pairs joined by colons, as `openssl x509 -fingerprint` prints them.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// The server presented a certificate other than the pinned one.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("certificate fingerprint mismatch: expected {expected}, got {got}")]
pub struct FingerprintMismatch {
    pub expected: Fingerprint,
    pub got: Fingerprint,
}

// rustls prints wrapped errors with `Debug`; make that read like the message.
impl fmt::Debug for FingerprintMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Applies `tls` to `builder`. Call once per client, before any other TLS option.
pub fn apply_tls(
    builder: reqwest::ClientBuilder,
    tls: &TlsSettings,
) -> Result<reqwest::ClientBuilder, TlsError> {
    if let Some(pin) = &tls.fingerprint {
        let config = pinned_config(Fingerprint::parse(pin)?)?;
        return Ok(builder.use_preconfigured_tls(config));
    }
    if !tls.verify {
        warn_verification_off();
        return Ok(builder.danger_accept_invalid_certs(true));
    }
    let Some(path) = &tls.ca_file else {
        return Ok(builder);
    };
    read_ca_file(path)?
        .into_iter()
        .try_fold(builder, |builder, der| {
            let cert = reqwest::Certificate::from_der(&der).map_err(|e| TlsError::CaInvalid {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            Ok(builder.add_root_certificate(cert))
        })
}

/// The message of the TLS failure behind a request error, if a TLS failure caused it:
/// the fingerprint mismatch as such, otherwise rustls's own description.
pub fn tls_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = as_rustls(e) {
            return Some(describe_rustls(found));
        }
        current = e.source();
    }
    None
}

// `io::Error::source` skips the wrapped error (and io errors nest), so look inside explicitly.
fn as_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: &'a (dyn std::error::Error + 'static) = e;
    // Bounded: nesting deeper than this is not something reqwest produces.
    for _ in 0..8 {
        if let Some(found) = current.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        let inner = current.downcast_ref::<std::io::Error>()?.get_ref()?;
        current = inner;
    }
    None
}

fn describe_rustls(err: &rustls::Error) -> String {
    if let rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) = err
        && let Some(mismatch) = inner.downcast_ref::<FingerprintMismatch>()
    {
        return mismatch.to_string();
    }
    err.to_string()
}

/// Every certificate in a PEM file, as DER; each checked to parse.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::CaRead {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |reason: String| TlsError::CaInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::CaEmpty {
            path: path.to_path_buf(),
        });
    }
    // reqwest only parses roots when the client is built; check them now for a clear error.
    let mut store = rustls::RootCertStore::empty();
    for cert in &certs {
        store
            .add(cert.clone())
            .map_err(|e| invalid(e.to_string()))?;
    }
    Ok(certs)
}

fn warn_verification_off() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "TLS certificate verification is off (verify = false): anyone on the network path \
             can impersonate the server; pin its fingerprint instead"
        );
    }
}

/// A rustls configuration that trusts exactly the certificate with this fingerprint.
fn pinned_config(pin: Fingerprint) -> Result<rustls::ClientConfig, TlsError> {
    // An explicit provider: no process-wide default has to be installed.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedVerifier {
        pin,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // What reqwest offers by default with its `http2` feature.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts a chain iff its leaf has the pinned fingerprint; handshake signatures are still
/// checked, so the server must hold the pinned certificate's private key.
#[derive(Debug)]
struct PinnedVerifier {
    pin: Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of_der(end_entity);
        if got == self.pin {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = FingerprintMismatch {
            expected: self.pin,
            got,
        };
        Err(CertificateError::Other(OtherError(Arc::new(mismatch))).into())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12";

    #[test]
    fn parses_plain_lower_hex() {
        let fp = Fingerprint::parse(HEX).unwrap();
        assert_eq!(fp.0[0], 0xab);
        assert_eq!(fp.0[31], 0x12);
    }

    #[test]
    fn colons_and_case_do_not_matter() {
        let plain = Fingerprint::parse(HEX).unwrap();
        let upper = Fingerprint::parse(&HEX.to_uppercase()).unwrap();
        let colons = Fingerprint::parse(&plain.to_string()).unwrap();
        assert_eq!(plain, upper);
        assert_eq!(plain, colons);
    }

    #[test]
    fn displays_as_upper_case_colon_pairs() {
        let fp = Fingerprint::parse(HEX).unwrap();
        let shown = fp.to_string();
        assert!(shown.starts_with("AB:12:CD:34:"), "{shown}");
        assert_eq!(shown.len(), 32 * 3 - 1);
    }

    #[test]
    fn rejects_wrong_length_naming_the_value() {
        let err = Fingerprint::parse("ab:cd").unwrap_err().to_string();
        assert!(err.contains("'ab:cd'"), "{err}");
        assert!(err.contains("64 hex digits"), "{err}");
    }

    #[test]
    fn rejects_non_hex() {
        let bad = format!("zz{}", &HEX[2..]);
        let err = Fingerprint::parse(&bad).unwrap_err().to_string();
        assert!(err.contains("hex digits"), "{err}");
    }

    #[test]
    fn rejects_multibyte_input_without_panicking() {
        let bad = "é".repeat(32);
        assert!(Fingerprint::parse(&bad).is_err());
    }

    #[test]
    fn fingerprint_of_der_is_sha256() {
        // SHA-256 of the empty input.
        let fp = Fingerprint::of_der(b"");
        let expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(fp, Fingerprint::parse(expected).unwrap());
    }

    #[test]
    fn mismatch_message_names_both_fingerprints() {
        let expected = Fingerprint::parse(HEX).unwrap();
        let got = Fingerprint::of_der(b"");
        let msg = FingerprintMismatch { expected, got }.to_string();
        assert!(
            msg.starts_with("certificate fingerprint mismatch: expected AB:12:"),
            "{msg}"
        );
        assert!(msg.contains("got E3:B0:C4:"), "{msg}");
    }

    #[test]
    fn bad_pin_is_reported_by_apply_tls() {
        let tls = TlsSettings {
            fingerprint: Some("nope".into()),
            ..TlsSettings::default()
        };
        let err = apply_tls(reqwest::Client::builder(), &tls).unwrap_err();
        assert!(matches!(err, TlsError::BadFingerprint { .. }));
    }

    #[test]
    fn missing_ca_file_names_the_file() {
        let tls = TlsSettings {
            ca_file: Some("/nonexistent/syncdeck-ca.pem".into()),
            ..TlsSettings::default()
        };
        let err = apply_tls(reqwest::Client::builder(), &tls)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("CA file '/nonexistent/syncdeck-ca.pem': cannot read"),
            "{err}"
        );
    }

    #[test]
    fn ca_file_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a pem file\n").unwrap();
        let tls = TlsSettings {
            ca_file: Some(path.clone()),
            ..TlsSettings::default()
        };
        let err = apply_tls(reqwest::Client::builder(), &tls)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("CA file '{}': no certificate found", path.display())
        );
    }

    #[test]
    fn mismatch_is_found_behind_io_errors() {
        let mismatch = FingerprintMismatch {
            expected: Fingerprint::parse(HEX).unwrap(),
            got: Fingerprint::of_der(b""),
        };
        let rustls_err: rustls::Error =
            CertificateError::Other(OtherError(Arc::new(mismatch.clone()))).into();
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls_err);
        let nested = std::io::Error::other(io);
        assert_eq!(tls_failure(&nested), Some(mismatch.to_string()));
        let unrelated = std::io::Error::other("refused");
        assert_eq!(tls_failure(&unrelated), None);
    }
}

//! TLS to the server, with libpq's sslmodes: what of the server's certificate is checked.
//!
//! rustls (through tokio-postgres-rustls) checks a chain and a host name together; libpq's
//! `verify-ca` checks the chain alone and `prefer`/`require` check nothing, so those two get a
//! verifier of their own here. Each still checks that the server holds the key of the
//! certificate it shows (the handshake signature), as libpq does.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, NamedGroup, RootCertStore,
    SignatureScheme,
};

use super::conninfo::{SslMode, Target};

/// What the server's certificate must be.
enum Check {
    /// Anything: the connection is encrypted, not authenticated.
    Nothing,
    /// Signed by one of these roots, for any host.
    Chain(Arc<WebPkiServerVerifier>),
    /// Signed by one of these roots and made for the host connected to.
    ChainAndName(Arc<WebPkiServerVerifier>),
}

/// The TLS client configuration for `target`'s sslmode; `Err` is one line about the root
/// certificate.
pub fn client_config(target: &Target) -> Result<ClientConfig, String> {
    let provider = provider();
    let root = target.root_cert.as_deref();
    // libpq: `require` with a root certificate file present checks as `verify-ca`.
    let root_exists = root.is_some_and(Path::exists);
    let check = match target.sslmode {
        SslMode::Disable | SslMode::Prefer => Check::Nothing,
        SslMode::Require if !root_exists && !target.root_cert_given => Check::Nothing,
        SslMode::Require | SslMode::VerifyCa => Check::Chain(verifier(root, &provider)?),
        SslMode::VerifyFull => Check::ChainAndName(verifier(root, &provider)?),
    };
    build(&provider, check)
}

/// The configuration of the default sslmode, `prefer`, which checks no certificate: for the
/// benchmark's floor, which must connect exactly as autheona does.
pub fn prefer_config() -> ClientConfig {
    build(&provider(), Check::Nothing).expect("rustls's default protocol versions")
}

/// ring, with the key share sent first one a stock server takes at once: PostgreSQL before
/// 18 offers a single group, prime256v1 unless `ssl_ecdh_curve` says otherwise, and rustls's
/// own first choice (X25519) made every such connection a HelloRetryRequest, one round trip
/// and one key exchange more (benches/README.md, finding 17). X25519 stays on offer.
fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .kx_groups
        .sort_by_key(|group| group.name() != NamedGroup::secp256r1);
    Arc::new(provider)
}

fn build(provider: &Arc<CryptoProvider>, check: Check) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_details(provider.clone(), Arc::new(SystemClock))
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("cannot set up TLS: {err}"))?;
    let config = match check {
        Check::ChainAndName(verifier) => builder.with_webpki_verifier(verifier),
        Check::Chain(verifier) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyName(verifier))),
        Check::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Anything(
                provider.signature_verification_algorithms,
            ))),
    };
    Ok(config.with_no_client_auth())
}

/// The time for checking certificates: the system clock, or none (the handshake then fails)
/// when it reads before 1970, where rustls's own clock panics. Commands refuse such a clock
/// before they connect; shell completion, which offers nothing then, may still connect.
#[derive(Debug)]
struct SystemClock;

impl rustls::time_provider::TimeProvider for SystemClock {
    fn current_time(&self) -> Option<UnixTime> {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        since.ok().map(UnixTime::since_unix_epoch)
    }
}

fn verifier(
    root: Option<&Path>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    let root = root.ok_or(
        "sslmode verify-ca and verify-full need a root certificate: set sslrootcert or \
         PGSSLROOTCERT",
    )?;
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(root).map_err(|err| {
        format!(
            "cannot read root certificate file {}: {err}",
            root.display()
        )
    })?;
    for cert in certs {
        let cert = cert.map_err(|err| {
            format!(
                "cannot read root certificate file {}: {err}",
                root.display()
            )
        })?;
        roots
            .add(cert)
            .map_err(|err| format!("root certificate file {}: {err}", root.display()))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "root certificate file {} holds no certificate",
            root.display()
        ));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|err| format!("cannot use root certificate file {}: {err}", root.display()))
}

/// `verify-ca`: the chain is checked, the host name is not.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require`: any certificate, as long as the server holds its key.
#[derive(Debug)]
struct Anything(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Anything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

//! A TLS endpoint in front of the engine, so that a cold start pays the handshake it pays on
//! Lambda. At start it makes a throwaway CA shaped as AWS's endpoints chain (an RSA-2048
//! leaf for `localhost`, signed by an RSA-2048 intermediate, signed by an RSA-2048 root:
//! DynamoDB's leaf ← "Amazon RSA 2048 M0x" ← "Amazon Root CA 1"), sends the leaf and the
//! intermediate, and speaks TLS 1.3 only with X25519 and `TLS_AES_128_GCM_SHA256`: what
//! ours (rustls on ring, X25519 first) agrees with an AWS endpoint. The baseline's client
//! (rustls on aws-lc-rs) offers the X25519MLKEM768 hybrid first, with an X25519 share beside
//! it; here it gets X25519, where an endpoint that takes the hybrid would cost it more.
//! The endpoint is an address (`127.0.0.1`, in the certificate too): no name is resolved,
//! where Lambda resolves DynamoDB's. Behind it every connection is forwarded, as bytes, to
//! the plain-HTTP engine.
//!
//! The functions trust the root through `TEST_ONLY_TLS_CA_FILE` (ours: an explicit,
//! test-only setting) or `SSL_CERT_FILE` (the baseline, whose code stays as the docs write
//! it: a bundle of the platform's roots and this one, so that it still parses them all).

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig, crypto::ring, pki_types};

use crate::Error;

/// The platform's root bundle, where Debian and Amazon Linux keep it (rustls-native-certs
/// finds the same files through openssl-probe).
const PLATFORM_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// The running endpoint. Dropping it stops it and removes its files.
pub(crate) struct TlsFront {
    /// `https://127.0.0.1:PORT`: what the functions are given as their endpoint.
    pub(crate) url: String,
    /// The root certificate, PEM: `TEST_ONLY_TLS_CA_FILE`.
    pub(crate) ca_file: PathBuf,
    /// The platform's roots and this root, PEM: the baseline's `SSL_CERT_FILE`.
    pub(crate) bundle_file: PathBuf,
    /// How many roots the platform's bundle holds (the count the baseline parses, less one).
    pub(crate) platform_roots: usize,
    dir: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TlsFront {
    /// Starts the endpoint in front of `engine` (an `http://host:port` URL).
    pub(crate) async fn start(engine: &str) -> Result<Self, Error> {
        let backend = engine
            .strip_prefix("http://")
            .ok_or_else(|| format!("the engine's URL {engine:?} is not plain http"))?
            .trim_end_matches('/')
            .to_owned();
        // RSA key generation takes a while: off the runtime's threads.
        let (chain, key, root_pem) = tokio::task::spawn_blocking(certificates).await??;
        let provider = rustls::crypto::CryptoProvider {
            cipher_suites: vec![ring::cipher_suite::TLS13_AES_128_GCM_SHA256],
            kx_groups: vec![ring::kx_group::X25519],
            ..ring::default_provider()
        };
        let config = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, backend) = (acceptor.clone(), backend.clone());
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(&backend).await else {
                        return;
                    };
                    let _ = plain.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        let dir = std::env::temp_dir().join(format!("bench-tls-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir)?;
        let ca_file = dir.join("throwaway-root.pem");
        std::fs::write(&ca_file, &root_pem)?;
        let platform = PLATFORM_BUNDLES
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let platform_roots = platform.matches("-----BEGIN CERTIFICATE-----").count();
        let bundle_file = dir.join("platform-and-throwaway-root.pem");
        std::fs::write(&bundle_file, format!("{platform}\n{root_pem}"))?;
        Ok(Self {
            url: format!("https://127.0.0.1:{port}"),
            ca_file,
            bundle_file,
            platform_roots,
            dir,
            task,
        })
    }
}

type Chain = (
    Vec<pki_types::CertificateDer<'static>>,
    pki_types::PrivateKeyDer<'static>,
    String,
);

/// The leaf and intermediate the endpoint sends, the leaf's key, and the root (PEM).
fn certificates() -> Result<Chain, Error> {
    let ca = |name: &str, depth: Option<u8>| -> Result<CertificateParams, Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(depth.map_or(BasicConstraints::Unconstrained, |d| {
            BasicConstraints::Constrained(d)
        }));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ok(params)
    };
    let root = CertifiedIssuer::self_signed(
        ca("Profiles bench throwaway root (test only)", None)?,
        rsa_key()?,
    )?;
    let intermediate = CertifiedIssuer::signed_by(
        ca("Profiles bench throwaway RSA 2048 intermediate", Some(0))?,
        rsa_key()?,
        &root,
    )?;
    let leaf_key = rsa_key()?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf.signed_by(&leaf_key, &intermediate)?;
    let key = pki_types::PrivateKeyDer::Pkcs8(pki_types::PrivatePkcs8KeyDer::from(
        leaf_key.serialize_der(),
    ));
    Ok((
        vec![leaf.der().clone(), intermediate.der().clone()],
        key,
        root.pem(),
    ))
}

/// A fresh RSA-2048 key pair (AWS's endpoints' certificates are RSA 2048).
fn rsa_key() -> Result<KeyPair, Error> {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
    let der = key.to_pkcs8_der()?;
    Ok(KeyPair::try_from(der.as_bytes())?)
}

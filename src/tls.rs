//! The process's TLS crypto provider. reqwest and rustls are built without a
//! default one, so every TLS client (SMS providers, Redis over TLS) calls
//! [`install_crypto_provider`] before it connects.

/// Installs ring as the rustls provider, once per process. Safe to call again.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

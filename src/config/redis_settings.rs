//! `REDIS_URL`, `REDIS_CLUSTER_NODES` and `REDIS_CA_FILE` (contract §3.2):
//! one server or a cluster, never both; one scheme for every node; a CA file
//! only with `rediss://`. URLs may hold passwords, so no error repeats one.

use redis::IntoConnectionInfo;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::SecretString;

use super::{ConfigError, Env, RedisConfig, RedisTarget};

/// More seed nodes than this is a typo, not a cluster (the client needs one that answers).
const MAX_CLUSTER_NODES: usize = 64;
/// A CA bundle larger than this is not a CA file.
const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

pub(super) fn from_source(env: &Env) -> Result<Option<RedisConfig>, ConfigError> {
    let single = env.var("REDIS_URL")?;
    let nodes = env.list("REDIS_CLUSTER_NODES")?;
    let (target, tls) = match (single, nodes.is_empty()) {
        (Some(_), false) => {
            return Err(ConfigError::new(
                "REDIS_CLUSTER_NODES",
                "set either REDIS_URL (one server) or REDIS_CLUSTER_NODES (a cluster), not both",
            ));
        }
        (Some(url), true) => {
            let tls = scheme_is_tls("REDIS_URL", &url)?;
            (RedisTarget::Single(SecretString::from(url)), tls)
        }
        (None, false) => {
            const KEY: &str = "REDIS_CLUSTER_NODES";
            if nodes.len() > MAX_CLUSTER_NODES {
                return Err(ConfigError::new(
                    KEY,
                    format!("at most {MAX_CLUSTER_NODES} seed nodes"),
                ));
            }
            let mut schemes = nodes
                .iter()
                .map(|node| scheme_is_tls(KEY, node))
                .collect::<Result<Vec<_>, _>>()?;
            schemes.dedup();
            if schemes.len() > 1 {
                return Err(ConfigError::new(
                    KEY,
                    "every node must use the same scheme (all redis:// or all rediss://)",
                ));
            }
            let tls = schemes.first().copied().unwrap_or(false);
            let nodes = nodes.into_iter().map(SecretString::from).collect();
            (RedisTarget::Cluster(nodes), tls)
        }
        (None, true) => {
            if env.var("REDIS_CA_FILE")?.is_some() {
                return Err(ConfigError::new(
                    "REDIS_CA_FILE",
                    "needs REDIS_URL or REDIS_CLUSTER_NODES with rediss://",
                ));
            }
            return Ok(None);
        }
    };
    let ca_pem = ca_file(env, tls)?;
    Ok(Some(RedisConfig {
        target,
        ca_pem,
        key_prefix: super::redis_key_prefix(env)?,
    }))
}

/// Checks that `url` is a Redis URL the client understands; `true` for `rediss://`.
fn scheme_is_tls(key: &'static str, url: &str) -> Result<bool, ConfigError> {
    let tls = if url.starts_with("rediss://") {
        true
    } else if url.starts_with("redis://") {
        false
    } else {
        return Err(ConfigError::new(key, "must be a redis:// or rediss:// URL"));
    };
    url.into_connection_info()
        .map_err(|_| ConfigError::new(key, "is not a valid Redis URL"))?;
    Ok(tls)
}

/// Reads and checks `REDIS_CA_FILE`: at least one PEM certificate, used only over TLS.
fn ca_file(env: &Env, tls: bool) -> Result<Option<Vec<u8>>, ConfigError> {
    const KEY: &str = "REDIS_CA_FILE";
    let Some(path) = env.var(KEY)? else {
        return Ok(None);
    };
    if !tls {
        return Err(ConfigError::new(
            KEY,
            "applies to rediss:// only; the Redis URLs use redis://",
        ));
    }
    let size = std::fs::metadata(&path)
        .map_err(|e| ConfigError::new(KEY, format!("cannot read {path}: {e}")))?
        .len();
    if size > MAX_CA_FILE_BYTES {
        return Err(ConfigError::new(
            KEY,
            format!("{path} is larger than {MAX_CA_FILE_BYTES} bytes"),
        ));
    }
    let pem = std::fs::read(&path)
        .map_err(|e| ConfigError::new(KEY, format!("cannot read {path}: {e}")))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::new(KEY, format!("{path} is not PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(ConfigError::new(
            KEY,
            format!("{path} holds no PEM certificate"),
        ));
    }
    Ok(Some(pem))
}

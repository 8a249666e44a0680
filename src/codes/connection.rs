//! Connections to Redis for the code store: one server through the crate's
//! [`ConnectionManager`], a Redis Cluster through its async cluster client
//! (which follows slot moves and failovers itself). Both connect lazily, so
//! the service starts while Redis is down, and both speak TLS (`rediss://`)
//! with the rustls provider the service installs, trusting the system's
//! roots plus `REDIS_CA_FILE`.

use std::time::Duration;

use base64::Engine as _;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterConfig;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
use redis::{ClientTlsConfig, TlsCertificates};

use super::{StoreError, StoreHealth};

/// Every hash slot of a Redis Cluster.
const CLUSTER_SLOTS: u64 = 16_384;

/// What the code store needs of a connection besides sending commands: a
/// name, and how to tell whether (and how much of) Redis answers.
pub trait RedisConnection: ConnectionLike + Clone + Send + Sync + 'static {
    const KIND: &'static str;

    fn health(self, timeout: Duration) -> impl Future<Output = StoreHealth> + Send;
}

impl RedisConnection for ConnectionManager {
    const KIND: &'static str = "redis";

    async fn health(mut self, timeout: Duration) -> StoreHealth {
        let pong =
            tokio::time::timeout(timeout, redis::cmd("PING").query_async::<String>(&mut self))
                .await;
        match pong {
            Ok(Ok(pong)) if pong == "PONG" => StoreHealth::Up,
            _ => StoreHealth::Down,
        }
    }
}

impl RedisConnection for ClusterConnection {
    const KIND: &'static str = "redis-cluster";

    /// Up when every master the client knows answers and the cluster itself
    /// reports all slots served; degraded while some node answers and
    /// reports some slots served; down when no node answers.
    async fn health(mut self, timeout: Duration) -> StoreHealth {
        let any_node = RoutingInfo::MultiNode((
            MultipleNodeRoutingInfo::AllNodes,
            Some(ResponsePolicy::OneSucceeded),
        ));
        let info = tokio::time::timeout(
            timeout,
            self.route_command(redis::cmd("CLUSTER").arg("INFO").clone(), any_node),
        )
        .await;
        let slots_ok = match info {
            Ok(Ok(value)) => redis::from_redis_value::<String>(value)
                .ok()
                .and_then(|text| info_field(&text, "cluster_slots_ok")),
            _ => None,
        };
        let Some(slots_ok) = slots_ok.filter(|slots| *slots > 0) else {
            return StoreHealth::Down;
        };
        let every_master = RoutingInfo::MultiNode((
            MultipleNodeRoutingInfo::AllMasters,
            Some(ResponsePolicy::AllSucceeded),
        ));
        let pings = tokio::time::timeout(
            timeout,
            self.route_command(redis::cmd("PING"), every_master),
        )
        .await;
        if slots_ok == CLUSTER_SLOTS && matches!(pings, Ok(Ok(_))) {
            StoreHealth::Up
        } else {
            StoreHealth::Degraded
        }
    }
}

/// A numeric `name:value` line of `CLUSTER INFO`.
fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .filter_map(|line| line.trim().split_once(':'))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.parse().ok())
}

/// One server, connected lazily and reconnecting by itself.
pub fn single(
    url: &str,
    ca_pem: Option<&[u8]>,
    call_timeout: Duration,
) -> Result<ConnectionManager, StoreError> {
    let client = match ca_pem {
        Some(ca_pem) => redis::Client::build_with_tls(url, certificates(ca_pem)?)?,
        None => redis::Client::open(url)?,
    };
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(call_timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    Ok(ConnectionManager::new_lazy_with_config(client, config)?)
}

/// A Redis Cluster through its seed nodes, connected in the background (a
/// cluster down at start is reached once it comes up).
pub fn cluster(
    nodes: &[&str],
    ca_pem: Option<&[u8]>,
    call_timeout: Duration,
) -> Result<ClusterConnection, StoreError> {
    let mut builder = redis::cluster::ClusterClientBuilder::new(nodes.iter().copied())
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(call_timeout)
        // A MOVED or a reconnect is retried quickly; the call timeout bounds it all.
        .retries(3)
        .min_retry_wait(50)
        .max_retry_wait(300);
    if let Some(ca_pem) = ca_pem {
        builder = builder.certs(certificates(ca_pem)?);
    }
    let client = builder.build()?;
    let config = ClusterConfig::new()
        .set_connection_timeout(Duration::from_secs(1))
        .set_response_timeout(call_timeout);
    Ok(client.get_pending_async_connection_with_config(config))
}

/// The crate replaces the system's roots with the CAs it is given; the
/// contract says `REDIS_CA_FILE` adds to them, so the system's roots go in too.
fn certificates(ca_pem: &[u8]) -> Result<TlsCertificates, StoreError> {
    let mut bundle = ca_pem.to_vec();
    bundle.push(b'\n');
    for root in rustls_native_certs::load_native_certs().certs {
        bundle.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(root.as_ref());
        for line in encoded.as_bytes().chunks(64) {
            bundle.extend_from_slice(line);
            bundle.push(b'\n');
        }
        bundle.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    Ok(TlsCertificates {
        client_tls: None::<ClientTlsConfig>,
        root_cert: Some(bundle),
    })
}

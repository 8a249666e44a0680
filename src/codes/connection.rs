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
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo, SingleNodeRoutingInfo,
};
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

    /// Asks any node that answers for the slot map (`CLUSTER SLOTS`), then
    /// pings the master of every slot range at its address. Up when every
    /// slot has a master that answers; degraded while some do; down when no
    /// node or no master answers.
    async fn health(mut self, timeout: Duration) -> StoreHealth {
        let any_node = RoutingInfo::MultiNode((
            MultipleNodeRoutingInfo::AllNodes,
            Some(ResponsePolicy::OneSucceeded),
        ));
        let slots = tokio::time::timeout(
            timeout,
            self.route_command(redis::cmd("CLUSTER").arg("SLOTS").clone(), any_node),
        )
        .await;
        let Ok(Ok(slots)) = slots else {
            return StoreHealth::Down;
        };
        let ranges = slot_ranges(&slots);
        let pings = ranges.iter().map(|range| {
            let mut connection = self.clone();
            let node = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: range.host.clone(),
                port: range.port,
            });
            async move {
                let pong = tokio::time::timeout(
                    timeout,
                    connection.route_command(redis::cmd("PING"), node),
                )
                .await;
                matches!(pong, Ok(Ok(_)))
            }
        });
        let answered = futures::future::join_all(pings).await;
        let served: u64 = ranges
            .iter()
            .zip(&answered)
            .filter(|(_, answered)| **answered)
            .map(|(range, _)| range.len())
            .sum();
        match served {
            0 => StoreHealth::Down,
            CLUSTER_SLOTS => StoreHealth::Up,
            _ => StoreHealth::Degraded,
        }
    }
}

/// One entry of `CLUSTER SLOTS`: a range of slots and its master's address.
struct SlotRange {
    first: u64,
    last: u64,
    host: String,
    port: u16,
}

impl SlotRange {
    fn len(&self) -> u64 {
        self.last.saturating_sub(self.first) + 1
    }
}

/// Reads `CLUSTER SLOTS` (`[[first, last, [host, port, id, ...], replicas...], ...]`);
/// an entry it cannot read counts as unserved.
fn slot_ranges(reply: &redis::Value) -> Vec<SlotRange> {
    let redis::Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let redis::Value::Array(fields) = entry else {
                return None;
            };
            let redis::Value::Array(master) = fields.get(2)? else {
                return None;
            };
            Some(SlotRange {
                first: redis::from_redis_value_ref(fields.first()?).ok()?,
                last: redis::from_redis_value_ref(fields.get(1)?).ok()?,
                host: redis::from_redis_value_ref(master.first()?).ok()?,
                port: redis::from_redis_value_ref(master.get(1)?).ok()?,
            })
        })
        .collect()
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

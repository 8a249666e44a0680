//! `AppState`: everything a request needs, built once at start and shared.
//! Outside services sit behind `Arc<dyn Trait>`, so tests swap in their own.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio_util::task::TaskTracker;

use crate::auth::{JwtKeys, PasswordHasher};
use crate::codes::{CodeHasher, CodeStore};
use crate::config::Config;
use crate::instruments::Instruments;
use crate::sms::ProviderChain;

pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    /// For writes a database crash may lose without harm (see `db::connect_relaxed`).
    pub db_relaxed: DatabaseConnection,
    pub codes: Arc<dyn CodeStore>,
    /// The providers of `SMS_PROVIDER`, with failover.
    pub sms: ProviderChain,
    pub jwt: JwtKeys,
    pub passwords: PasswordHasher,
    pub code_hasher: CodeHasher,
    pub instruments: Instruments,
    /// Work that must not end with its request (an SMS send whose client
    /// hung up); shutdown waits for it.
    pub detached: TaskTracker,
}

/// Who is asking, as far as the transport can tell.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    /// The client's own address (kept with its sessions).
    pub client_ip: std::net::IpAddr,
    /// The network every per-IP limit counts (an IPv6 client's /64; see
    /// `http::client_ip`).
    pub client_network: ipnet::IpNet,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    /// The subject of every per-IP limit: the client's network.
    pub fn limit_key(&self) -> String {
        self.client_network.to_string()
    }
}

//! Building and running the application: connect, migrate, wire the state,
//! bind (port 0 works, for tests) and serve until a shutdown signal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::auth::{JwtKeys, PasswordHasher};
use crate::codes::{CodeHasher, CodeStore, MemoryCodeStore};
use crate::config::{Config, JwtSigning, SmsProviderKind};
use crate::db::{self, SqlObserver};
use crate::graphql::build_schema;
use crate::http::{HttpState, metrics_router, router, serve, shutdown_signal};
use crate::instruments::Instruments;
use crate::service::sessions::prune_expired;
use crate::sms::{
    AliyunSmsProvider, LogSmsProvider, ProviderChain, SmsProvider, TencentSmsProvider,
};
use crate::state::AppState;

pub struct Application {
    listener: TcpListener,
    /// `METRICS_ADDR`'s listener, when it is set.
    metrics_listener: Option<TcpListener>,
    state: Arc<AppState>,
    router: axum::Router,
}

/// Builds an [`Application`]; tests replace outside services through it.
pub struct ApplicationBuilder {
    config: Config,
    sms: Option<Arc<dyn SmsProvider>>,
    sql_observer: Option<SqlObserver>,
}

impl ApplicationBuilder {
    /// Sends SMS through this provider instead of the configured one.
    pub fn sms_provider(mut self, provider: Arc<dyn SmsProvider>) -> Self {
        self.sms = Some(provider);
        self
    }

    /// Calls `observer` with every SQL statement the app runs.
    pub fn sql_observer(mut self, observer: SqlObserver) -> Self {
        self.sql_observer = Some(observer);
        self
    }

    pub async fn build(self) -> anyhow::Result<Application> {
        let config = Arc::new(self.config);
        crate::tls::install_crypto_provider();

        let db = db::connect(
            config.database_url.expose_secret(),
            config.database_max_connections,
            self.sql_observer,
        )
        .await
        .context("connecting to the database (DATABASE_URL)")?;
        let db_relaxed = db::connect_relaxed(
            config.database_url.expose_secret(),
            config.database_max_connections.div_ceil(2),
            &db,
        )
        .await
        .context("connecting to the database (DATABASE_URL)")?;
        if config.auto_migrate {
            Migrator::up(&db, None)
                .await
                .context("applying migrations")?;
        }

        let codes: Arc<dyn CodeStore> = match &config.redis {
            Some(redis) => crate::codes::redis_store(redis)?,
            None => {
                tracing::warn!(
                    "REDIS_URL is unset: codes and limits live in this process only; \
                     run one instance, or set REDIS_URL"
                );
                Arc::new(MemoryCodeStore::new())
            }
        };

        let secret: Vec<u8> = match &config.jwt.secret {
            Some(secret) => secret.expose_secret().as_bytes().to_vec(),
            None => {
                tracing::warn!(
                    "JWT_SECRET is unset: using a random key, so tokens and codes die \
                     with this process and other instances cannot verify them"
                );
                let mut random = vec![0u8; 32];
                rand::fill(random.as_mut_slice());
                random
            }
        };
        let ttl_secs = i64::try_from(config.jwt.access_ttl.as_secs()).unwrap_or(i64::MAX);
        let (issuer, audience) = (&config.jwt.issuer, &config.jwt.audience);
        let jwt = match &config.jwt.signing {
            JwtSigning::Hs256 => JwtKeys::new(&secret, ttl_secs, issuer, audience),
            JwtSigning::Asymmetric(keys) => {
                JwtKeys::asymmetric(keys.clone(), ttl_secs, issuer, audience)
            }
        };

        let sms = match self.sms {
            Some(provider) => ProviderChain::single(provider),
            None => sms_providers(&config)?,
        };

        let state = Arc::new(AppState {
            db,
            db_relaxed,
            codes,
            sms,
            jwt,
            passwords: PasswordHasher::for_this_machine()
                .context("starting the password hashing threads")?,
            code_hasher: CodeHasher::new(&secret),
            instruments: match config.metrics_addr {
                Some(_) => {
                    let instruments = Instruments::prometheus().context("METRICS_ADDR")?;
                    instruments.sms_global_limit(config.budget.global.as_ref());
                    instruments
                }
                None => Instruments::disabled(),
            },
            config: config.clone(),
            detached: TaskTracker::new(),
        });
        let schema = build_schema(state.clone(), &config.graphql);
        let router = router(HttpState {
            app: state.clone(),
            schema,
        });
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding LISTEN_ADDR {}", config.listen_addr))?;
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding METRICS_ADDR {addr}"))?,
            ),
            None => None,
        };
        Ok(Application {
            listener,
            metrics_listener,
            state,
            router,
        })
    }
}

/// Prunes expired refresh tokens every hour until the process stops.
async fn prune_expired_forever(state: Arc<AppState>) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        prune_expired(&state, chrono::Utc::now()).await;
    }
}

/// The configured providers, in `SMS_PROVIDER` order.
fn sms_providers(config: &Config) -> anyhow::Result<ProviderChain> {
    let mut providers: Vec<Arc<dyn SmsProvider>> = Vec::new();
    for kind in &config.sms.providers {
        let missing = || format!("SMS_PROVIDER: {} needs its settings", kind.as_str());
        providers.push(match kind {
            SmsProviderKind::Log => {
                tracing::warn!("SMS_PROVIDER=log: codes are written to this log, not sent");
                Arc::new(LogSmsProvider)
            }
            SmsProviderKind::Tencent => Arc::new(TencentSmsProvider::new(
                config.sms.tencent.as_ref().with_context(missing)?,
            )?),
            SmsProviderKind::Aliyun => Arc::new(AliyunSmsProvider::new(
                config.sms.aliyun.as_ref().with_context(missing)?,
            )?),
        });
    }
    Ok(ProviderChain::new(providers, config.sms.provider_skip))
}

impl Application {
    pub fn builder(config: Config) -> ApplicationBuilder {
        ApplicationBuilder {
            config,
            sms: None,
            sql_observer: None,
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where `/metrics` is served, when `METRICS_ADDR` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until Ctrl-C or SIGTERM, then finishes requests in flight.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        tracing::info!(
            addr = %addr,
            graphiql = %graphiql_url(addr),
            code_store = self.state.codes.kind(),
            sms = self.state.sms.names(),
            "smsauth listening; GraphiQL at /graphql"
        );
        let pruner = tokio::spawn(prune_expired_forever(self.state.clone()));
        let metrics = self.metrics_listener.map(|listener| {
            tracing::info!(addr = ?listener.local_addr().ok(), "metrics at /metrics");
            let app = metrics_router(self.state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            })
        });
        let grace = stop_grace(self.state.config.http.request_timeout);
        let stop_began = serve(self.listener, self.router, shutdown_signal(), grace).await;
        finish_detached_work(&self.state.detached, stop_began + grace).await;
        pruner.abort();
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        Ok(())
    }
}

/// How long a stop may take from the signal: the connections in flight,
/// then detached work (sends whose clients hung up), all within one bound.
/// 25 s stays inside the systemd unit's `TimeoutStopSec=30`, so whatever is
/// cut off is at least logged; a longer `HTTP_REQUEST_TIMEOUT_SECS` raises
/// it, since a request in flight is always allowed to finish (contract §1).
fn stop_grace(request_timeout: Duration) -> Duration {
    Duration::from_secs(25).max(request_timeout + Duration::from_secs(5))
}

async fn finish_detached_work(detached: &TaskTracker, deadline: Instant) {
    detached.close();
    if tokio::time::timeout_at(deadline, detached.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            unfinished = detached.len(),
            "stopping with detached work unfinished (SMS sends whose clients had gone)"
        );
    }
}

/// GraphiQL's address for a person at this machine, to click in the log: a
/// wildcard listen address (`0.0.0.0`, `[::]`) becomes loopback.
pub fn graphiql_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/graphql", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_lets_every_request_run_out_its_timeout() {
        assert_eq!(stop_grace(Duration::from_secs(15)), Duration::from_secs(25));
        assert_eq!(stop_grace(Duration::from_secs(60)), Duration::from_secs(65));
    }

    #[test]
    fn the_graphiql_url_can_be_clicked_for_any_listen_address() {
        let url = |addr: &str| graphiql_url(addr.parse().unwrap());
        assert_eq!(url("127.0.0.1:8000"), "http://127.0.0.1:8000/graphql");
        assert_eq!(url("0.0.0.0:8000"), "http://127.0.0.1:8000/graphql");
        assert_eq!(url("[::]:8000"), "http://[::1]:8000/graphql");
        assert_eq!(url("[2001:db8::1]:80"), "http://[2001:db8::1]:80/graphql");
        assert_eq!(url("10.1.2.3:9000"), "http://10.1.2.3:9000/graphql");
    }
}

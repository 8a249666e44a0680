//! The service's configuration: every variable of the contract (§1), typed,
//! with the contract's defaults, read once at start.

mod bounds;
mod budget;
mod env;
mod jwt_keys;
mod redis_settings;
mod sms_providers;
mod variables;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

pub use bounds::{MAX_COUNT, MAX_DURATION};
pub use budget::{GuardConfig, RegionLimits, SmsBudgetConfig, region_key};
pub use env::ConfigError;
pub use env::Env;
pub use jwt_keys::JwtSigning;
pub use sms_providers::{AliyunConfig, ProviderEndpoint, SmsProviderKind, TencentConfig};
pub use variables::{LOG_FILTER, VARIABLES, Variable, variable};

use crate::domain::{Mobile, Region, SmsCode};
use crate::rate_limit::RateLimit;
use bounds::{number, seconds, seconds_or_zero};

#[derive(Clone, Debug)]
pub struct Config {
    pub listen_addr: SocketAddr,
    /// Where `/metrics` is served (`METRICS_ADDR`); `None`: no metrics at all.
    pub metrics_addr: Option<SocketAddr>,
    pub database_url: SecretString,
    /// Connections in the database pool (`DATABASE_MAX_CONNECTIONS`).
    pub database_max_connections: u32,
    pub redis: Option<RedisConfig>,
    pub auto_migrate: bool,
    pub jwt: JwtConfig,
    pub sms: SmsConfig,
    pub limits: LimitsConfig,
    /// The SMS bill's protections: global budget, region caps, pumping guard.
    pub budget: SmsBudgetConfig,
    pub http: HttpConfig,
    pub graphql: GraphqlConfig,
}

#[derive(Clone, Debug)]
pub struct RedisConfig {
    pub target: RedisTarget,
    /// `REDIS_CA_FILE`: PEM certificates trusted for `rediss://` besides the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Prefix of every key, so several deployments (or test runs) can share one Redis.
    pub key_prefix: String,
}

/// One Redis server (`REDIS_URL`) or the seed nodes of a Redis Cluster
/// (`REDIS_CLUSTER_NODES`). URLs may carry credentials: secret.
#[derive(Clone, Debug)]
pub enum RedisTarget {
    Single(SecretString),
    Cluster(Vec<SecretString>),
}

#[derive(Clone, Debug)]
pub struct JwtConfig {
    /// `None` when `JWT_SECRET` is unset: a random key is made at start.
    pub secret: Option<SecretString>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub issuer: String,
    pub audience: String,
    /// `JWT_ALGORITHM` and, for EdDSA/ES256, the keys of its key files.
    pub signing: JwtSigning,
}

#[derive(Clone, Debug)]
pub struct SmsConfig {
    /// `SMS_PROVIDER`: tried in this order, failing over as `sms::chain` describes.
    pub providers: Vec<SmsProviderKind>,
    /// `SMS_PROVIDER_SKIP_SECS`: how long the chain skips a provider that keeps failing.
    pub provider_skip: Duration,
    pub code_length: usize,
    pub code_ttl: Duration,
    pub resend_cooldown: Duration,
    pub max_attempts: u32,
    pub default_region: Region,
    /// `None` means every region (`*`).
    pub allowed_regions: Option<Vec<Region>>,
    pub test_numbers: HashMap<Mobile, SmsCode>,
    pub tencent: Option<TencentConfig>,
    pub aliyun: Option<AliyunConfig>,
}

#[derive(Clone, Debug)]
pub struct LimitsConfig {
    pub send_per_mobile: Option<RateLimit>,
    pub send_per_ip: Option<RateLimit>,
    pub verify_failures_per_ip: Option<RateLimit>,
    pub mobile_exists_per_ip: Option<RateLimit>,
    pub login_failures_per_account: Option<RateLimit>,
    pub login_failures_per_ip: Option<RateLimit>,
}

#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub trusted_proxies: Vec<IpNet>,
    /// Origins browsers may call from; `None` is every origin (`*`).
    pub cors_allowed_origins: Option<Vec<String>>,
    /// The prefix length an IPv6 client is counted by (`IPV6_CLIENT_PREFIX`).
    pub ipv6_client_prefix: u8,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct GraphqlConfig {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_batch: usize,
    pub introspection: bool,
}

impl Config {
    /// Loads `.env` from the working directory into the process environment,
    /// when there is one; variables already set win. Called first of all, so
    /// that `RUST_LOG` in `.env` applies to the log too.
    pub fn load_dotenv() {
        // A missing .env is normal; a malformed one is not worth refusing to start over.
        let _ = dotenvy::dotenv();
    }

    /// Reads the environment (after [`Config::load_dotenv`]), top to bottom as in the
    /// contract's table. The first bad value stops with an error naming it.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Env::process())
    }

    /// Reads the configuration from `env` (the process, or fixed pairs in tests).
    pub fn from_source(env: &Env) -> Result<Self, ConfigError> {
        let default_region = env.var_with("SMS_DEFAULT_REGION", Region::parse)?;
        let code_length = env.var_parsed::<usize>("SMS_CODE_LENGTH")?;
        if !(4..=6).contains(&code_length) {
            return Err(ConfigError::new(
                "SMS_CODE_LENGTH",
                "must be between 4 and 6",
            ));
        }
        let providers = sms_providers::providers(env)?;
        let tencent = providers
            .contains(&SmsProviderKind::Tencent)
            .then(|| TencentConfig::from_source(env))
            .transpose()?;
        let aliyun = providers
            .contains(&SmsProviderKind::Aliyun)
            .then(|| AliyunConfig::from_source(env))
            .transpose()?;

        let jwt_secret = env.var("JWT_SECRET")?.map(SecretString::from);
        if let Some(secret) = &jwt_secret
            && secret.expose_secret().len() < 32
        {
            return Err(ConfigError::new("JWT_SECRET", "must be at least 32 bytes"));
        }

        Ok(Self {
            listen_addr: env.var_parsed("LISTEN_ADDR")?,
            metrics_addr: env.optional_with("METRICS_ADDR", |raw| {
                raw.parse::<SocketAddr>()
                    .map_err(|_| format!("expected HOST:PORT such as 127.0.0.1:9090, got {raw:?}"))
            })?,
            database_url: SecretString::from(env.var_with("DATABASE_URL", |raw| {
                // Never echo the value: it may hold a password.
                let known = ["postgres://", "postgresql://", "sqlite:"];
                if known.iter().any(|scheme| raw.starts_with(scheme)) {
                    Ok(raw.to_owned())
                } else {
                    Err("must be a postgres:// or sqlite: URL".to_owned())
                }
            })?),
            database_max_connections: number(env, "DATABASE_MAX_CONNECTIONS", 1, 10_000)?,
            redis: redis_settings::from_source(env)?,
            auto_migrate: env.flag("AUTO_MIGRATE")?,
            jwt: JwtConfig {
                secret: jwt_secret,
                access_ttl: seconds(env, "ACCESS_TOKEN_TTL_SECS")?,
                refresh_ttl: seconds(env, "REFRESH_TOKEN_TTL_SECS")?,
                issuer: env.required_var("JWT_ISSUER")?,
                audience: env.required_var("JWT_AUDIENCE")?,
                signing: jwt_keys::jwt_signing(env)?,
            },
            sms: SmsConfig {
                provider_skip: sms_providers::skip_for(env)?,
                providers,
                code_length,
                code_ttl: seconds(env, "SMS_CODE_TTL_SECS")?,
                resend_cooldown: seconds_or_zero(env, "SMS_RESEND_COOLDOWN_SECS")?,
                max_attempts: number(env, "SMS_MAX_ATTEMPTS", 1u32, 1_000_000_000)?,
                allowed_regions: allowed_regions(env, default_region)?,
                test_numbers: test_numbers(env, default_region, code_length)?,
                default_region,
                tencent,
                aliyun,
            },
            limits: LimitsConfig {
                send_per_mobile: limit(env, "SMS_SEND_LIMIT_PER_MOBILE")?,
                send_per_ip: limit(env, "SMS_SEND_LIMIT_PER_IP")?,
                verify_failures_per_ip: limit(env, "SMS_VERIFY_LIMIT_PER_IP")?,
                mobile_exists_per_ip: limit(env, "MOBILE_EXISTS_LIMIT_PER_IP")?,
                login_failures_per_account: limit(env, "LOGIN_FAILURE_LIMIT_PER_ACCOUNT")?,
                login_failures_per_ip: limit(env, "LOGIN_FAILURE_LIMIT_PER_IP")?,
            },
            budget: SmsBudgetConfig::from_source(env)?,
            http: HttpConfig {
                trusted_proxies: env
                    .list("TRUSTED_PROXIES")?
                    .iter()
                    .map(|raw| parse_cidr(raw))
                    .collect::<Result<_, _>>()
                    .map_err(|problem| ConfigError::new("TRUSTED_PROXIES", problem))?,
                cors_allowed_origins: cors_origins(env)?,
                ipv6_client_prefix: number(env, "IPV6_CLIENT_PREFIX", 32, 128)?,
                body_limit_bytes: number(env, "HTTP_BODY_LIMIT_BYTES", 1024, 64 * 1024 * 1024)?,
                // At most a minute: well inside the hold on a code a request
                // is using (`service::sms_codes::CODE_LEASE`).
                request_timeout: Duration::from_secs(number(
                    env,
                    "HTTP_REQUEST_TIMEOUT_SECS",
                    1,
                    60,
                )?),
            },
            graphql: GraphqlConfig {
                max_depth: number(env, "GRAPHQL_MAX_DEPTH", 1, 1_000)?,
                max_complexity: number(env, "GRAPHQL_MAX_COMPLEXITY", 1, 1_000_000_000)?,
                max_batch: number(env, "GRAPHQL_MAX_BATCH", 1, 1_000)?,
                introspection: env.flag("GRAPHQL_INTROSPECTION")?,
            },
        })
    }
}

fn limit(env: &Env, key: &'static str) -> Result<Option<RateLimit>, ConfigError> {
    let raw = env.required_var(key)?;
    RateLimit::parse(&raw).map_err(|problem| ConfigError::new(key, problem))
}

fn allowed_regions(env: &Env, default_region: Region) -> Result<Option<Vec<Region>>, ConfigError> {
    const KEY: &str = "SMS_ALLOWED_REGIONS";
    let items = env.list(KEY)?;
    if items.is_empty() {
        return Ok(Some(vec![default_region]));
    }
    if items.iter().any(|item| item == "*") {
        return Ok(None);
    }
    items
        .iter()
        .map(|item| Region::parse(item))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
        .map_err(|problem| ConfigError::new(KEY, problem))
}

fn test_numbers(
    env: &Env,
    default_region: Region,
    code_length: usize,
) -> Result<HashMap<Mobile, SmsCode>, ConfigError> {
    const KEY: &str = "SMS_TEST_NUMBERS";
    let mut numbers = HashMap::new();
    for item in env.list(KEY)? {
        let (mobile, code) = item
            .split_once('=')
            .ok_or_else(|| ConfigError::new(KEY, format!("expected MOBILE=CODE, got {item:?}")))?;
        let mobile = Mobile::parse(mobile.trim(), default_region)
            .map_err(|_| ConfigError::new(KEY, format!("{mobile:?} is not a valid mobile")))?;
        let code = SmsCode::parse(code.trim(), code_length).map_err(|_| {
            ConfigError::new(
                KEY,
                format!("the code of {mobile} must be {code_length} digits"),
            )
        })?;
        numbers.insert(mobile, code);
    }
    Ok(numbers)
}

/// `*` (anywhere in the list) is every origin; otherwise each item must be
/// an origin as browsers send it: `scheme://host[:port]`, no path.
fn cors_origins(env: &Env) -> Result<Option<Vec<String>>, ConfigError> {
    const KEY: &str = "CORS_ALLOWED_ORIGINS";
    let items = env.list(KEY)?;
    if items.iter().any(|item| item == "*") {
        return Ok(None);
    }
    for item in &items {
        let rest = item
            .strip_prefix("https://")
            .or_else(|| item.strip_prefix("http://"))
            .ok_or_else(|| {
                ConfigError::new(KEY, format!("{item:?} is not an http(s) origin or *"))
            })?;
        let is_host_and_port = !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
        if !is_host_and_port {
            return Err(ConfigError::new(
                KEY,
                format!("{item:?} must be scheme://host[:port], without a path"),
            ));
        }
    }
    Ok(Some(items))
}

/// `REDIS_KEY_PREFIX`: deployments sharing one Redis each keep their own
/// keys; `serve` and `smsauth users` of one deployment must agree on it.
pub(super) fn redis_key_prefix(env: &Env) -> Result<String, ConfigError> {
    env.var_with("REDIS_KEY_PREFIX", |raw| {
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
        if raw.len() <= 64 && raw.chars().all(plain) {
            Ok(raw.to_owned())
        } else {
            Err("must be at most 64 of A-Z a-z 0-9 - _ . :".to_owned())
        }
    })
}

fn parse_cidr(raw: &str) -> Result<IpNet, String> {
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{raw:?} is not an IP address or CIDR"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn error_of(pairs: &[(&str, &str)]) -> ConfigError {
        Config::from_source(&Env::from_pairs(pairs)).err().unwrap()
    }

    #[test]
    fn defaults_are_the_contracts() {
        let config = Config::from_source(&Env::from_pairs(&[])).unwrap();
        assert_eq!(config.listen_addr.to_string(), "127.0.0.1:8000");
        assert!(config.redis.is_none());
        assert!(config.auto_migrate);
        assert_eq!(config.jwt.access_ttl, Duration::from_secs(900));
        assert_eq!(config.jwt.refresh_ttl, Duration::from_secs(2_592_000));
        assert_eq!(config.sms.providers, vec![SmsProviderKind::Log]);
        assert_eq!(config.sms.code_length, 6);
        assert_eq!(config.sms.code_ttl, Duration::from_secs(300));
        assert_eq!(config.sms.resend_cooldown, Duration::from_secs(60));
        assert_eq!(config.sms.max_attempts, 5);
        assert_eq!(config.sms.allowed_regions, Some(vec![Region::CN]));
        assert_eq!(
            config.limits.send_per_mobile,
            RateLimit::parse("10/24h").unwrap()
        );
        assert_eq!(
            config.limits.mobile_exists_per_ip,
            RateLimit::parse("30/1m").unwrap()
        );
        assert_eq!(config.graphql.max_depth, 10);
        assert_eq!(config.graphql.max_complexity, 200);
        assert_eq!(config.graphql.max_batch, 10);
    }

    /// The list of variables is the configuration's: every variable it
    /// reads is listed (its default comes from there), and every listed one
    /// is read, by some deployment (`RUST_LOG` is the log's, read by `telemetry`).
    #[test]
    fn the_configuration_reads_exactly_the_listed_variables() {
        let deployments: &[&[(&str, &str)]] = &[
            &[],
            &[("REDIS_URL", "redis://127.0.0.1:6379")],
            &[
                ("SMS_PROVIDER", "tencent,aliyun"),
                ("TENCENT_SECRET_ID", "AKIDexample"),
                ("TENCENT_SECRET_KEY", "secret"),
                ("TENCENT_SMS_SDK_APP_ID", "1400006666"),
                ("TENCENT_SMS_SIGN_NAME", "Sign"),
                ("TENCENT_SMS_TEMPLATE_ID", "1"),
                ("ALIYUN_ACCESS_KEY_ID", "LTAIexample"),
                ("ALIYUN_ACCESS_KEY_SECRET", "secret"),
                ("ALIYUN_SMS_SIGN_NAME", "Sign"),
                ("ALIYUN_SMS_TEMPLATE_CODE", "SMS_1"),
            ],
        ];
        let mut read = std::collections::BTreeSet::new();
        for pairs in deployments {
            let env = Env::from_pairs(pairs);
            let built = Config::from_source(&env);
            assert!(built.is_ok(), "{pairs:?}: {:?}", built.err());
            read.extend(env.variables_read());
        }
        let listed: std::collections::BTreeSet<&str> = VARIABLES
            .iter()
            .map(|variable| variable.name)
            .filter(|name| *name != "RUST_LOG")
            .collect();
        assert_eq!(
            read.difference(&listed).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "read but not in config::VARIABLES"
        );
        assert_eq!(
            listed.difference(&read).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "in config::VARIABLES but never read"
        );
        let mut names: Vec<&str> = VARIABLES.iter().map(|variable| variable.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), VARIABLES.len(), "each variable once");
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: &[(&str, &str)] = &[
            ("LISTEN_ADDR", "nowhere"),
            ("SMS_CODE_LENGTH", "8"),
            ("SMS_PROVIDER", "carrier-pigeon"),
            ("JWT_SECRET", "too short"),
            ("SMS_SEND_LIMIT_PER_IP", "20 per hour"),
            ("SMS_ALLOWED_REGIONS", "CN,XX"),
            ("SMS_TEST_NUMBERS", "+8613800000000"),
            ("TRUSTED_PROXIES", "10.0.0.0/99"),
            ("AUTO_MIGRATE", "perhaps"),
            ("REDIS_URL", "http://127.0.0.1:6379"),
            (
                "REDIS_CLUSTER_NODES",
                "redis://127.0.0.1:7000,rediss://127.0.0.1:7001",
            ),
            ("REDIS_CA_FILE", "/nonexistent/ca.pem"),
            ("DATABASE_URL", "mysql://root:hunter2@db/app"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("ACCESS_TOKEN_TTL_SECS", "9223372036854775807"),
            ("SMS_SEND_LIMIT_PER_MOBILE", "4000000000/1h"),
            ("IPV6_CLIENT_PREFIX", "129"),
            ("CORS_ALLOWED_ORIGINS", "https://app.example/path"),
        ];
        for (key, value) in cases {
            assert_eq!(error_of(&[(key, value)]).key, *key, "{key}={value}");
        }
        let prefix = error_of(&[
            ("REDIS_URL", "redis://x"),
            ("REDIS_KEY_PREFIX", "{smsauth}"),
        ]);
        assert_eq!(prefix.key, "REDIS_KEY_PREFIX");
    }

    #[test]
    fn redis_is_one_server_or_one_cluster() {
        let both = error_of(&[
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("REDIS_CLUSTER_NODES", "redis://127.0.0.1:7000"),
        ]);
        assert_eq!(both.key, "REDIS_CLUSTER_NODES");
        let ca_without_tls = error_of(&[
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("REDIS_CA_FILE", "/etc/hostname"),
        ]);
        assert_eq!(ca_without_tls.key, "REDIS_CA_FILE");
        let not_pem = error_of(&[
            ("REDIS_URL", "rediss://127.0.0.1:6379"),
            ("REDIS_CA_FILE", "/etc/hostname"),
        ]);
        assert_eq!(not_pem.key, "REDIS_CA_FILE");
        let secret = error_of(&[("REDIS_URL", "http://user:hunter2@127.0.0.1:6379")]);
        assert!(!secret.to_string().contains("hunter2"), "{secret}");

        let config = Config::from_source(&Env::from_pairs(&[(
            "REDIS_CLUSTER_NODES",
            "redis://127.0.0.1:7000, redis://127.0.0.1:7001",
        )]))
        .unwrap();
        let redis = config.redis.unwrap();
        assert!(matches!(&redis.target, RedisTarget::Cluster(nodes) if nodes.len() == 2));
        assert!(redis.ca_pem.is_none());
    }

    #[test]
    fn a_bad_database_url_is_not_echoed() {
        let err = error_of(&[("DATABASE_URL", "mysql://root:hunter2@db/app")]);
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn tencent_needs_its_credentials() {
        let err = error_of(&[("SMS_PROVIDER", "tencent")]);
        assert_eq!(err.key, "TENCENT_SECRET_ID");
        assert!(!err.to_string().is_empty());
    }

    #[test]
    fn each_provider_of_a_chain_needs_its_settings() {
        let err = error_of(&[("SMS_PROVIDER", "aliyun")]);
        assert_eq!(err.key, "ALIYUN_ACCESS_KEY_ID");
        let err = error_of(&[
            ("SMS_PROVIDER", "tencent,aliyun"),
            ("TENCENT_SECRET_ID", "AKIDexample"),
            ("TENCENT_SECRET_KEY", "key"),
            ("TENCENT_SMS_SDK_APP_ID", "1400006666"),
            ("TENCENT_SMS_SIGN_NAME", "sign"),
            ("TENCENT_SMS_TEMPLATE_ID", "1234567"),
        ]);
        assert_eq!(err.key, "ALIYUN_ACCESS_KEY_ID");
    }

    #[test]
    fn test_numbers_and_regions_parse() {
        let config = Config::from_source(&Env::from_pairs(&[
            (
                "SMS_TEST_NUMBERS",
                "+8613800000000=123456, 13800000001=654321",
            ),
            ("SMS_ALLOWED_REGIONS", "*"),
        ]))
        .unwrap();
        assert_eq!(config.sms.test_numbers.len(), 2);
        assert_eq!(config.sms.allowed_regions, None);
    }
}

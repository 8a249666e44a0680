//! The one list of every environment variable smsauth reads, with its
//! default and a line of documentation. [`super::Env`] takes each default
//! from here (call sites name a variable, never its default), a unit test
//! checks that the configuration reads exactly these variables, and
//! `tests/api/env_example.rs` keeps `.env.example` equal to this list.

/// One environment variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    /// The value used when the variable is unset or empty; `""`: none
    /// (the variable is optional, or required where its doc says so).
    pub default: &'static str,
    pub doc: &'static str,
}

const fn var(name: &'static str, default: &'static str, doc: &'static str) -> Variable {
    Variable { name, default, doc }
}

/// Every variable, in the order of the README's configuration table.
pub const VARIABLES: &[Variable] = &[
    var(
        "LISTEN_ADDR",
        "127.0.0.1:8000",
        "Address to bind (0.0.0.0:8000 for every interface).",
    ),
    var(
        "METRICS_ADDR",
        "",
        "Address of a second listener serving GET /metrics (Prometheus); empty: no metrics.",
    ),
    var(
        "DATABASE_URL",
        "sqlite://smsauth.db?mode=rwc",
        "PostgreSQL (postgres://user:password@host/db) or SQLite (sqlite://path?mode=rwc).",
    ),
    var("DATABASE_MAX_CONNECTIONS", "10", "Database pool size."),
    var(
        "REDIS_URL",
        "",
        "Redis for codes and limits (redis:// or rediss://); empty: an in-process store (one instance only).",
    ),
    var(
        "REDIS_CLUSTER_NODES",
        "",
        "Seed nodes of a Redis Cluster instead, comma-separated; not together with REDIS_URL.",
    ),
    var(
        "REDIS_CA_FILE",
        "",
        "PEM file of CAs trusted for rediss:// besides the system's roots.",
    ),
    var(
        "REDIS_KEY_PREFIX",
        "smsauth",
        "Prefix of every Redis key, so deployments can share a Redis.",
    ),
    var(
        "AUTO_MIGRATE",
        "true",
        "Apply database migrations at start.",
    ),
    var(
        "JWT_SECRET",
        "",
        "HS256 key, at least 32 bytes; also keys the code hashes. Empty: a random key per start (set it in production).",
    ),
    var("JWT_ALGORITHM", "HS256", "HS256, EdDSA or ES256."),
    var(
        "JWT_PRIVATE_KEY_FILE",
        "",
        "With EdDSA/ES256 (required then): PEM PKCS#8 private key that signs access tokens.",
    ),
    var(
        "JWT_VERIFY_KEY_FILES",
        "",
        "With EdDSA/ES256: comma-separated PEM public keys also accepted (key rotation).",
    ),
    var("JWT_ISSUER", "smsauth", "iss of access tokens."),
    var("JWT_AUDIENCE", "smsauth", "aud of access tokens."),
    var("ACCESS_TOKEN_TTL_SECS", "900", "Access token lifetime."),
    var(
        "REFRESH_TOKEN_TTL_SECS",
        "2592000",
        "Refresh token lifetime (30 days).",
    ),
    var(
        "SMS_PROVIDER",
        "log",
        "log (codes in the server log; development), tencent, aliyun, or several comma-separated, tried in order.",
    ),
    var(
        "SMS_PROVIDER_SKIP_SECS",
        "30",
        "How long a provider that failed 5 times in a row without sending is skipped.",
    ),
    var("SMS_CODE_LENGTH", "6", "Digits per code, 4 to 6."),
    var("SMS_CODE_TTL_SECS", "300", "How long a code is valid."),
    var(
        "SMS_RESEND_COOLDOWN_SECS",
        "60",
        "Minimum gap between two codes to one mobile (0: none).",
    ),
    var(
        "SMS_MAX_ATTEMPTS",
        "5",
        "Wrong tries before a code is destroyed.",
    ),
    var(
        "SMS_SEND_LIMIT_PER_MOBILE",
        "10/24h",
        "Codes one mobile can receive per window (COUNT/WINDOW, several comma-separated, or off).",
    ),
    var(
        "SMS_SEND_LIMIT_PER_IP",
        "20/1h",
        "sendSmsCode requests per client IP per window.",
    ),
    var(
        "SMS_VERIFY_LIMIT_PER_IP",
        "60/1h",
        "Failed code checks per client IP per window.",
    ),
    var(
        "MOBILE_EXISTS_LIMIT_PER_IP",
        "30/1m",
        "mobileExists calls per client IP per window.",
    ),
    var(
        "LOGIN_FAILURE_LIMIT_PER_ACCOUNT",
        "10/15m",
        "Failed password logins per account and client IP per window.",
    ),
    var(
        "LOGIN_FAILURE_LIMIT_PER_IP",
        "100/1h",
        "Failed password logins per client IP per window, across accounts.",
    ),
    var(
        "SMS_DEFAULT_REGION",
        "CN",
        "Region assumed for numbers written without +.",
    ),
    var(
        "SMS_ALLOWED_REGIONS",
        "",
        "Regions codes may be sent to, comma-separated; * for all; empty: SMS_DEFAULT_REGION only.",
    ),
    var(
        "SMS_TEST_NUMBERS",
        "",
        "+8613800000000=123456,...: fixed codes, no SMS sent (store reviewers, e2e tests).",
    ),
    var(
        "SMS_GLOBAL_LIMIT",
        "1000/1h",
        "SMS sent in total, across instances.",
    ),
    var(
        "SMS_REGION_LIMITS",
        "",
        "Per-region caps, e.g. US=50/1h,GB=20/1h,*=100/24h.",
    ),
    var(
        "SMS_GUARD_BLOCK_DIGITS",
        "4",
        "The pumping guard's block: the number without its last N digits (1 to 8).",
    ),
    var(
        "SMS_GUARD_MIN_SENDS",
        "20/1h",
        "Sends per block and window from which a block is judged; off disables the guard.",
    ),
    var(
        "SMS_GUARD_MIN_VERIFIED_PERCENT",
        "20",
        "Share of those codes (0 to 100) that must have been used, or the block is paused.",
    ),
    var(
        "SMS_GUARD_PAUSE_SECS",
        "3600",
        "How long a block stays paused.",
    ),
    var(
        "TENCENT_SECRET_ID",
        "",
        "With SMS_PROVIDER=tencent (required then): Tencent Cloud API SecretId.",
    ),
    var(
        "TENCENT_SECRET_KEY",
        "",
        "With tencent (required): Tencent Cloud API SecretKey.",
    ),
    var(
        "TENCENT_SMS_SDK_APP_ID",
        "",
        "With tencent (required): SMS application SdkAppId.",
    ),
    var(
        "TENCENT_SMS_SIGN_NAME",
        "",
        "With tencent (required): approved signature.",
    ),
    var(
        "TENCENT_SMS_TEMPLATE_ID",
        "",
        "With tencent (required): approved code template.",
    ),
    var("TENCENT_SMS_REGION", "ap-guangzhou", "Tencent API region."),
    var(
        "TENCENT_SMS_ENDPOINT",
        "https://sms.tencentcloudapi.com",
        "Tencent API endpoint (http:// allowed).",
    ),
    var(
        "TENCENT_SMS_CONNECT_TIMEOUT_MS",
        "3000",
        "Tencent connect timeout.",
    ),
    var(
        "TENCENT_SMS_TIMEOUT_MS",
        "10000",
        "Tencent request timeout.",
    ),
    var(
        "ALIYUN_ACCESS_KEY_ID",
        "",
        "With SMS_PROVIDER=aliyun (required then): AccessKey ID.",
    ),
    var(
        "ALIYUN_ACCESS_KEY_SECRET",
        "",
        "With aliyun (required): AccessKey secret.",
    ),
    var(
        "ALIYUN_SMS_SIGN_NAME",
        "",
        "With aliyun (required): approved signature.",
    ),
    var(
        "ALIYUN_SMS_TEMPLATE_CODE",
        "",
        "With aliyun (required): approved template code.",
    ),
    var(
        "ALIYUN_SMS_ENDPOINT",
        "https://dysmsapi.aliyuncs.com",
        "Alibaba Cloud API endpoint (http:// allowed).",
    ),
    var(
        "ALIYUN_SMS_CODE_PARAM",
        "code",
        "The template variable that gets the code.",
    ),
    var(
        "ALIYUN_SMS_CONNECT_TIMEOUT_MS",
        "3000",
        "Alibaba Cloud connect timeout.",
    ),
    var(
        "ALIYUN_SMS_TIMEOUT_MS",
        "10000",
        "Alibaba Cloud request timeout.",
    ),
    var(
        "TRUSTED_PROXIES",
        "",
        "CIDRs of your reverse proxies, whose X-Forwarded-For is believed.",
    ),
    var(
        "IPV6_CLIENT_PREFIX",
        "64",
        "An IPv6 client is counted by this prefix for per-IP limits (128: single addresses).",
    ),
    var(
        "CORS_ALLOWED_ORIGINS",
        "",
        "Origins allowed to call /graphql from a browser (https://app.example); * for every origin.",
    ),
    var("GRAPHQL_MAX_DEPTH", "10", "Deepest field nesting."),
    var(
        "GRAPHQL_MAX_COMPLEXITY",
        "200",
        "Fields per operation, one point each.",
    ),
    var("GRAPHQL_MAX_BATCH", "10", "Operations per batched request."),
    var(
        "GRAPHQL_INTROSPECTION",
        "true",
        "false switches introspection off.",
    ),
    var(
        "HTTP_BODY_LIMIT_BYTES",
        "65536",
        "Largest request body, 1 KiB to 64 MiB.",
    ),
    var(
        "HTTP_REQUEST_TIMEOUT_SECS",
        "15",
        "Longest a request may take (1 to 60).",
    ),
    var(
        "RUST_LOG",
        LOG_FILTER,
        "Log filter (tracing EnvFilter syntax).",
    ),
];

/// The log filter when `RUST_LOG` is unset (read by `telemetry`, not by `Config`).
pub const LOG_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn";

/// The entry of `name`, if it is one of [`VARIABLES`].
pub fn variable(name: &str) -> Option<&'static Variable> {
    VARIABLES.iter().find(|variable| variable.name == name)
}

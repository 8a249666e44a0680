//! The settings of the SMS providers (`SMS_PROVIDER` and the `TENCENT_*` / `ALIYUN_*`
//! variables), checked here in full so that a bad one stops start-up (exit 2) with the
//! variable's name, like every other setting, and the providers only build their clients.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::env::{ConfigError, Env};

/// One provider of `SMS_PROVIDER`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsProviderKind {
    Log,
    Tencent,
    Aliyun,
}

impl SmsProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Tencent => "tencent",
            Self::Aliyun => "aliyun",
        }
    }
}

/// `SMS_PROVIDER`: one provider, or several comma-separated, tried in that order. `log` only
/// stands alone (a chain that ends in "write it to the log" would hide a dead provider).
pub fn providers(env: &Env) -> Result<Vec<SmsProviderKind>, ConfigError> {
    const KEY: &str = "SMS_PROVIDER";
    let items = env.list(KEY)?;
    if items.is_empty() {
        return Ok(vec![SmsProviderKind::Log]);
    }
    let mut kinds = Vec::new();
    for item in &items {
        let kind = match item.to_ascii_lowercase().as_str() {
            "log" => SmsProviderKind::Log,
            "tencent" => SmsProviderKind::Tencent,
            "aliyun" => SmsProviderKind::Aliyun,
            other => {
                return Err(ConfigError::new(
                    KEY,
                    format!("expected log, tencent or aliyun (comma-separated), got {other:?}"),
                ));
            }
        };
        if kinds.contains(&kind) {
            return Err(ConfigError::new(
                KEY,
                format!("{} is listed twice", kind.as_str()),
            ));
        }
        kinds.push(kind);
    }
    if kinds.len() > 1 && kinds.contains(&SmsProviderKind::Log) {
        return Err(ConfigError::new(
            KEY,
            "log cannot be combined with other providers",
        ));
    }
    Ok(kinds)
}

/// `SMS_PROVIDER_SKIP_SECS`: how long a provider that failed 5 times in a row (proven not
/// sent) is skipped by the chain.
pub fn skip_for(env: &Env) -> Result<Duration, ConfigError> {
    const KEY: &str = "SMS_PROVIDER_SKIP_SECS";
    let secs: u64 = env.var_parsed(KEY)?;
    if !(1..=3_600).contains(&secs) {
        return Err(ConfigError::new(KEY, "must be between 1 and 3600"));
    }
    Ok(Duration::from_secs(secs))
}

/// A provider's API origin, checked: `http(s)://host[:port]` and nothing else (the APIs are
/// always `POST /`), with the `Host` header that will be sent and signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderEndpoint {
    pub url: reqwest::Url,
    /// The `Host` header reqwest sends for `url`, which is the host that must be signed: the
    /// host, lowercase, plus `:port` only when the port is not the scheme's default
    /// (`http://127.0.0.1:18080` → `127.0.0.1:18080`, `https://x.com:443` → `x.com`).
    pub host: String,
}

impl ProviderEndpoint {
    /// # Errors
    ///
    /// A problem for the person who wrote `raw`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(raw).map_err(|_| format!("{raw:?} is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("must be an http:// or https:// URL, got {raw:?}"));
        }
        if url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(format!(
                "must be a bare origin such as https://api.example.com (the API is always \
                 POST /), got {raw:?}"
            ));
        }
        // `Url::port()` is already `None` for the scheme's default port, and hyper writes
        // `Host` from the same URL the same way.
        let host = url
            .host_str()
            .ok_or_else(|| format!("{raw:?} has no host"))?
            .to_ascii_lowercase();
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        Ok(Self { url, host })
    }
}

#[derive(Clone, Debug)]
pub struct TencentConfig {
    pub secret_id: String,
    pub secret_key: SecretString,
    pub sdk_app_id: String,
    pub sign_name: String,
    pub template_id: String,
    pub region: String,
    pub endpoint: ProviderEndpoint,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl TencentConfig {
    pub fn from_source(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            secret_id: header_token(env, "TENCENT_SECRET_ID")?,
            secret_key: secret_token(env, "TENCENT_SECRET_KEY")?,
            sdk_app_id: env.required_var("TENCENT_SMS_SDK_APP_ID")?,
            sign_name: env.required_var("TENCENT_SMS_SIGN_NAME")?,
            template_id: env.required_var("TENCENT_SMS_TEMPLATE_ID")?,
            region: header_token(env, "TENCENT_SMS_REGION")?,
            endpoint: endpoint(env, "TENCENT_SMS_ENDPOINT")?,
            connect_timeout: millis(env, "TENCENT_SMS_CONNECT_TIMEOUT_MS")?,
            timeout: millis(env, "TENCENT_SMS_TIMEOUT_MS")?,
        })
    }
}

#[derive(Clone, Debug)]
pub struct AliyunConfig {
    pub access_key_id: String,
    pub access_key_secret: SecretString,
    pub sign_name: String,
    pub template_code: String,
    pub endpoint: ProviderEndpoint,
    /// The template variable that gets the code: `TemplateParam` is `{"<code_param>":"<code>"}`.
    pub code_param: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl AliyunConfig {
    pub fn from_source(env: &Env) -> Result<Self, ConfigError> {
        let code_param = env.required_var("ALIYUN_SMS_CODE_PARAM")?;
        // A template variable name: `${code}` in the template text.
        if code_param.len() > 64
            || !code_param
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ConfigError::new(
                "ALIYUN_SMS_CODE_PARAM",
                "must be a template variable name: 1 to 64 of A-Z a-z 0-9 _",
            ));
        }
        Ok(Self {
            access_key_id: header_token(env, "ALIYUN_ACCESS_KEY_ID")?,
            access_key_secret: secret_token(env, "ALIYUN_ACCESS_KEY_SECRET")?,
            sign_name: env.required_var("ALIYUN_SMS_SIGN_NAME")?,
            template_code: header_token(env, "ALIYUN_SMS_TEMPLATE_CODE")?,
            endpoint: endpoint(env, "ALIYUN_SMS_ENDPOINT")?,
            code_param,
            connect_timeout: millis(env, "ALIYUN_SMS_CONNECT_TIMEOUT_MS")?,
            timeout: millis(env, "ALIYUN_SMS_TIMEOUT_MS")?,
        })
    }
}

fn endpoint(env: &Env, key: &'static str) -> Result<ProviderEndpoint, ConfigError> {
    let raw = env.required_var(key)?;
    ProviderEndpoint::parse(&raw).map_err(|problem| ConfigError::new(key, problem))
}

/// Printable ASCII without spaces: what can go into an HTTP header (`Authorization`,
/// `X-TC-Region`) as is.
fn is_header_token(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic())
}

/// A required (or defaulted) value that is sent in a header.
fn header_token(env: &Env, key: &'static str) -> Result<String, ConfigError> {
    let value = env.required_var(key)?;
    if is_header_token(&value) {
        Ok(value)
    } else {
        Err(ConfigError::new(
            key,
            "must be non-empty printable ASCII without spaces",
        ))
    }
}

/// A required signing key; the error never contains it.
fn secret_token(env: &Env, key: &'static str) -> Result<SecretString, ConfigError> {
    let secret = SecretString::from(env.required_var(key)?);
    if is_header_token(secret.expose_secret()) {
        Ok(secret)
    } else {
        Err(ConfigError::new(
            key,
            "must be printable ASCII without spaces",
        ))
    }
}

/// A provider timeout in milliseconds: 1 ms to 60 s.
fn millis(env: &Env, key: &'static str) -> Result<Duration, ConfigError> {
    let ms: u64 = env.var_parsed(key)?;
    if !(1..=60_000).contains(&ms) {
        return Err(ConfigError::new(key, "must be between 1 and 60000"));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TENCENT: &[(&str, &str)] = &[
        ("TENCENT_SECRET_ID", "AKIDexample"),
        ("TENCENT_SECRET_KEY", "very-secret-key"),
        ("TENCENT_SMS_SDK_APP_ID", "1400006666"),
        ("TENCENT_SMS_SIGN_NAME", "腾讯云"),
        ("TENCENT_SMS_TEMPLATE_ID", "1234567"),
    ];

    const ALIYUN: &[(&str, &str)] = &[
        ("ALIYUN_ACCESS_KEY_ID", "LTAI5texample"),
        ("ALIYUN_ACCESS_KEY_SECRET", "very-secret-aliyun"),
        ("ALIYUN_SMS_SIGN_NAME", "阿里云"),
        ("ALIYUN_SMS_TEMPLATE_CODE", "SMS_154950909"),
    ];

    fn with(base: &[(&'static str, &'static str)], extra: &[(&'static str, &'static str)]) -> Env {
        let mut pairs = base.to_vec();
        pairs.extend_from_slice(extra);
        Env::from_pairs(&pairs)
    }

    #[test]
    fn provider_lists_parse_in_order() {
        let parse = |raw| providers(&Env::from_pairs(&[("SMS_PROVIDER", raw)]));
        assert_eq!(parse("log").unwrap(), vec![SmsProviderKind::Log]);
        assert_eq!(
            parse("Tencent, aliyun").unwrap(),
            vec![SmsProviderKind::Tencent, SmsProviderKind::Aliyun]
        );
        assert_eq!(
            parse("aliyun,tencent").unwrap(),
            vec![SmsProviderKind::Aliyun, SmsProviderKind::Tencent]
        );
        assert_eq!(
            providers(&Env::from_pairs(&[])).unwrap(),
            vec![SmsProviderKind::Log]
        );
        for bad in ["tencent,tencent", "log,tencent", "tencent,pigeon", "sms"] {
            assert_eq!(parse(bad).unwrap_err().key, "SMS_PROVIDER", "{bad}");
        }
    }

    #[test]
    fn endpoints_are_bare_origins_with_the_host_reqwest_sends() {
        let host = |raw: &str| ProviderEndpoint::parse(raw).map(|e| e.host);
        assert_eq!(
            host("https://sms.tencentcloudapi.com").unwrap(),
            "sms.tencentcloudapi.com"
        );
        assert_eq!(
            host("https://sms.tencentcloudapi.com/").unwrap(),
            "sms.tencentcloudapi.com"
        );
        assert_eq!(
            host("https://sms.tencentcloudapi.com:443/").unwrap(),
            "sms.tencentcloudapi.com",
            "the default https port is not part of Host"
        );
        assert_eq!(host("http://127.0.0.1:80").unwrap(), "127.0.0.1");
        assert_eq!(host("http://127.0.0.1:18080/").unwrap(), "127.0.0.1:18080");
        assert_eq!(
            host("https://dysmsapi.aliyuncs.com:8443").unwrap(),
            "dysmsapi.aliyuncs.com:8443"
        );
        assert_eq!(
            host("HTTPS://SMS.AP-Guangzhou.TencentCloudAPI.com").unwrap(),
            "sms.ap-guangzhou.tencentcloudapi.com"
        );
        assert_eq!(host("http://[::1]:18080").unwrap(), "[::1]:18080");
        for bad in [
            "sms.tencentcloudapi.com",
            "ftp://sms.tencentcloudapi.com",
            "https://sms.tencentcloudapi.com/v3",
            "https://sms.tencentcloudapi.com/?a=b",
            "https://sms.tencentcloudapi.com/#x",
            "https://user:pw@sms.tencentcloudapi.com",
            "data:text/plain,hi",
        ] {
            assert!(host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_bad_tencent_setting_names_its_variable_and_never_the_key() {
        assert!(TencentConfig::from_source(&with(TENCENT, &[])).is_ok());
        let cases: &[(&str, &str)] = &[
            ("TENCENT_SECRET_ID", "AKID example"),
            ("TENCENT_SECRET_KEY", "very secret key"),
            ("TENCENT_SMS_REGION", "ap guangzhou"),
            ("TENCENT_SMS_ENDPOINT", "https://sms.tencentcloudapi.com/v3"),
            ("TENCENT_SMS_CONNECT_TIMEOUT_MS", "0"),
            ("TENCENT_SMS_TIMEOUT_MS", "0"),
            ("TENCENT_SMS_TIMEOUT_MS", "600000"),
        ];
        for (key, value) in cases {
            let err = TencentConfig::from_source(&with(TENCENT, &[(key, value)])).unwrap_err();
            assert_eq!(err.key, *key, "{key}={value}");
            assert!(!err.to_string().contains("very secret key"), "{err}");
        }
        for key in ["TENCENT_SMS_SDK_APP_ID", "TENCENT_SMS_TEMPLATE_ID"] {
            let pairs: Vec<_> = TENCENT.iter().copied().filter(|(k, _)| k != &key).collect();
            let err = TencentConfig::from_source(&Env::from_pairs(&pairs)).unwrap_err();
            assert_eq!(err.key, key);
        }
    }

    #[test]
    fn aliyun_settings_have_the_contracts_defaults_and_bounds() {
        let config = AliyunConfig::from_source(&with(ALIYUN, &[])).unwrap();
        assert_eq!(config.endpoint.host, "dysmsapi.aliyuncs.com");
        assert_eq!(config.code_param, "code");
        assert_eq!(config.timeout, Duration::from_secs(10));
        let local = AliyunConfig::from_source(&with(
            ALIYUN,
            &[("ALIYUN_SMS_ENDPOINT", "http://127.0.0.1:18080")],
        ))
        .unwrap();
        assert_eq!(local.endpoint.host, "127.0.0.1:18080");

        let cases: &[(&str, &str)] = &[
            ("ALIYUN_ACCESS_KEY_ID", "LTAI example"),
            ("ALIYUN_ACCESS_KEY_SECRET", "very secret key"),
            ("ALIYUN_SMS_TEMPLATE_CODE", "SMS 1"),
            ("ALIYUN_SMS_ENDPOINT", "dysmsapi.aliyuncs.com"),
            ("ALIYUN_SMS_CODE_PARAM", "co de"),
            ("ALIYUN_SMS_CODE_PARAM", "\"}"),
            ("ALIYUN_SMS_TIMEOUT_MS", "0"),
        ];
        for (key, value) in cases {
            let err = AliyunConfig::from_source(&with(ALIYUN, &[(key, value)])).unwrap_err();
            assert_eq!(err.key, *key, "{key}={value}");
            assert!(!err.to_string().contains("very secret key"), "{err}");
        }
        let err = AliyunConfig::from_source(&Env::from_pairs(&[])).unwrap_err();
        assert_eq!(err.key, "ALIYUN_ACCESS_KEY_ID");
    }

    #[test]
    fn the_skip_period_is_bounded() {
        assert_eq!(
            skip_for(&Env::from_pairs(&[])).unwrap(),
            Duration::from_secs(30)
        );
        for bad in ["0", "3601", "soon"] {
            let err = skip_for(&Env::from_pairs(&[("SMS_PROVIDER_SKIP_SECS", bad)])).unwrap_err();
            assert_eq!(err.key, "SMS_PROVIDER_SKIP_SECS");
        }
    }
}

//! Every message a client can read, in English and in Chinese (contract
//! §3.9), in one table:
//!
//! - [`app_error`]: the errors of operations ([`AppError`], with the reasons
//!   of `BAD_USER_INPUT` and `RATE_LIMITED`);
//! - [`request_problem`]: why a request could not run, in our own words;
//! - [`quoted`]: the messages of async-graphql's own parser and validator,
//!   which we cannot reword: Chinese clients get them after a Chinese lead.
//!
//! Only `message` changes with the language. `extensions` are built from the
//! error alone (`graphql::errors`), before any language is chosen, so an app
//! that branches on `extensions.code` behaves the same for every user.
//!
//! The language is the client's choice: [`Language::from_accept_language`].

use std::borrow::Cow;
use std::time::Duration;

use crate::domain::InvalidReason;
use crate::error::{AppError, INTERNAL_SERVER_ERROR, RateLimitReason, retry_after_secs};

/// A language messages are written in. English unless the client prefers Chinese.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Language {
    #[default]
    English,
    Chinese,
}

impl Language {
    /// The language of the `Accept-Language` header values (RFC 9110
    /// §12.5.4): Chinese when, among the ranges we can serve, a `zh` range
    /// (`zh`, `zh-CN`, `zh-Hans`, `zh-TW`, ...) has the highest weight;
    /// English otherwise (`en-*`, `*`, nothing we speak, no header). Ranges of
    /// equal weight keep the order they were written in. A malformed range
    /// (bad characters, a `q` that is no qvalue) is skipped; `q=0` refuses.
    pub fn from_accept_language<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut best: Option<(u16, Self)> = None;
        for range in values.into_iter().flat_map(|value| value.split(',')) {
            let Some((tag, weight)) = parse_range(range) else {
                continue;
            };
            let language = if has_primary(tag, "zh") {
                Self::Chinese
            } else if tag == "*" || has_primary(tag, "en") {
                Self::English
            } else {
                continue;
            };
            if weight > 0 && best.is_none_or(|(top, _)| weight > top) {
                best = Some((weight, language));
            }
        }
        best.map_or_else(Self::default, |(_, language)| language)
    }
}

/// `tag;q=0.8` → `("tag", 800)`; the weight in thousandths, 1000 when absent.
fn parse_range(range: &str) -> Option<(&str, u16)> {
    let mut parts = range.split(';');
    let tag = parts.next()?.trim();
    let well_formed = tag == "*"
        || (!tag.is_empty()
            && tag.len() <= 64
            && tag.split('-').all(|subtag| {
                (1..=8).contains(&subtag.len()) && subtag.bytes().all(|b| b.is_ascii_alphanumeric())
            }));
    if !well_formed {
        return None;
    }
    let mut weight = 1000;
    for parameter in parts {
        let (name, value) = parameter.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            weight = parse_qvalue(value.trim())?;
        }
    }
    Some((tag, weight))
}

/// A qvalue (`0`, `0.5`, `0.125`, `1`, `1.000`) in thousandths.
fn parse_qvalue(raw: &str) -> Option<u16> {
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |n, digit| n * 10 + u16::from(digit - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// `zh`, `zh-CN`, `ZH-hans` have the primary subtag `zh`; `zhx` has not.
fn has_primary(tag: &str, primary: &str) -> bool {
    let head = tag.split('-').next().unwrap_or_default();
    head.eq_ignore_ascii_case(primary)
}

/// One message in every language we speak.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    en: Cow<'static, str>,
    zh: Cow<'static, str>,
}

impl Text {
    pub fn in_language(&self, language: Language) -> &str {
        match language {
            Language::English => &self.en,
            Language::Chinese => &self.zh,
        }
    }

    /// The English text, as logs show it.
    pub fn english(&self) -> &str {
        &self.en
    }
}

const fn both(en: &'static str, zh: &'static str) -> Text {
    Text {
        en: Cow::Borrowed(en),
        zh: Cow::Borrowed(zh),
    }
}

fn formatted(en: String, zh: String) -> Text {
    Text {
        en: Cow::Owned(en),
        zh: Cow::Owned(zh),
    }
}

/// The message of an operation's error. Never includes causes, provider
/// texts or secrets: only what the variant itself says.
pub fn app_error(error: &AppError) -> Text {
    match error {
        AppError::BadUserInput(invalid) => invalid_input(invalid.field, invalid.reason),
        AppError::Unauthenticated => both("a valid access token is required", "需要有效的访问令牌"),
        AppError::Forbidden => both("this field belongs to another user", "该字段属于其他用户"),
        AppError::InvalidCredentials => both("wrong account or password", "账号或密码错误"),
        AppError::InvalidCode { .. } => both(
            "the code is wrong, expired or already used",
            "验证码错误、已过期或已使用",
        ),
        AppError::TooManyAttempts => both(
            "too many wrong codes: request a new one",
            "验证码错误次数过多，请重新获取",
        ),
        AppError::RateLimited {
            reason,
            retry_after,
            ..
        } => rate_limited(*reason, *retry_after),
        AppError::MobileTaken => both("this mobile is already registered", "该手机号已注册"),
        AppError::UsernameTaken => both("this username is taken", "该用户名已被占用"),
        AppError::EmailTaken => both("this email is already registered", "该邮箱已被注册"),
        AppError::UserNotFound => {
            both("no user is registered with this mobile", "该手机号尚未注册")
        }
        AppError::RegionNotAllowed => both(
            "codes cannot be sent to this region",
            "无法向该地区的手机号发送验证码",
        ),
        AppError::InvalidRefreshToken => both(
            "the refresh token is invalid or expired",
            "刷新令牌无效或已过期",
        ),
        AppError::SmsDeliveryFailed { .. } => both("the SMS could not be sent", "短信发送失败"),
        AppError::ServiceUnavailable { .. } => both(
            "the service is temporarily unavailable",
            "服务暂时不可用，请稍后再试",
        ),
        AppError::Internal(_) => both("internal server error", "服务器内部错误"),
    }
}

/// `BAD_USER_INPUT`: in English the field (as the client named it) and what
/// is wrong with it; in Chinese a sentence about the value (`extensions.field`
/// names the field for the app).
fn invalid_input(field: &str, reason: InvalidReason) -> Text {
    let (en, zh) = match reason {
        InvalidReason::NotAMobile => ("is not a valid mobile number", "手机号格式不正确"),
        InvalidReason::CannotReceiveSms => ("cannot receive SMS", "该手机号无法接收短信"),
        InvalidReason::NotACode => (
            "must be the digits of the code we sent",
            "验证码须为短信中的数字",
        ),
        InvalidReason::NotAUsername => (
            "must be 3 to 32 letters, digits, '_', '.' or '-', starting with a letter",
            "用户名须为 3 到 32 位字母、数字、“_”、“.”或“-”，并以字母开头",
        ),
        InvalidReason::NotAnAccount => (
            "must be a username, mobile or email",
            "账号须为用户名、手机号或邮箱",
        ),
        InvalidReason::NotAnEmail => ("is not a valid email address", "邮箱格式不正确"),
        InvalidReason::NotAUserId => ("is not a user id", "用户 ID 无效"),
        InvalidReason::NotARefreshToken => ("is not a refresh token", "刷新令牌格式不正确"),
        InvalidReason::PasswordLength => {
            ("must be 8 to 128 characters", "密码须为 8 到 128 个字符")
        }
        InvalidReason::PasswordLikeAccount => (
            "must not be the same as the mobile or the username",
            "密码不能与手机号或用户名相同",
        ),
        InvalidReason::PasswordTooLong => ("is too long", "密码过长"),
    };
    formatted(format!("{field} {en}"), zh.to_owned())
}

/// `RATE_LIMITED`: which limit, and when to try again (as `retryAfter` says,
/// in a unit people read).
fn rate_limited(reason: RateLimitReason, retry_after: Duration) -> Text {
    let (en, zh) = match reason {
        RateLimitReason::Cooldown => ("a code was sent just now", "验证码刚刚已发送"),
        RateLimitReason::MobileLimit => (
            "this mobile has received too many codes",
            "该手机号获取验证码次数过多",
        ),
        RateLimitReason::IpLimit => (
            "too many codes were requested from your network",
            "当前网络获取验证码次数过多",
        ),
        RateLimitReason::VerifyLimit => (
            "too many wrong codes were entered from your network",
            "当前网络输入错误验证码次数过多",
        ),
        RateLimitReason::LoginThrottle => ("too many failed logins", "登录失败次数过多"),
        RateLimitReason::MobileExistsLimit => ("too many lookups", "查询过于频繁"),
        RateLimitReason::GlobalLimit => (
            "the service is sending too many SMS right now",
            "短信发送总量已达上限",
        ),
        RateLimitReason::RegionLimit => (
            "too many SMS were sent to this region",
            "发往该地区的短信过多",
        ),
        RateLimitReason::SmsGuard => (
            "codes to this number range are paused",
            "该号段的验证码已暂停发送",
        ),
        RateLimitReason::ProviderLimit => (
            "the SMS provider limits codes to this mobile",
            "短信服务商限制了该手机号的发送频率",
        ),
    };
    let (amount, en_unit, zh_unit) = human_wait(retry_after);
    formatted(
        format!("{en}: try again in {amount} {en_unit}"),
        format!("{zh}，请 {amount} {zh_unit}后再试"),
    )
}

/// A wait in seconds below two minutes, minutes below two hours, else
/// hours; rounded up, so waiting that long is always enough.
fn human_wait(retry_after: Duration) -> (u64, &'static str, &'static str) {
    let secs = retry_after_secs(retry_after);
    match secs {
        0..120 => (secs, "s", "秒"),
        120..7200 => (secs.div_ceil(60), "min", "分钟"),
        _ => (secs.div_ceil(3600), "h", "小时"),
    }
}

/// Why a request could not run at all, found by smsauth itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestProblem {
    BodyTooLarge,
    BodyCutOff,
    BodyNotJson,
    NotGraphqlJson,
    EmptyBatch,
    BatchTooLarge,
    NoQuery,
    MalformedGet,
    MethodNotAllowed,
    MutationOverGet,
    NestedTooDeep,
    TooComplex,
    IntrospectionTooLarge,
    /// A mutation operation selecting this many root fields, not one.
    MutationFields(usize),
    SchemaTwice,
    /// More `__type` selections than this many.
    TooManyTypes(usize),
    EnumDefaultQuoted {
        variable: String,
    },
    EnumArgumentQuoted {
        field: String,
        argument: String,
    },
    UndefinedVariable(String),
}

pub fn request_problem(problem: &RequestProblem) -> Text {
    use RequestProblem as P;
    match problem {
        P::BodyTooLarge => both(
            "the body is larger than HTTP_BODY_LIMIT_BYTES allows",
            "请求体超过了 HTTP_BODY_LIMIT_BYTES 允许的大小",
        ),
        P::BodyCutOff => both("the body was cut off", "请求体不完整"),
        P::BodyNotJson => both(
            "the body must be JSON (Content-Type: application/json)",
            "请求体须为 JSON（Content-Type: application/json）",
        ),
        P::NotGraphqlJson => both(
            "the body is not a GraphQL request in JSON",
            "请求体不是 JSON 格式的 GraphQL 请求",
        ),
        P::EmptyBatch => both("the batch is empty", "批量请求为空"),
        P::BatchTooLarge => both(
            "the batch has more operations than allowed",
            "批量请求中的操作数超过上限",
        ),
        P::NoQuery => both("the request has no query", "请求中没有 query"),
        P::MalformedGet => both("malformed GraphQL GET request", "GraphQL GET 请求格式错误"),
        P::MethodNotAllowed => both(
            "only GET and POST are allowed on /graphql",
            "/graphql 只接受 GET 和 POST 请求",
        ),
        P::MutationOverGet => both(
            "mutations are not allowed over GET: use POST",
            "GET 请求不能执行 mutation，请使用 POST",
        ),
        P::NestedTooDeep => both("Query is nested too deep.", "查询嵌套过深。"),
        P::TooComplex => both("Query is too complex.", "查询过于复杂。"),
        P::IntrospectionTooLarge => both(
            "Introspection selects too many fields.",
            "内省查询选择的字段过多。",
        ),
        P::MutationFields(n) => formatted(
            format!("A mutation operation must select exactly one field, not {n}."),
            format!("一个 mutation 操作必须只选择一个字段，而不是 {n} 个。"),
        ),
        P::SchemaTwice => both(
            "An operation may select __schema only once.",
            "一个操作最多只能选择一次 __schema。",
        ),
        P::TooManyTypes(max) => formatted(
            format!("An operation may select __type at most {max} times."),
            format!("一个操作最多只能选择 {max} 次 __type。"),
        ),
        P::EnumDefaultQuoted { variable } => formatted(
            format!("The default of \"${variable}\" is an enum: write its value without quotes."),
            format!("变量“${variable}”的默认值是枚举值：请去掉引号。"),
        ),
        P::EnumArgumentQuoted { field, argument } => formatted(
            format!(
                "Argument \"{argument}\" of \"{field}\" is an enum: write its value without quotes."
            ),
            format!("“{field}”的参数“{argument}”是枚举值：请去掉引号。"),
        ),
        P::UndefinedVariable(name) => formatted(
            format!("Variable \"${name}\" is not defined."),
            format!("变量“${name}”未定义。"),
        ),
    }
}

/// A message smsauth did not write (async-graphql's parser and validator,
/// an unexpected field error), for an error with this `extensions.code`:
/// English as it is, Chinese after a lead that says what went wrong. Apollo's
/// `PersistedQueryNotFound` stays as it is: clients match on that word.
pub fn quoted(code: &str, message: &str) -> Text {
    let lead = match code {
        "PERSISTED_QUERY_NOT_FOUND" => None,
        "GRAPHQL_PARSE_FAILED" => Some("GraphQL 文档无法解析"),
        "GRAPHQL_VALIDATION_FAILED" => Some("GraphQL 文档未通过校验"),
        "BAD_REQUEST" => Some("请求无效"),
        INTERNAL_SERVER_ERROR => Some("服务器内部错误"),
        _ => Some("请求失败"),
    };
    let zh = match lead {
        Some(lead) => format!("{lead}：{message}"),
        None => message.to_owned(),
    };
    formatted(message.to_owned(), zh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RequestError;

    fn language(header: &str) -> Language {
        Language::from_accept_language([header])
    }

    #[test]
    fn any_chinese_range_preferred_gives_chinese() {
        for header in [
            "zh",
            "zh-CN",
            "zh-Hans",
            "zh-Hant-TW",
            "ZH-cn",
            "zh;q=0.9,en;q=0.8",
            "en;q=0.5, zh-CN",
            "fr, zh-CN;q=0.5",
            "zh-CN,zh;q=0.9,en-US;q=0.8,en;q=0.7",
            "zh;q=1.000, en;q=0.999",
            "zh;q=1., en",
            "xx-@@, zh",
            "en;q=0, zh;q=0.1",
            "zh;q=0.5, en;q=0.5",
        ] {
            assert_eq!(language(header), Language::Chinese, "{header:?}");
        }
    }

    #[test]
    fn everything_else_gives_english() {
        for header in [
            "",
            "en",
            "en-US,en;q=0.9,zh-CN;q=0.8",
            "*",
            "*;q=0.9, zh;q=0.8",
            "fr, de",
            "zhx, zh-;q=1",
            "zh;q=0",
            "zh;q=2",
            "zh;q=abc",
            "zh;q=0.5000",
            "zh;q",
            "zh CN",
            ";;;,,,",
            "en;q=0.5, zh;q=0.5",
            "\u{4e2d}\u{6587}",
            "zh-averyveryverylongsubtag",
        ] {
            assert_eq!(language(header), Language::English, "{header:?}");
        }
        assert_eq!(Language::from_accept_language([]), Language::English);
    }

    #[test]
    fn several_header_values_count_together() {
        assert_eq!(
            Language::from_accept_language(["en;q=0.5", "zh-CN"]),
            Language::Chinese
        );
    }

    fn is_chinese(text: &str) -> bool {
        text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    fn assert_bilingual(text: &Text, what: &str) {
        let (en, zh) = (
            text.in_language(Language::English),
            text.in_language(Language::Chinese),
        );
        assert!(
            !en.trim().is_empty() && !is_chinese(en),
            "{what}: English {en:?}"
        );
        assert!(is_chinese(zh), "{what}: Chinese {zh:?}");
    }

    #[test]
    fn every_operation_error_has_both_texts() {
        let errors = AppError::one_of_each();
        let codes: Vec<&str> = errors.iter().map(AppError::code).collect();
        assert_eq!(codes, AppError::CODES, "one error of each code");
        for error in &errors {
            assert_bilingual(&app_error(error), error.code());
        }
        for reason in InvalidReason::ALL {
            let text = invalid_input("mobile", reason);
            assert_bilingual(&text, &format!("{reason:?}"));
            assert!(text.english().starts_with("mobile "), "names the field");
        }
        for reason in RateLimitReason::ALL {
            let text = rate_limited(reason, Duration::from_secs(30));
            assert_bilingual(&text, reason.as_str());
            assert!(text.in_language(Language::Chinese).contains("30 秒"));
        }
    }

    #[test]
    fn every_request_level_code_has_both_texts() {
        let problems = [
            RequestProblem::BodyTooLarge,
            RequestProblem::BodyCutOff,
            RequestProblem::BodyNotJson,
            RequestProblem::NotGraphqlJson,
            RequestProblem::EmptyBatch,
            RequestProblem::BatchTooLarge,
            RequestProblem::NoQuery,
            RequestProblem::MalformedGet,
            RequestProblem::MethodNotAllowed,
            RequestProblem::MutationOverGet,
            RequestProblem::NestedTooDeep,
            RequestProblem::TooComplex,
            RequestProblem::IntrospectionTooLarge,
            RequestProblem::MutationFields(2),
            RequestProblem::SchemaTwice,
            RequestProblem::TooManyTypes(10),
            RequestProblem::EnumDefaultQuoted {
                variable: "p".into(),
            },
            RequestProblem::EnumArgumentQuoted {
                field: "f".into(),
                argument: "a".into(),
            },
            RequestProblem::UndefinedVariable("v".into()),
        ];
        for problem in &problems {
            assert_bilingual(&request_problem(problem), &format!("{problem:?}"));
        }
        for error in RequestError::ALL {
            let text = quoted(error.code(), "Unknown field \"x\".");
            assert_eq!(text.english(), "Unknown field \"x\".", "English as it is");
            if error == RequestError::PersistedQueryNotFound {
                let word = quoted(error.code(), "PersistedQueryNotFound");
                assert_eq!(
                    word.in_language(Language::Chinese),
                    "PersistedQueryNotFound"
                );
            } else {
                assert_bilingual(&text, error.code());
            }
        }
        assert_bilingual(&quoted(INTERNAL_SERVER_ERROR, "boom"), "field errors");
    }

    #[test]
    fn waits_are_rounded_up_to_a_unit_people_read() {
        let wait = |secs| rate_limited(RateLimitReason::Cooldown, Duration::from_secs(secs));
        assert!(wait(59).english().ends_with("try again in 59 s"));
        assert!(wait(121).english().ends_with("try again in 3 min"));
        assert!(
            wait(86_400)
                .in_language(Language::Chinese)
                .ends_with("请 24 小时后再试")
        );
        let subsecond = rate_limited(RateLimitReason::Cooldown, Duration::from_millis(1));
        assert!(subsecond.english().ends_with("try again in 1 s"));
    }
}

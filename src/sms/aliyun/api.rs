//! Alibaba Cloud SMS `SendSms` (API version 2017-05-25): the request parameters, the answer,
//! and what each Aliyun error code means for smsauth. Pure data and decisions, no I/O.
//!
//! Answers come in two shapes with the same fields: business answers (HTTP 200, `Code` is
//! `OK` only when accepted) and gateway refusals (HTTP 4xx/5xx: signature, key, clock,
//! missing parameter). Match on `Code` only: `Message` is for people and changes; the one
//! exception is `isv.BUSINESS_LIMIT_CONTROL`, whose message names the window that was hit.

use std::time::Duration;

use serde::Deserialize;

use crate::sms::wire::null_as_default;

/// The `x-acs-action` header value (exact case).
pub const ACTION: &str = "SendSms";
/// The `x-acs-version` header value.
pub const VERSION: &str = "2017-05-25";
/// `Code` of an accepted message.
pub const OK_CODE: &str = "OK";

/// The `TemplateParam` value: a JSON object of strings, `{"<code_param>":"<code>"}`.
/// Serialized once; the same string is signed and sent.
pub fn template_param(code_param: &str, code: &str) -> String {
    let mut object = serde_json::Map::new();
    object.insert(
        code_param.to_owned(),
        serde_json::Value::String(code.to_owned()),
    );
    serde_json::Value::Object(object).to_string()
}

/// An answer of Aliyun's (either shape). Tolerant: missing or `null` fields read as empty,
/// unknown ones are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SendSmsResponse {
    #[serde(deserialize_with = "null_as_default")]
    pub code: String,
    /// For people (Chinese for business codes): logged scrubbed, never shown to clients.
    #[serde(deserialize_with = "null_as_default")]
    pub message: String,
    /// The send's id on success (`9006197469364984400`, or `853819343905671399^0`).
    #[serde(deserialize_with = "null_as_default")]
    pub biz_id: String,
    /// What Alibaba Cloud support asks for; not secret.
    #[serde(deserialize_with = "null_as_default")]
    pub request_id: String,
}

/// Reads an answer. `None` when the body is not Aliyun's JSON or carries no `Code`: then the
/// outcome is unknown.
pub fn parse_response(body: &[u8]) -> Option<SendSmsResponse> {
    serde_json::from_slice::<SendSmsResponse>(body)
        .ok()
        .filter(|answer| !answer.code.is_empty())
}

/// What an Aliyun error code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderFailure {
    /// The per signature + number frequency limit (`isv.BUSINESS_LIMIT_CONTROL`).
    RateLimited,
    /// Aliyun will not send to this number.
    InvalidNumber,
    /// Credentials, clock, permissions, balance, account, signature, template, the account's
    /// own volume caps and API rate, or a parameter smsauth got wrong: nothing was sent, an
    /// operator must act; see [`operator_hint`].
    Misconfigured,
    /// Aliyun's internal error.
    ProviderError,
    /// Blocked content or number, or a code smsauth does not know: nothing was sent.
    Other,
}

#[must_use]
pub fn classify(code: &str) -> ProviderFailure {
    use ProviderFailure::{InvalidNumber, Misconfigured, Other, ProviderError, RateLimited};
    match code {
        "isv.BUSINESS_LIMIT_CONTROL" => RateLimited,
        "isv.MOBILE_NUMBER_ILLEGAL" => InvalidNumber,
        "InternalError" | "ServiceUnavailable" | "isp.SYSTEM_ERROR" => ProviderError,
        "isv.BLACK_KEY_CONTROL_LIMIT" => Other,
        _ if operator_hint(code).is_some() => Misconfigured,
        _ => Other,
    }
}

/// A short line for the operator's log, for every [`ProviderFailure::Misconfigured`] code.
#[must_use]
pub fn operator_hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "SignatureDoesNotMatch" => {
            "Aliyun rejected the request signature: check ALIYUN_ACCESS_KEY_SECRET, and that \
             no proxy rewrites Host or the query string"
        }
        "IncompleteSignature" => {
            "Aliyun could not read the Authorization header: a bug in smsauth, or a proxy \
             altered it"
        }
        "InvalidAccessKeyId.NotFound" => "ALIYUN_ACCESS_KEY_ID is unknown",
        "InvalidAccessKeyId.Inactive" => "the AccessKey ALIYUN_ACCESS_KEY_ID is disabled",
        "InvalidTimeStamp.Expired" | "InvalidTimeStamp.Format" => {
            "x-acs-date is more than 15 minutes off Aliyun's clock: fix time synchronization"
        }
        "SignatureNonceUsed" => "Aliyun saw this request's nonce before: a bug in smsauth",
        "Forbidden.RAM" | "isp.RAM_PERMISSION_DENY" => {
            "the RAM user of ALIYUN_ACCESS_KEY_ID may not call dysms:SendSms"
        }
        "Throttling.User" => "the Alibaba Cloud account's API call rate limit is reached",
        "InvalidAction.NotFound" | "InvalidVersion" => {
            "Aliyun does not know SendSms 2017-05-25 at this endpoint: check ALIYUN_SMS_ENDPOINT"
        }
        "MissingPhoneNumbers"
        | "MissingSignName"
        | "MissingTemplateCode"
        | "InvalidParameter"
        | "isv.INVALID_PARAMETERS"
        | "isv.MOBILE_COUNT_OVER_LIMIT" => {
            "Aliyun rejected the shape of our SendSms request: a bug in smsauth; report it \
             with the RequestId"
        }
        "isv.DAY_LIMIT_CONTROL" | "isv.MONTH_LIMIT_CONTROL" => {
            "the account's daily or monthly sending cap set in the SMS console is reached: \
             raise it, or wait"
        }
        "isv.AMOUNT_NOT_ENOUGH" => "the Alibaba Cloud account balance is used up: top it up",
        "isv.OUT_OF_SERVICE" => "the Alibaba Cloud account is suspended for arrears: top it up",
        "isv.ACCOUNT_NOT_EXISTS"
        | "isv.ACCOUNT_ABNORMAL"
        | "isv.PRODUCT_UN_SUBSCRIPT"
        | "isv.PRODUCT_UNSUBSCRIBE" => {
            "the Alibaba Cloud account does not exist, is abnormal, or has not activated SMS"
        }
        "isv.SMS_SIGNATURE_ILLEGAL"
        | "isv.SMS_SIGN_ILLEGAL"
        | "isv.SIGN_STATE_ILLEGAL"
        | "isv.SMS_SIGNATURE_SCENE_ILLEGAL" => {
            "ALIYUN_SMS_SIGN_NAME is not the name of an approved signature usable with this \
             template"
        }
        "isv.SMS_TEMPLATE_ILLEGAL" => {
            "ALIYUN_SMS_TEMPLATE_CODE is not an approved template of this account"
        }
        "isv.TEMPLATE_MISSING_PARAMETERS"
        | "isv.TEMPLATE_PARAMS_ILLEGAL"
        | "isv.INVALID_JSON_PARAM"
        | "isv.PARAM_LENGTH_LIMIT"
        | "isv.PARAM_NOT_SUPPORT_URL"
        | "isv.SMS_CONTENT_ILLEGAL" => {
            "the template refuses the code parameter: check that its variable is \
             ALIYUN_SMS_CODE_PARAM and that it takes SMS_CODE_LENGTH digits"
        }
        "isv.DOMESTIC_NUMBER_NOT_SUPPORTED" => {
            "ALIYUN_SMS_TEMPLATE_CODE is an international template and cannot reach mainland \
             numbers: use a mainland template"
        }
        "isv.DENY_IP_RANGE" => "Aliyun refuses calls from this server's IP region",
        _ => return None,
    })
}

/// How long `isv.BUSINESS_LIMIT_CONTROL` lasts, read from the window its message names:
/// `分钟级` (a minute), `小时级` (an hour), `天级` (Aliyun's day is the last 24 hours, so at
/// most 24 hours). Another message: a minute, Aliyun's shortest window.
#[must_use]
pub fn business_limit_retry_after(message: &str) -> Duration {
    let secs = if message.contains("天级") {
        86_400
    } else if message.contains("小时级") {
        3_600
    } else {
        60
    };
    Duration::from_secs(secs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn template_param_is_a_json_object_of_one_string() {
        assert_eq!(template_param("code", "042917"), r#"{"code":"042917"}"#);
        assert_eq!(template_param("otp_1", "1234"), r#"{"otp_1":"1234"}"#);
    }

    #[test]
    fn both_answer_shapes_read_and_a_missing_code_is_unknown() {
        let ok = parse_response(
            br#"{"Code": "OK", "Message": "OK", "BizId": "9006197469364984400", "RequestId": "F655A8D5-B967-440B-8683-DAD6FF8DE990"}"#,
        )
        .unwrap();
        assert_eq!(
            (ok.code.as_str(), ok.biz_id.as_str()),
            ("OK", "9006197469364984400")
        );
        let gateway = parse_response(
            br#"{"RequestId": "E87A", "HostId": "dysmsapi.aliyuncs.com", "Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found.", "Recommend": "https://api.aliyun.com/troubleshoot"}"#,
        )
        .unwrap();
        assert_eq!(gateway.code, "InvalidAccessKeyId.NotFound");
        assert_eq!(gateway.request_id, "E87A");
        let nulls = parse_response(br#"{"Code": "OK", "BizId": null, "RequestId": null}"#).unwrap();
        assert_eq!(nulls.biz_id, "");
        for body in [
            &b"<html>502</html>"[..],
            br#"{"Message": "no code"}"#,
            br#"{"Code": ""}"#,
            br#"{"Code": "OK""#,
            b"",
        ] {
            assert_eq!(
                parse_response(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    const MISCONFIGURED: &[&str] = &[
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "InvalidTimeStamp.Expired",
        "InvalidTimeStamp.Format",
        "SignatureNonceUsed",
        "Forbidden.RAM",
        "Throttling.User",
        "InvalidAction.NotFound",
        "InvalidVersion",
        "MissingPhoneNumbers",
        "MissingSignName",
        "MissingTemplateCode",
        "InvalidParameter",
        "isv.DAY_LIMIT_CONTROL",
        "isv.MONTH_LIMIT_CONTROL",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.OUT_OF_SERVICE",
        "isv.ACCOUNT_NOT_EXISTS",
        "isv.ACCOUNT_ABNORMAL",
        "isv.PRODUCT_UN_SUBSCRIPT",
        "isv.PRODUCT_UNSUBSCRIBE",
        "isp.RAM_PERMISSION_DENY",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_SIGN_ILLEGAL",
        "isv.SIGN_STATE_ILLEGAL",
        "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.TEMPLATE_PARAMS_ILLEGAL",
        "isv.INVALID_JSON_PARAM",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.PARAM_NOT_SUPPORT_URL",
        "isv.INVALID_PARAMETERS",
        "isv.SMS_CONTENT_ILLEGAL",
        "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
        "isv.DENY_IP_RANGE",
        "isv.MOBILE_COUNT_OVER_LIMIT",
    ];

    #[test]
    fn every_documented_code_is_classified() {
        let mut table: Vec<(&str, ProviderFailure)> = vec![
            ("isv.BUSINESS_LIMIT_CONTROL", ProviderFailure::RateLimited),
            ("isv.MOBILE_NUMBER_ILLEGAL", ProviderFailure::InvalidNumber),
            ("InternalError", ProviderFailure::ProviderError),
            ("ServiceUnavailable", ProviderFailure::ProviderError),
            ("isp.SYSTEM_ERROR", ProviderFailure::ProviderError),
            ("isv.BLACK_KEY_CONTROL_LIMIT", ProviderFailure::Other),
            ("isv.SOMETHING_NEW", ProviderFailure::Other),
            ("OK", ProviderFailure::Other),
            ("", ProviderFailure::Other),
        ];
        table.extend(
            MISCONFIGURED
                .iter()
                .map(|c| (*c, ProviderFailure::Misconfigured)),
        );
        for (code, expected) in table {
            assert_eq!(classify(code), expected, "{code}");
        }
    }

    #[test]
    fn every_misconfigured_code_has_a_short_hint_and_no_other_code_has_one() {
        for code in MISCONFIGURED {
            let hint = operator_hint(code).unwrap_or_else(|| panic!("no hint for {code}"));
            assert!(hint.len() < 200, "{code}: {hint}");
        }
        for code in [
            "isv.BUSINESS_LIMIT_CONTROL",
            "isv.MOBILE_NUMBER_ILLEGAL",
            "InternalError",
        ] {
            assert_eq!(operator_hint(code), None, "{code}");
        }
    }

    #[test]
    fn business_limits_last_the_window_their_message_names() {
        let after = |m| business_limit_retry_after(m).as_secs();
        assert_eq!(after("触发分钟级流控Permits:1"), 60);
        assert_eq!(after("触发小时级流控Permits:5"), 3_600);
        assert_eq!(after("触发天级流控Permits:10"), 86_400);
        assert_eq!(after("业务限流"), 60);
    }
}

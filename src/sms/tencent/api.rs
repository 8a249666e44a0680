//! Tencent Cloud SMS `SendSms` (API version 2021-01-11): the request and response bodies,
//! and what each Tencent error code means for smsauth.
//!
//! Pure data and decisions, no I/O, so that the HTTP client stays thin and every decision is
//! unit tested: field names and shapes that Tencent is strict about (2021-01-11 spellings,
//! parameters as strings, no `null`s), a response reader that does not mistake HTTP 200 for
//! "sent", and one table that sorts error codes into what the caller does next (tell the user
//! to wait, blame the number, alert the operator, or report the provider unavailable).
//! Source: `shared/tencent-sms.md` and the SDK's `tencentcloud/sms/v20210111/errorcodes.py`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::sms::wire::null_as_default;

/// The `X-TC-Action` header value (exact case).
pub const ACTION: &str = "SendSms";
/// The `X-TC-Version` header value.
pub const VERSION: &str = "2021-01-11";
/// `SendStatusSet[].Code` of a number that was sent (capital O, lowercase k).
pub const OK_CODE: &str = "Ok";

/// The body of a `SendSms` request. Serialize it once (`serde_json::to_vec`), then sign and
/// send those same bytes.
///
/// Optional fields that are unset are left out, never sent as `null`.
#[derive(Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendSmsRequest<'a> {
    /// E.164 numbers, e.g. `+8613711112222`; at most 200, all mainland or all international.
    pub phone_number_set: &'a [&'a str],
    /// The SMS application's `SdkAppId`, e.g. `"1400006666"` (a string).
    pub sms_sdk_app_id: &'a str,
    /// The approved signature's text (e.g. `腾讯云`), not its ID.
    pub sign_name: &'a str,
    /// The approved template's ID.
    pub template_id: &'a str,
    /// One string per template variable; left out when empty.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub template_param_set: &'a [&'a str],
    /// Echoed back in each `SendStatus`; under 512 bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_context: Option<&'a str>,
}

impl fmt::Debug for SendSmsRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The numbers are personal data and the parameters carry the code: count them only.
        f.debug_struct("SendSmsRequest")
            .field("phone_numbers", &self.phone_number_set.len())
            .field("sms_sdk_app_id", &self.sms_sdk_app_id)
            .field("sign_name", &self.sign_name)
            .field("template_id", &self.template_id)
            .field("template_params", &self.template_param_set.len())
            .field("session_context", &self.session_context)
            .finish()
    }
}

/// Reads a response body: `{"Response": {...}}`. An `Err` means the body is not Tencent's
/// JSON (a proxy's HTML page, a truncated body…).
///
/// # Errors
///
/// When the body is not a JSON object with a `Response` object: treat it as the provider
/// being unreachable (the SMS may or may not have been sent).
pub fn parse_response(body: &[u8]) -> Result<SendSmsResponse, serde_json::Error> {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(rename = "Response")]
        response: SendSmsResponse,
    }
    serde_json::from_slice::<Envelope>(body).map(|envelope| envelope.response)
}

/// The content of `Response`. Tolerant: missing or `null` fields read as empty, unknown
/// fields are ignored; [`SendSmsResponse::outcome`] decides what it means.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SendSmsResponse {
    /// Present when the whole request was refused; nothing was sent.
    pub error: Option<ApiError>,
    /// Always sent by Tencent; log it, support asks for it (not secret).
    #[serde(deserialize_with = "null_as_default")]
    pub request_id: String,
    /// One entry per number, in request order.
    #[serde(deserialize_with = "null_as_default")]
    pub send_status_set: Vec<SendStatus>,
}

/// `Response.Error`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ApiError {
    #[serde(deserialize_with = "null_as_default")]
    pub code: String,
    /// For people, in the `X-TC-Language` language; match on `code` only.
    #[serde(deserialize_with = "null_as_default")]
    pub message: String,
}

/// One number's result in `SendStatusSet`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SendStatus {
    /// Empty when the number was not sent.
    #[serde(deserialize_with = "null_as_default")]
    pub serial_no: String,
    /// E.164, as Tencent normalized it.
    #[serde(deserialize_with = "null_as_default")]
    pub phone_number: String,
    /// Billed segments; 0 when not sent.
    #[serde(deserialize_with = "null_as_default")]
    pub fee: u64,
    #[serde(deserialize_with = "null_as_default")]
    pub session_context: String,
    /// [`OK_CODE`] or an error code.
    #[serde(deserialize_with = "null_as_default")]
    pub code: String,
    #[serde(deserialize_with = "null_as_default")]
    pub message: String,
    /// `CN`, `US`…; `DEF` when Tencent did not recognize the number.
    #[serde(deserialize_with = "null_as_default")]
    pub iso_code: String,
}

/// What a well-formed response says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// Every number was accepted; the first one's status.
    Sent(&'a SendStatus),
    /// The request, or a number in it, was refused with this code.
    Refused { code: &'a str, message: &'a str },
    /// No `Error` and no `SendStatusSet` entry: treat as a failure of the provider.
    Malformed,
}

impl SendSmsResponse {
    /// Reads the response in the documented order: `Error` first, then every number's
    /// `Code` (HTTP 200 without `Error` can still mean "not sent").
    #[must_use]
    pub fn outcome(&self) -> Outcome<'_> {
        if let Some(error) = &self.error {
            return Outcome::Refused {
                code: &error.code,
                message: &error.message,
            };
        }
        if let Some(refused) = self.send_status_set.iter().find(|s| s.code != OK_CODE) {
            return Outcome::Refused {
                code: &refused.code,
                message: &refused.message,
            };
        }
        match self.send_status_set.first() {
            Some(sent) => Outcome::Sent(sent),
            None => Outcome::Malformed,
        }
    }
}

/// What a Tencent error code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderFailure {
    /// One of Tencent's per-number frequency limits; see [`retry_after_secs`].
    RateLimited,
    /// The SMS application's own daily cap (all numbers, or a whole region): an account-wide
    /// quota, lifting at midnight Beijing time ([`retry_after_secs`]); another provider may
    /// send.
    AccountLimit,
    /// Tencent will not deliver to this number: malformed, opted out, or outside what the
    /// template and account can reach.
    InvalidNumber,
    /// Credentials, clock, balance, application, signature or template: an operator must fix
    /// it; see [`operator_hint`].
    Misconfigured,
    /// A Tencent-side or transient failure (`InternalError.*`, API call rate limit…); the
    /// SMS may or may not have gone out.
    Unavailable,
    /// Anything else, including codes that mean a bug in our request.
    Other,
}

/// Sorts an error code (from `Response.Error.Code` or `SendStatusSet[].Code`; Tencent uses
/// the same codes in both places).
#[must_use]
pub fn classify(code: &str) -> ProviderFailure {
    use ProviderFailure::{
        AccountLimit, InvalidNumber, Misconfigured, Other, RateLimited, Unavailable,
    };

    match code {
        "LimitExceeded.AppDailyLimit"
        | "LimitExceeded.AppMainlandChinaDailyLimit"
        | "LimitExceeded.AppGlobalDailyLimit"
        | "LimitExceeded.AppCountryOrRegionDailyLimit"
        | "LimitExceeded.DailyLimit" => AccountLimit,
        _ if rate_limit_window(code).is_some() => RateLimited,
        "InvalidParameterValue.IncorrectPhoneNumber"
        | "FailedOperation.PhoneNumberParseFail"
        | "FailedOperation.PhoneNumberInBlacklist"
        | "FailedOperation.PhoneNumberOnBlacklist"
        | "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber"
        | "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone"
        | "UnsupportedOperation.GlobalTemplateToChineseMainlandPhone"
        | "UnsupportedOperation.UnsupportedRegion"
        // Older SDK spelling of the previous code.
        | "UnsupportedOperation.UnsuportedRegion" => InvalidNumber,

        // Our server's clock, reported under InternalError.
        "InternalError.RequestTimeException" => Misconfigured,
        // Tencent could not parse what we sent: retrying the same bytes cannot help.
        "InternalError.JsonParseFail" | "InternalError.RestApiInterfaceNotExist" => Other,

        _ if operator_hint_for_misconfiguration(code).is_some() => Misconfigured,
        _ if in_family(code, "AuthFailure") => Misconfigured,
        _ if in_family(code, "InternalError")
            || in_family(code, "RequestLimitExceeded")
            || in_family(code, "ResourceUnavailable") =>
        {
            Unavailable
        }
        _ => Other,
    }
}

/// A short line for the operator's log when a code needs someone to act: every
/// [`ProviderFailure::Misconfigured`] code, Tencent's account-wide daily caps, templates that
/// cannot reach some numbers, and codes that mean our request itself is wrong. `None` when
/// the code is about one user (a bad number, a per-number limit) or transient.
#[must_use]
pub fn operator_hint(code: &str) -> Option<&'static str> {
    if let Some(hint) = operator_hint_for_misconfiguration(code) {
        return Some(hint);
    }
    Some(match code {
        "InternalError.RequestTimeException" => {
            "the server clock is more than 10 minutes off Tencent's: fix time synchronization"
        }
        "LimitExceeded.AppDailyLimit"
        | "LimitExceeded.AppMainlandChinaDailyLimit"
        | "LimitExceeded.AppGlobalDailyLimit"
        | "LimitExceeded.AppCountryOrRegionDailyLimit"
        | "LimitExceeded.DailyLimit" => {
            "the SMS application's daily sending cap is reached: no one gets a code until \
             midnight Beijing time; raise it in the SMS console (Application Management > \
             Basic Configuration)"
        }
        "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone"
        | "UnsupportedOperation.GlobalTemplateToChineseMainlandPhone"
        | "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber" => {
            "TENCENT_SMS_TEMPLATE_ID cannot reach this number's region (mainland and global \
             templates are separate): narrow SMS_ALLOWED_REGIONS or use a matching template"
        }
        "FailedOperation.JsonParseFail"
        | "FailedOperation.FailResolvePacket"
        | "InternalError.JsonParseFail"
        | "InternalError.RestApiInterfaceNotExist"
        | "MissingParameter"
        | "MissingParameter.EmptyPhoneNumberSet"
        | "UnknownParameter"
        | "InvalidParameter"
        | "InvalidParameterValue"
        | "LimitExceeded.PhoneNumberCountLimit" => {
            "Tencent rejected the shape of our SendSms request: a bug in smsauth; report it \
             with the RequestId"
        }
        "FailedOperation.ContainSensitiveWord" => {
            "Tencent's sensitive-word filter blocked the message: check the wording of the \
             template and signature"
        }
        _ => return None,
    })
}

/// The hints of the codes an operator must fix; `Some` exactly for the Misconfigured codes
/// outside the `AuthFailure` family's fallback.
fn operator_hint_for_misconfiguration(code: &str) -> Option<&'static str> {
    Some(match code {
        "AuthFailure.SignatureFailure" => {
            "Tencent rejected the request signature: check TENCENT_SECRET_KEY, and that no \
             proxy rewrites Host, Content-Type or the body"
        }
        "AuthFailure.SignatureExpire" => {
            "X-TC-Timestamp is more than 5 minutes off Tencent's clock: fix time synchronization"
        }
        "AuthFailure.SecretIdNotFound" => {
            "TENCENT_SECRET_ID is unknown or disabled (check for stray spaces)"
        }
        "AuthFailure.InvalidSecretId" => "TENCENT_SECRET_ID is not a Tencent Cloud API key",
        "AuthFailure.InvalidAuthorization" => {
            "Tencent could not read the Authorization header: a bug in smsauth, or a proxy \
             altered it"
        }
        "AuthFailure.TokenFailure" => {
            "Tencent rejected the session token: use a permanent API key (smsauth sends no token)"
        }
        "AuthFailure.UnauthorizedOperation" | "UnauthorizedOperation.RequestPermissionDeny" => {
            "the API key's CAM policy does not allow sms:SendSms"
        }
        "FailedOperation.InsufficientBalanceInSmsPackage" => {
            "the SMS package is used up: buy a package in the Tencent Cloud console"
        }
        "UnauthorizedOperation.ServiceSuspendDueToArrears"
        // Older SDK spelling of the previous code.
        | "UnauthorizedOperation.SerivceSuspendDueToArrears" => {
            "the Tencent Cloud account is suspended for arrears: top it up"
        }
        "FailedOperation.TemplateIncorrectOrUnapproved"
        | "FailedOperation.TemplateUnapprovedOrNotExist"
        | "FailedOperation.TemplateIdNotExist"
        | "FailedOperation.MissingTemplateList" => {
            "TENCENT_SMS_TEMPLATE_ID is not an approved template of this SMS application"
        }
        "FailedOperation.TemplateParamSetNotMatchApprovedTemplate" => {
            "the template must have exactly two variables: the code and its validity in minutes"
        }
        "InvalidParameterValue.TemplateParameterFormatError" => {
            "a verification-code template takes only 0-6 digits per variable: keep \
             SMS_CODE_LENGTH at 6 or less"
        }
        "InvalidParameterValue.TemplateParameterLengthLimit" => {
            "a template variable is too long for this account (6 characters on accounts \
             opened after 2024-01-25): lower SMS_CODE_LENGTH"
        }
        "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter"
        | "InvalidParameterValue.ContentLengthLimit" => {
            "the template refuses these parameters or is too long once filled: check \
             TENCENT_SMS_TEMPLATE_ID"
        }
        "FailedOperation.MarketingSendTimeConstraint"
        | "UnauthorizedOperation.IndividualUserMarketingSmsPermissionDeny" => {
            "TENCENT_SMS_TEMPLATE_ID is a marketing template: use a verification-code template"
        }
        "FailedOperation.SignatureIncorrectOrUnapproved"
        | "FailedOperation.MissingSignatureList"
        | "InvalidParameterValue.SignNameLengthTooLong" => {
            "TENCENT_SMS_SIGN_NAME is not the text of an approved signature"
        }
        "InvalidParameterValue.SdkAppIdNotExist"
        | "UnauthorizedOperation.SmsSdkAppIdVerifyFail"
        | "InvalidParameter.AppidAndBizId" => {
            "TENCENT_SMS_SDK_APP_ID does not exist or belongs to another account than the API key"
        }
        "UnauthorizedOperation.SdkAppIdIsDisabled" => {
            "the SMS application TENCENT_SMS_SDK_APP_ID is disabled"
        }
        "UnauthorizedOperation.RequestIpNotInWhitelist" => {
            "the SMS application has an IP allow-list that does not include this server"
        }
        "LimitExceeded.AppCountryOrRegionInBlacklist" => {
            "the SMS application does not allow this country/region: align the console's \
             list with SMS_ALLOWED_REGIONS"
        }
        "InvalidAction" | "NoSuchVersion" => {
            "Tencent does not know SendSms 2021-01-11 at this endpoint: check TENCENT_SMS_ENDPOINT"
        }
        "UnsupportedRegion" => "TENCENT_SMS_REGION is not a region of the SMS API",
        _ if in_family(code, "AuthFailure") => {
            "Tencent refused the API credentials: check TENCENT_SECRET_ID and TENCENT_SECRET_KEY"
        }
        _ => return None,
    })
}

/// How long one of Tencent's limits lasts, as far as the code tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    Seconds(u64),
    /// Calendar-day limits, which reset at 00:00 Beijing time.
    UntilBeijingMidnight,
}

fn rate_limit_window(code: &str) -> Option<Window> {
    Some(match code {
        "LimitExceeded.PhoneNumberThirtySecondLimit" => Window::Seconds(30),
        "LimitExceeded.PhoneNumberOneHourLimit" => Window::Seconds(3_600),
        // "A frequency limit policy" without saying which: the shortest window Tencent has.
        // A retry that comes too early gets this same answer again.
        "LimitExceeded.DeliveryFrequencyLimit" => Window::Seconds(30),
        "LimitExceeded.PhoneNumberDailyLimit"
        | "LimitExceeded.PhoneNumberSameContentDailyLimit"
        | "LimitExceeded.AppDailyLimit"
        | "LimitExceeded.AppMainlandChinaDailyLimit"
        | "LimitExceeded.AppGlobalDailyLimit"
        | "LimitExceeded.AppCountryOrRegionDailyLimit"
        | "LimitExceeded.DailyLimit" => Window::UntilBeijingMidnight,
        _ => return None,
    })
}

/// Seconds until the limit behind `code` lifts, as far as the service can tell: the
/// 30-second and one-hour windows in full, the daily ones until the next 00:00 Beijing time.
/// `Some` exactly for the [`ProviderFailure::RateLimited`] and [`ProviderFailure::AccountLimit`]
/// codes, never `Some(0)`.
#[must_use]
pub fn retry_after_secs(code: &str, now: DateTime<Utc>) -> Option<u64> {
    Some(match rate_limit_window(code)? {
        Window::Seconds(seconds) => seconds,
        Window::UntilBeijingMidnight => seconds_until_beijing_midnight(now),
    })
}

/// Beijing time is UTC+8 all year (no daylight saving time since 1991). Between 1 and 86 400;
/// a fraction of a second left counts as a whole one.
fn seconds_until_beijing_midnight(now: DateTime<Utc>) -> u64 {
    const DAY: i64 = 86_400;
    const BEIJING_OFFSET: i64 = 8 * 3_600;
    let into_beijing_day = (now.timestamp() + BEIJING_OFFSET).rem_euclid(DAY);
    (DAY - into_beijing_day).unsigned_abs()
}

/// `family` itself or one of its `family.Sub` codes.
fn in_family(code: &str, family: &str) -> bool {
    code.strip_prefix(family)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    // --- request ---

    #[test]
    fn request_serializes_to_the_bytes_of_golden_vector_1() {
        let request = SendSmsRequest {
            phone_number_set: &["+8613711112222"],
            sms_sdk_app_id: "1400006666",
            sign_name: "腾讯云",
            template_id: "1234567",
            template_param_set: &["123456", "5"],
            session_context: None,
        };
        let body = serde_json::to_vec(&request).unwrap();
        // The payload of "compact-json-default-endpoint" in shared/tencent-tc3-vectors.json.
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"PhoneNumberSet":["+8613711112222"],"SmsSdkAppId":"1400006666","SignName":"腾讯云","TemplateId":"1234567","TemplateParamSet":["123456","5"]}"#
        );
    }

    #[test]
    fn request_with_session_context_serializes_to_the_bytes_of_golden_vector_2() {
        let request = SendSmsRequest {
            phone_number_set: &["+8613711112222", "+8618511122233"],
            sms_sdk_app_id: "1400006666",
            sign_name: "腾讯云",
            template_id: "1234567",
            template_param_set: &["042917", "5"],
            session_context: Some("login:42"),
        };
        let body = serde_json::to_vec(&request).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"PhoneNumberSet":["+8613711112222","+8618511122233"],"SmsSdkAppId":"1400006666","SignName":"腾讯云","TemplateId":"1234567","TemplateParamSet":["042917","5"],"SessionContext":"login:42"}"#
        );
    }

    #[test]
    fn request_leaves_out_unset_optional_fields_instead_of_sending_null() {
        let request = SendSmsRequest {
            phone_number_set: &["+8613711112222"],
            sms_sdk_app_id: "1400006666",
            sign_name: "腾讯云",
            template_id: "1234567",
            template_param_set: &[],
            session_context: None,
        };
        let body = String::from_utf8(serde_json::to_vec(&request).unwrap()).unwrap();
        assert!(!body.contains("null"), "{body}");
        assert!(!body.contains("TemplateParamSet"), "{body}");
        assert!(!body.contains("SessionContext"), "{body}");
    }

    #[test]
    fn request_debug_hides_numbers_and_template_parameters() {
        let request = SendSmsRequest {
            phone_number_set: &["+8613711112222"],
            sms_sdk_app_id: "1400006666",
            sign_name: "腾讯云",
            template_id: "1234567",
            template_param_set: &["987654", "5"],
            session_context: None,
        };
        let printed = format!("{request:?}");
        assert!(!printed.contains("13711112222"), "{printed}");
        assert!(!printed.contains("987654"), "{printed}");
    }

    // --- responses (samples from shared/tencent-sms.md) ---

    const SUCCESS: &str = r#"{"Response": {
      "SendStatusSet": [
        {"SerialNo": "5000:1045710669157053657849499619", "PhoneNumber": "+8618511122233", "Fee": 1,
         "SessionContext": "test", "Code": "Ok", "Message": "send success", "IsoCode": "CN"}
      ],
      "RequestId": "a0aabda6-cf91-4f3e-a81f-9198114a2279"}}"#;

    const PER_NUMBER_FAILURE: &str = r#"{"Response": {"SendStatusSet": [
      {"SerialNo": "", "PhoneNumber": "+8618630087660", "Fee": 0, "SessionContext": "",
       "Code": "LimitExceeded.PhoneNumberThirtySecondLimit",
       "Message": "the number of SMS messages sent from a single mobile number within 30 seconds exceeds the upper limit",
       "IsoCode": "CN"}],
      "RequestId": "…"}}"#;

    const REQUEST_ERROR: &str = r#"{"Response": {"Error": {"Code": "AuthFailure.SignatureFailure",
      "Message": "The provided credentials could not be validated. Please check your signature is correct."},
      "RequestId": "ed93f3cb-f35e-473f-b9f3-0d451b8b79c6"}}"#;

    #[test]
    fn success_sample_reads_as_sent() {
        let response = parse_response(SUCCESS.as_bytes()).unwrap();
        assert_eq!(response.request_id, "a0aabda6-cf91-4f3e-a81f-9198114a2279");
        assert_eq!(response.error, None);
        let expected = SendStatus {
            serial_no: "5000:1045710669157053657849499619".into(),
            phone_number: "+8618511122233".into(),
            fee: 1,
            session_context: "test".into(),
            code: "Ok".into(),
            message: "send success".into(),
            iso_code: "CN".into(),
        };
        assert_eq!(response.send_status_set, vec![expected.clone()]);
        assert_eq!(response.outcome(), Outcome::Sent(&expected));
    }

    #[test]
    fn per_number_failure_sample_reads_as_refused_with_its_code() {
        let response = parse_response(PER_NUMBER_FAILURE.as_bytes()).unwrap();
        assert_eq!(response.error, None);
        assert_eq!(response.request_id, "…");
        let status = &response.send_status_set[0];
        assert_eq!((status.serial_no.as_str(), status.fee), ("", 0));
        assert_eq!(
            response.outcome(),
            Outcome::Refused {
                code: "LimitExceeded.PhoneNumberThirtySecondLimit",
                message: "the number of SMS messages sent from a single mobile number within 30 seconds exceeds the upper limit",
            }
        );
    }

    #[test]
    fn request_error_sample_reads_as_refused_with_the_error_code() {
        let response = parse_response(REQUEST_ERROR.as_bytes()).unwrap();
        assert_eq!(response.request_id, "ed93f3cb-f35e-473f-b9f3-0d451b8b79c6");
        assert!(response.send_status_set.is_empty());
        assert_eq!(
            response.outcome(),
            Outcome::Refused {
                code: "AuthFailure.SignatureFailure",
                message: "The provided credentials could not be validated. Please check your signature is correct.",
            }
        );
    }

    #[test]
    fn a_refused_number_after_an_accepted_one_is_still_refused() {
        let body = r#"{"Response": {"RequestId": "r", "SendStatusSet": [
            {"Code": "Ok", "PhoneNumber": "+8613711112222"},
            {"Code": "InvalidParameterValue.IncorrectPhoneNumber", "Message": "bad"}]}}"#;
        let response = parse_response(body.as_bytes()).unwrap();
        assert_eq!(
            response.outcome(),
            Outcome::Refused {
                code: "InvalidParameterValue.IncorrectPhoneNumber",
                message: "bad"
            }
        );
    }

    #[test]
    fn missing_nulls_and_unknown_fields_are_tolerated() {
        let body = r#"{"Response": {"RequestId": null, "NewField": 1, "SendStatusSet": [
            {"Code": "Ok", "Fee": null, "SerialNo": null, "Extra": {"a": 1}}]}}"#;
        let response = parse_response(body.as_bytes()).unwrap();
        assert_eq!(response.request_id, "");
        let status = &response.send_status_set[0];
        assert_eq!(
            (status.code.as_str(), status.fee, status.serial_no.as_str()),
            ("Ok", 0, "")
        );
        assert!(matches!(response.outcome(), Outcome::Sent(_)));
    }

    #[test]
    fn no_error_and_no_status_is_malformed() {
        for body in [
            r#"{"Response": {"RequestId": "r"}}"#,
            r#"{"Response": {"RequestId": "r", "SendStatusSet": []}}"#,
            r#"{"Response": {"RequestId": "r", "SendStatusSet": null, "Error": null}}"#,
        ] {
            let response = parse_response(body.as_bytes()).unwrap();
            assert_eq!(response.outcome(), Outcome::Malformed, "{body}");
        }
    }

    #[test]
    fn bodies_that_are_not_tencent_json_are_errors() {
        for body in [
            "<html>502 Bad Gateway</html>",
            r#"{"Response": {"Reque"#,
            "{}",
            "",
        ] {
            assert!(parse_response(body.as_bytes()).is_err(), "{body}");
        }
    }

    // --- classification ---

    const RATE_LIMITED: &[&str] = &[
        "LimitExceeded.PhoneNumberThirtySecondLimit",
        "LimitExceeded.PhoneNumberOneHourLimit",
        "LimitExceeded.PhoneNumberDailyLimit",
        "LimitExceeded.PhoneNumberSameContentDailyLimit",
        "LimitExceeded.DeliveryFrequencyLimit",
    ];

    const ACCOUNT_LIMIT: &[&str] = &[
        "LimitExceeded.AppDailyLimit",
        "LimitExceeded.AppMainlandChinaDailyLimit",
        "LimitExceeded.AppGlobalDailyLimit",
        "LimitExceeded.AppCountryOrRegionDailyLimit",
        "LimitExceeded.DailyLimit",
    ];

    const INVALID_NUMBER: &[&str] = &[
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberParseFail",
        "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.PhoneNumberOnBlacklist",
        "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
        "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone",
        "UnsupportedOperation.GlobalTemplateToChineseMainlandPhone",
        "UnsupportedOperation.UnsupportedRegion",
        "UnsupportedOperation.UnsuportedRegion",
    ];

    const MISCONFIGURED: &[&str] = &[
        "AuthFailure.SignatureFailure",
        "AuthFailure.SignatureExpire",
        "AuthFailure.SecretIdNotFound",
        "AuthFailure.InvalidSecretId",
        "AuthFailure.InvalidAuthorization",
        "AuthFailure.TokenFailure",
        "AuthFailure.UnauthorizedOperation",
        "AuthFailure.MFAFailure",
        "AuthFailure",
        "InternalError.RequestTimeException",
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "UnauthorizedOperation.ServiceSuspendDueToArrears",
        "UnauthorizedOperation.SerivceSuspendDueToArrears",
        "FailedOperation.TemplateIncorrectOrUnapproved",
        "FailedOperation.TemplateUnapprovedOrNotExist",
        "FailedOperation.TemplateIdNotExist",
        "FailedOperation.MissingTemplateList",
        "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
        "FailedOperation.SignatureIncorrectOrUnapproved",
        "FailedOperation.MissingSignatureList",
        "FailedOperation.MarketingSendTimeConstraint",
        "InvalidParameterValue.TemplateParameterFormatError",
        "InvalidParameterValue.TemplateParameterLengthLimit",
        "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
        "InvalidParameterValue.ContentLengthLimit",
        "InvalidParameterValue.SignNameLengthTooLong",
        "InvalidParameterValue.SdkAppIdNotExist",
        "InvalidParameter.AppidAndBizId",
        "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
        "UnauthorizedOperation.SdkAppIdIsDisabled",
        "UnauthorizedOperation.RequestIpNotInWhitelist",
        "UnauthorizedOperation.RequestPermissionDeny",
        "UnauthorizedOperation.IndividualUserMarketingSmsPermissionDeny",
        "LimitExceeded.AppCountryOrRegionInBlacklist",
        "InvalidAction",
        "NoSuchVersion",
        "UnsupportedRegion",
    ];

    const UNAVAILABLE: &[&str] = &[
        "InternalError",
        "InternalError.Timeout",
        "InternalError.SendAndRecvFail",
        "InternalError.OtherError",
        "InternalError.UnknownError",
        "InternalError.ParseBackendResponseFail",
        "RequestLimitExceeded",
        "RequestLimitExceeded.UinLimitExceeded",
        "ResourceUnavailable",
    ];

    const OTHER: &[&str] = &[
        "LimitExceeded.PhoneNumberCountLimit",
        "MissingParameter",
        "MissingParameter.EmptyPhoneNumberSet",
        "InvalidParameter",
        "InvalidParameterValue",
        "UnknownParameter",
        "FailedOperation.ContainSensitiveWord",
        "FailedOperation.JsonParseFail",
        "FailedOperation.FailResolvePacket",
        "InternalError.JsonParseFail",
        "InternalError.RestApiInterfaceNotExist",
        "FailedOperation",
        "UnsupportedOperation",
        "Ok",
        "",
        "SomethingNew.NeverSeenBefore",
        "AuthFailureX",
        "InternalErrorish",
    ];

    #[test]
    fn every_listed_code_is_classified() {
        let tables = [
            (RATE_LIMITED, ProviderFailure::RateLimited),
            (ACCOUNT_LIMIT, ProviderFailure::AccountLimit),
            (INVALID_NUMBER, ProviderFailure::InvalidNumber),
            (MISCONFIGURED, ProviderFailure::Misconfigured),
            (UNAVAILABLE, ProviderFailure::Unavailable),
            (OTHER, ProviderFailure::Other),
        ];
        for (codes, expected) in tables {
            for code in codes {
                assert_eq!(classify(code), expected, "{code}");
            }
        }
    }

    #[test]
    fn every_misconfigured_code_has_an_operator_hint() {
        for code in MISCONFIGURED {
            let hint = operator_hint(code).unwrap_or_else(|| panic!("no hint for {code}"));
            assert!(!hint.is_empty() && hint.len() < 200, "{code}: {hint}");
        }
    }

    #[test]
    fn per_user_and_transient_codes_have_no_operator_hint() {
        for code in [
            "LimitExceeded.PhoneNumberThirtySecondLimit",
            "LimitExceeded.PhoneNumberDailyLimit",
            "InvalidParameterValue.IncorrectPhoneNumber",
            "FailedOperation.PhoneNumberInBlacklist",
            "InternalError.Timeout",
            "RequestLimitExceeded",
            "Ok",
        ] {
            assert_eq!(operator_hint(code), None, "{code}");
        }
    }

    #[test]
    fn account_wide_daily_caps_are_account_limits_that_alert_the_operator() {
        for code in ACCOUNT_LIMIT {
            assert_eq!(classify(code), ProviderFailure::AccountLimit, "{code}");
            assert!(operator_hint(code).is_some(), "{code}");
        }
    }

    // --- retry after ---

    #[test]
    fn retry_after_is_given_exactly_for_rate_limited_codes() {
        let now = utc(2025, 3, 1, 12, 0, 0);
        for code in RATE_LIMITED.iter().chain(ACCOUNT_LIMIT) {
            assert!(retry_after_secs(code, now).is_some_and(|s| s > 0), "{code}");
        }
        for code in INVALID_NUMBER
            .iter()
            .chain(MISCONFIGURED)
            .chain(UNAVAILABLE)
            .chain(OTHER)
        {
            assert_eq!(retry_after_secs(code, now), None, "{code}");
        }
    }

    #[test]
    fn short_windows_last_their_full_length() {
        let now = utc(2025, 3, 1, 15, 59, 59);
        let retry = |code| retry_after_secs(code, now);
        assert_eq!(
            retry("LimitExceeded.PhoneNumberThirtySecondLimit"),
            Some(30)
        );
        assert_eq!(retry("LimitExceeded.PhoneNumberOneHourLimit"), Some(3_600));
        assert_eq!(retry("LimitExceeded.DeliveryFrequencyLimit"), Some(30));
    }

    #[test]
    fn daily_limits_lift_at_midnight_beijing_time() {
        let daily = |now| retry_after_secs("LimitExceeded.PhoneNumberDailyLimit", now);
        // 16:00 UTC is 00:00 in Beijing.
        assert_eq!(daily(utc(2025, 3, 1, 15, 59, 59)), Some(1));
        assert_eq!(daily(utc(2025, 3, 1, 16, 0, 0)), Some(86_400));
        assert_eq!(daily(utc(2025, 3, 1, 16, 0, 1)), Some(86_399));
        // Midnight UTC is 08:00 in Beijing: 16 hours to go, not 24.
        assert_eq!(daily(utc(2025, 3, 2, 0, 0, 0)), Some(16 * 3_600));
        // Across a year end and a leap day.
        assert_eq!(daily(utc(2024, 12, 31, 23, 59, 59)), Some(16 * 3_600 + 1));
        assert_eq!(daily(utc(2024, 2, 28, 16, 30, 0)), Some(86_400 - 1_800));
        // Before 1970 too (negative timestamps).
        assert_eq!(daily(utc(1969, 12, 31, 15, 0, 0)), Some(3_600));
    }

    #[test]
    fn a_fraction_of_a_second_before_midnight_counts_as_one_second() {
        let now = utc(2025, 3, 1, 15, 59, 59) + chrono::TimeDelta::milliseconds(999);
        assert_eq!(
            retry_after_secs("LimitExceeded.PhoneNumberSameContentDailyLimit", now),
            Some(1)
        );
    }

    #[test]
    fn every_daily_code_waits_for_beijing_midnight() {
        let now = utc(2025, 3, 1, 4, 0, 0); // 12:00 in Beijing
        for code in RATE_LIMITED
            .iter()
            .chain(ACCOUNT_LIMIT)
            .filter(|c| c.contains("Daily"))
        {
            assert_eq!(retry_after_secs(code, now), Some(12 * 3_600), "{code}");
        }
    }
}

//! The only place where an `AppError` or a `RequestError` becomes a GraphQL
//! error: the contract's `extensions.code`, plus its extras (`field`,
//! `reason`, `retryAfter`, `attemptsLeft`, `providerCode`). Internal causes are logged
//! here and never sent.
//!
//! Each error is raised with its message in English and keeps it in every
//! language (`messages`) as its `source`, which is never sent; the transport,
//! which knows the client's language, then calls [`localize`]. The
//! extensions are made here, once, whatever the language.

use std::sync::Arc;

use async_graphql::{ErrorExtensionValues, Response, ServerError};

use crate::error::{AppError, INTERNAL_SERVER_ERROR, RequestError, retry_after_secs};
use crate::messages::{self, Language, RequestProblem, Text};

/// What smsauth keeps with each error it raises, as the error's `source`:
/// its message in every language and, for a request-level error, which one.
struct Raised {
    text: Text,
    request: Option<RequestError>,
}

/// Writes every error message of `response` in `language`. Messages that
/// smsauth did not write (async-graphql's own) are quoted by
/// [`messages::quoted`].
pub fn localize(response: &mut Response, language: Language) {
    for error in &mut response.errors {
        let message = match error.source::<Raised>() {
            Some(raised) => raised.text.in_language(language).to_owned(),
            None if language == Language::English => continue,
            None => {
                let code = match error.extensions.as_ref().and_then(|e| e.get("code")) {
                    Some(async_graphql::Value::String(code)) => code.clone(),
                    _ => INTERNAL_SERVER_ERROR.to_owned(),
                };
                messages::quoted(&code, &error.message)
                    .in_language(language)
                    .to_owned()
            }
        };
        error.message = message;
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(error: AppError) -> Self {
        error.log();
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", error.code());
        match &error {
            AppError::BadUserInput(invalid) => extensions.set("field", invalid.field),
            AppError::InvalidCode {
                attempts_left: Some(left),
            } => extensions.set("attemptsLeft", *left),
            AppError::RateLimited {
                reason,
                retry_after,
                provider_code,
            } => {
                extensions.set("reason", reason.as_str());
                extensions.set("retryAfter", retry_after_secs(*retry_after));
                if let Some(code) = provider_code {
                    extensions.set("providerCode", code.as_str());
                }
            }
            AppError::SmsDeliveryFailed { provider_code } => {
                extensions.set("providerCode", provider_code.as_str())
            }
            _ => {}
        }
        let text = messages::app_error(&error);
        async_graphql::Error {
            message: text.english().to_owned(),
            source: Some(Arc::new(Raised {
                text,
                request: None,
            })),
            extensions: Some(extensions),
        }
    }
}

impl From<crate::domain::InvalidInput> for async_graphql::Error {
    fn from(invalid: crate::domain::InvalidInput) -> Self {
        AppError::BadUserInput(invalid).into()
    }
}

impl RequestError {
    /// A new request-level error about this problem.
    pub fn error(self, problem: RequestProblem) -> ServerError {
        let text = messages::request_problem(&problem);
        self.mark(ServerError::new(text.english(), None), text)
    }

    /// Marks an error (usually async-graphql's own) as this request-level
    /// error: its code unless it already has one, and the variant itself in
    /// the error's source, so the transport can match on it.
    pub fn tag(self, error: ServerError) -> ServerError {
        let text = messages::quoted(self.code(), &error.message);
        self.mark(error, text)
    }

    fn mark(self, mut error: ServerError, text: Text) -> ServerError {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", self.code());
        }
        error.source = Some(Arc::new(Raised {
            text,
            request: Some(self),
        }));
        error
    }

    /// A parse error of async-graphql's parser as the client sees it: its
    /// multi-line picture of the document becomes one line.
    pub fn parse_failed(mut error: ServerError) -> ServerError {
        let reason = error
            .message
            .lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix("= "))
            .map(str::to_owned);
        if let Some(reason) = reason {
            error.message = match error.locations.first() {
                Some(at) => format!("Syntax error at {}:{}: {reason}", at.line, at.column),
                None => format!("Syntax error: {reason}"),
            };
        } else if error.message.contains('\n') {
            error.message = error
                .message
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
        }
        Self::ParseFailed.tag(error)
    }

    /// The request-level error this response error is, if it is one.
    pub fn of(error: &ServerError) -> Option<Self> {
        error.source::<Raised>().and_then(|raised| raised.request)
    }
}

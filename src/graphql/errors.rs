//! The only place where an `AppError` or a `RequestError` becomes a GraphQL
//! error: the contract's `extensions.code`, plus its extras (`field`,
//! `reason`, `retryAfter`, `attemptsLeft`, `providerCode`). Internal causes are logged
//! here and never sent.

use async_graphql::{ErrorExtensionValues, ServerError};

use crate::error::{AppError, RequestError, retry_after_secs};

impl From<AppError> for async_graphql::Error {
    fn from(error: AppError) -> Self {
        match &error {
            AppError::Internal(_) => tracing::error!(error = ?error, "internal error"),
            AppError::ServiceUnavailable { .. } => {
                tracing::warn!(error = ?error, "dependency unavailable")
            }
            _ => tracing::debug!(error = ?error, "request refused"),
        }
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
        async_graphql::Error {
            message: error.message(),
            source: None,
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
    /// A new request-level error with this message.
    pub fn error(self, message: impl Into<String>) -> ServerError {
        self.tag(ServerError::new(message, None))
    }

    /// Marks an error (usually async-graphql's own) as this request-level
    /// error: its code unless it already has one, and the variant itself as
    /// the error's source, so the transport can match on it.
    pub fn tag(self, mut error: ServerError) -> ServerError {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", self.code());
        }
        error.source = Some(std::sync::Arc::new(self));
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
        error.source::<Self>().copied()
    }
}

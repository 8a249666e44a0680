//! Domain types that parse, not validate: a value of one of these types is
//! known to be well-formed, so services never see raw strings.

mod account;
mod email;
mod mobile;
mod password;
mod sms_code;
mod user_id;
mod username;

pub use account::Account;
pub use email::Email;
pub use mobile::{CANNOT_RECEIVE_SMS, Mobile, Region};
pub use password::Password;
pub use sms_code::{SmsCode, SmsPurpose};
pub use user_id::UserId;
pub use username::Username;

/// Why an input was refused. `field` names the value the way the domain does
/// (`mobile`, `password`, ...); the transport renames it to the argument it
/// read the value from when that differs (see `AppError::in_argument`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidInput {
    pub field: &'static str,
    pub reason: InvalidReason,
}

impl InvalidInput {
    pub const fn new(field: &'static str, reason: InvalidReason) -> Self {
        Self { field, reason }
    }
}

/// What is wrong with an input. The words people read, in each language,
/// are in the message table (the `messages` module), not here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidReason {
    NotAMobile,
    CannotReceiveSms,
    NotACode,
    NotAUsername,
    NotAnAccount,
    NotAnEmail,
    NotAUserId,
    NotARefreshToken,
    PasswordLength,
    PasswordLikeAccount,
    PasswordTooLong,
}

impl InvalidReason {
    /// Every reason, for the tests of the message table.
    pub const ALL: [Self; 11] = [
        Self::NotAMobile,
        Self::CannotReceiveSms,
        Self::NotACode,
        Self::NotAUsername,
        Self::NotAnAccount,
        Self::NotAnEmail,
        Self::NotAUserId,
        Self::NotARefreshToken,
        Self::PasswordLength,
        Self::PasswordLikeAccount,
        Self::PasswordTooLong,
    ];
}

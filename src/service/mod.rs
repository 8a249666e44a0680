//! The service layer: what each operation does, independent of GraphQL.
//! Resolvers parse their arguments into domain types and call one function here.

pub mod accounts;
pub mod legacy_passwords;
pub mod operator;
pub mod sessions;
pub mod sms_budget;
pub mod sms_codes;
pub mod sms_guard;
pub mod throttle;
pub mod user_view;

//! SeaORM entities, one per table.

pub mod refresh_tokens;
pub mod sms_messages;
pub mod users;

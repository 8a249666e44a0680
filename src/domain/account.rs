//! A login `account` as typed by a person: a username, a mobile or an email.

use super::{Email, InvalidInput, InvalidReason, Mobile, Region, Username};

/// A login `account`: which column it names is decided by its shape alone,
/// which is never ambiguous (usernames start with a letter and have no `@`).
#[derive(Debug)]
pub enum Account {
    Username(Username),
    Mobile(Mobile),
    Email(Email),
    /// Well-formed as input, but no account could have this name.
    Unknown,
}

impl Account {
    pub fn parse(input: &str, default_region: Region) -> Result<Self, InvalidInput> {
        let input = input.trim();
        if input.is_empty() || input.len() > 254 {
            return Err(InvalidInput::new("account", InvalidReason::NotAnAccount));
        }
        Ok(if input.contains('@') {
            Email::parse(input).map_or(Self::Unknown, Self::Email)
        } else if let Ok(name) = Username::parse(input) {
            Self::Username(name)
        } else {
            Mobile::parse(input, default_region).map_or(Self::Unknown, Self::Mobile)
        })
    }
}

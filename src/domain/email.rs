//! An email address: one `@`, a plausible local part and domain, at most 254
//! characters. Kept as written; compared without regard to case.

use std::fmt;

use super::{InvalidInput, InvalidReason};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        const BAD: InvalidInput = InvalidInput::new("email", InvalidReason::NotAnEmail);
        let input = input.trim();
        if input.len() > 254 || input.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(BAD);
        }
        let (local, domain) = input.split_once('@').ok_or(BAD)?;
        let domain_ok = domain.contains('.')
            && !domain.contains('@')
            && domain
                .split('.')
                .all(|label| !label.is_empty() && label.len() <= 63);
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(BAD);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        assert!(Email::parse("ada@example.com").is_ok());
        assert!(Email::parse("Ada.Lovelace+x@mail.example.org").is_ok());
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a@b@c.d",
            "a b@c.d",
            "a@b..c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }
}

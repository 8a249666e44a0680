//! Usernames: 3 to 32 of `A–Z a–z 0–9 _ . -`, starting with a letter. They
//! can never look like a mobile or an email, so a login `account` is never
//! ambiguous. Uniqueness ignores case (the database enforces it on `lower()`).

use std::fmt;

use super::{InvalidInput, InvalidReason};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        const BAD: InvalidInput = InvalidInput::new("username", InvalidReason::NotAUsername);
        let mut chars = input.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if starts_with_letter && rest_ok && (3..=32).contains(&input.len()) {
            Ok(Self(input.to_owned()))
        } else {
            Err(BAD)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["abc", "Alice_01", "bob.smith", "x-y-z", &"a".repeat(32)] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_the_rest() {
        for bad in [
            "",
            "ab",
            "1abc",
            "_abc",
            "a b",
            "a@b.c",
            "ålice",
            "abc\u{0}",
            "abc\n",
            &"a".repeat(33),
            "13711112222",
            "+8613711112222",
            "Ａbc",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn a_username_never_parses_as_a_mobile(s in "[A-Za-z][A-Za-z0-9_.-]{2,31}") {
            let name = Username::parse(&s).unwrap();
            prop_assert!(crate::domain::Mobile::parse(name.as_str(), crate::domain::Region::CN).is_err());
            prop_assert!(!name.as_str().contains('@'));
        }
    }
}

//! One-time SMS codes: random digits from a CSPRNG, and what they are for.

use std::fmt;

use rand::RngExt;

use super::{InvalidInput, InvalidReason};

/// What a code may be used for; a code works for its own purpose only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SmsPurpose {
    Register,
    Login,
    ResetPassword,
}

impl SmsPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "REGISTER",
            Self::Login => "LOGIN",
            Self::ResetPassword => "RESET_PASSWORD",
        }
    }
}

/// A code of `SMS_CODE_LENGTH` ASCII digits. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsCode(String);

impl SmsCode {
    /// A fresh code from the thread-local CSPRNG (ChaCha, seeded by the OS).
    pub fn generate(length: usize) -> Self {
        let mut rng = rand::rng();
        Self(
            (0..length)
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect(),
        )
    }

    /// A code as the user typed it: exactly `length` ASCII digits after trimming.
    pub fn parse(input: &str, length: usize) -> Result<Self, InvalidInput> {
        let input = input.trim();
        if input.len() == length && input.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(input.to_owned()))
        } else {
            Err(InvalidInput::new("code", InvalidReason::NotACode))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SmsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmsCode([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_have_the_length_and_vary() {
        let codes: std::collections::HashSet<String> =
            (0..200).map(|_| SmsCode::generate(6).0).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        assert!(codes.len() > 190, "codes repeat too often: {}", codes.len());
    }

    #[test]
    fn parse_takes_exact_digits_only() {
        assert!(SmsCode::parse("123456", 6).is_ok());
        assert!(SmsCode::parse(" 123456 ", 6).is_ok());
        for bad in ["12345", "1234567", "12345a", "１２３４５６", "", "12 456"] {
            assert!(SmsCode::parse(bad, 6).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_the_code() {
        assert!(
            !format!("{:?}", SmsCode::generate(6))
                .chars()
                .any(|c| c.is_ascii_digit())
        );
    }
}

//! A new password that meets the contract's policy: 8 to 128 characters, not
//! equal to the mobile or the username. Its `Debug` never shows the text.

use secrecy::{ExposeSecret, SecretString};

use super::{InvalidInput, InvalidReason, Mobile, Username};

pub struct Password(SecretString);

impl Password {
    /// Checks the policy for a password being set (registration or reset).
    pub fn parse(
        input: &str,
        mobile: &Mobile,
        username: Option<&Username>,
    ) -> Result<Self, InvalidInput> {
        Self::check_length(input)?;
        let national = mobile.as_str().trim_start_matches('+');
        let same_as_mobile = input == mobile.as_str()
            || input == national
            || Mobile::parse(input, mobile.region().unwrap_or(super::Region::CN))
                .is_ok_and(|m| &m == mobile);
        let same_as_username =
            username.is_some_and(|name| name.as_str().eq_ignore_ascii_case(input));
        if same_as_mobile || same_as_username {
            return Err(InvalidInput::new(
                "password",
                InvalidReason::PasswordLikeAccount,
            ));
        }
        Ok(Self(SecretString::from(input)))
    }

    /// The length rule alone (8 to 128 characters), for checking input before
    /// the mobile and username it is compared with are known.
    pub fn check_length(input: &str) -> Result<(), InvalidInput> {
        if (8..=128).contains(&input.chars().count()) {
            Ok(())
        } else {
            Err(InvalidInput::new("password", InvalidReason::PasswordLength))
        }
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::Region;

    fn mobile() -> Mobile {
        Mobile::parse("13711112222", Region::CN).unwrap()
    }

    #[test]
    fn enforces_length() {
        assert!(Password::parse("short", &mobile(), None).is_err());
        assert!(Password::parse(&"x".repeat(129), &mobile(), None).is_err());
        assert!(Password::parse("long enough", &mobile(), None).is_ok());
        // Counted in characters, not bytes.
        assert!(Password::parse("密码密码密码密码", &mobile(), None).is_ok());
    }

    #[test]
    fn refuses_the_mobile_or_username() {
        let name = Username::parse("alice_01").unwrap();
        for same in ["13711112222", "+8613711112222", "8613711112222", "ALICE_01"] {
            assert!(
                Password::parse(same, &mobile(), Some(&name)).is_err(),
                "{same}"
            );
        }
    }

    #[test]
    fn debug_hides_the_text() {
        let p = Password::parse("correct horse", &mobile(), None).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}

//! `JWT_ALGORITHM` and its key files (`JWT_PRIVATE_KEY_FILE`,
//! `JWT_VERIFY_KEY_FILES`), read and checked once at start.

use std::sync::Arc;

use super::{ConfigError, Env};
use crate::auth::{AsymmetricAlgorithm, KeyProblem, SigningKeys};

/// How access tokens are signed.
#[derive(Clone, Debug)]
pub enum JwtSigning {
    /// HS256 with `JWT_SECRET` (the v1 default).
    Hs256,
    /// EdDSA or ES256 with the loaded keys.
    Asymmetric(Arc<SigningKeys>),
}

/// No PEM key is anywhere near this large; a bigger file is a wrong path.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

pub(super) fn jwt_signing(env: &Env) -> Result<JwtSigning, ConfigError> {
    const ALGORITHM: &str = "JWT_ALGORITHM";
    const PRIVATE: &str = "JWT_PRIVATE_KEY_FILE";
    const VERIFY: &str = "JWT_VERIFY_KEY_FILES";
    let algorithm = env.var_with(ALGORITHM, |raw| match raw.to_ascii_uppercase().as_str() {
        "HS256" => Ok(None),
        "EDDSA" => Ok(Some(AsymmetricAlgorithm::EdDsa)),
        "ES256" => Ok(Some(AsymmetricAlgorithm::Es256)),
        _ => Err(format!("expected HS256, EdDSA or ES256, got {raw:?}")),
    })?;
    let Some(algorithm) = algorithm else {
        // Key files with HS256 are a half-done switch; say so rather than ignore them.
        for key in [PRIVATE, VERIFY] {
            if env.var(key)?.is_some() {
                return Err(ConfigError::new(
                    key,
                    "is set, but JWT_ALGORITHM is HS256; set JWT_ALGORITHM=EdDSA or ES256",
                ));
            }
        }
        return Ok(JwtSigning::Hs256);
    };
    let private_path = env.required_var(PRIVATE)?;
    let private_pem =
        read_key_file(&private_path).map_err(|problem| ConfigError::new(PRIVATE, problem))?;
    let verify_pems = env
        .list(VERIFY)?
        .into_iter()
        .map(|path| {
            let pem = read_key_file(&path).map_err(|problem| ConfigError::new(VERIFY, problem))?;
            Ok((path, pem))
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    SigningKeys::from_pem(algorithm, &private_pem, &verify_pems)
        .map(|keys| JwtSigning::Asymmetric(Arc::new(keys)))
        .map_err(|problem| match problem {
            KeyProblem::PrivateKey(problem) => {
                ConfigError::new(PRIVATE, format!("{private_path} {problem}"))
            }
            KeyProblem::VerifyKey(problem) => ConfigError::new(VERIFY, problem),
        })
}

fn read_key_file(path: &str) -> Result<String, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {path}: {e}"))?
        .len();
    if size > MAX_KEY_FILE_BYTES {
        return Err(format!(
            "{path} is {size} bytes; a PEM key is a few hundred"
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::auth::signing_keys::tests::key_pair;

    fn temp_file(contents: &str) -> String {
        let path = std::env::temp_dir().join(format!("smsauth-key-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    fn problem(pairs: &[(&str, &str)]) -> ConfigError {
        jwt_signing(&Env::from_pairs(pairs)).err().unwrap()
    }

    #[test]
    fn hs256_is_the_default() {
        assert!(matches!(
            jwt_signing(&Env::from_pairs(&[])).unwrap(),
            JwtSigning::Hs256
        ));
    }

    #[test]
    fn keys_load_in_either_spelling_of_the_algorithm() {
        let (private, public) = key_pair(AsymmetricAlgorithm::EdDsa);
        let (private, public) = (temp_file(&private), temp_file(&public));
        for name in ["EdDSA", "eddsa"] {
            let signing = jwt_signing(&Env::from_pairs(&[
                ("JWT_ALGORITHM", name),
                ("JWT_PRIVATE_KEY_FILE", &private),
                ("JWT_VERIFY_KEY_FILES", &format!("{public}, {public}")),
            ]))
            .unwrap();
            let JwtSigning::Asymmetric(keys) = signing else {
                panic!("EdDSA gives keys")
            };
            assert_eq!(keys.jwks().keys.len(), 1, "the signing key is listed once");
        }
    }

    #[test]
    fn each_problem_names_its_variable() {
        let (ed_private, ed_public) = key_pair(AsymmetricAlgorithm::EdDsa);
        let (ed_private, ed_public) = (temp_file(&ed_private), temp_file(&ed_public));
        let (ec_private, _) = key_pair(AsymmetricAlgorithm::Es256);
        let ec_private = temp_file(&ec_private);
        let missing = "/nonexistent/smsauth/key.pem";
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("JWT_ALGORITHM", "RS256")], "JWT_ALGORITHM"),
            (&[("JWT_ALGORITHM", "none")], "JWT_ALGORITHM"),
            (&[("JWT_ALGORITHM", "EdDSA")], "JWT_PRIVATE_KEY_FILE"),
            (
                &[
                    ("JWT_ALGORITHM", "EdDSA"),
                    ("JWT_PRIVATE_KEY_FILE", missing),
                ],
                "JWT_PRIVATE_KEY_FILE",
            ),
            (
                &[
                    ("JWT_ALGORITHM", "ES256"),
                    ("JWT_PRIVATE_KEY_FILE", &ed_private),
                ],
                "JWT_PRIVATE_KEY_FILE",
            ),
            (
                &[
                    ("JWT_ALGORITHM", "EdDSA"),
                    ("JWT_PRIVATE_KEY_FILE", &ed_public),
                ],
                "JWT_PRIVATE_KEY_FILE",
            ),
            (
                &[
                    ("JWT_ALGORITHM", "EdDSA"),
                    ("JWT_PRIVATE_KEY_FILE", &ed_private),
                    ("JWT_VERIFY_KEY_FILES", missing),
                ],
                "JWT_VERIFY_KEY_FILES",
            ),
            (
                &[
                    ("JWT_ALGORITHM", "EdDSA"),
                    ("JWT_PRIVATE_KEY_FILE", &ed_private),
                    ("JWT_VERIFY_KEY_FILES", &ec_private),
                ],
                "JWT_VERIFY_KEY_FILES",
            ),
            (
                &[("JWT_PRIVATE_KEY_FILE", &ed_private)],
                "JWT_PRIVATE_KEY_FILE",
            ),
            (
                &[("JWT_VERIFY_KEY_FILES", &ed_public)],
                "JWT_VERIFY_KEY_FILES",
            ),
        ];
        for (pairs, key) in cases {
            let error = problem(pairs);
            assert_eq!(error.key, *key, "{pairs:?}: {error}");
        }
        // The message says which file, not what is in it.
        let error = problem(&[
            ("JWT_ALGORITHM", "ES256"),
            ("JWT_PRIVATE_KEY_FILE", &ed_private),
        ]);
        assert!(error.to_string().contains(&ed_private), "{error}");
        assert!(!error.to_string().contains("PRIVATE KEY-----"), "{error}");
    }

    #[test]
    fn a_huge_file_is_refused_unread() {
        let path = temp_file(&"x".repeat(100 * 1024));
        let error = problem(&[("JWT_ALGORITHM", "EdDSA"), ("JWT_PRIVATE_KEY_FILE", &path)]);
        assert_eq!(error.key, "JWT_PRIVATE_KEY_FILE");
    }
}

//! Serde helpers for reading provider answers, which are lenient about `null`.

use serde::{Deserialize, Deserializer};

/// Reads `null` (as well as a missing field, with `#[serde(default)]`) as the default value.
///
/// # Errors
///
/// When the value is present, not `null`, and not a `T`.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

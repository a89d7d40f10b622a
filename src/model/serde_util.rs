//! Small serde helpers for the tolerant reading the protocol asks for: `null` where a list or
//! object is expected reads as empty.

use serde::{Deserialize, Deserializer};

/// Reads `null` as `T::default()`.
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

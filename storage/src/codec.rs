//! The one place that knows the binary encoding of stored records (bincode 2.0.1,
//! pinned: bincode 3.0 is a compile_error stub and the project is unmaintained).
//! Replacing the codec means changing this file and nothing else.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, StorageError};

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_variable_int_encoding()
}

/// Encodes a record for storage.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, config())
        .map_err(|e| StorageError::Corrupt(format!("cannot encode record: {e}")))
}

/// Decodes a stored record; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| StorageError::Corrupt(format!("cannot decode record: {e}")))?;
    if read != bytes.len() {
        return Err(StorageError::Corrupt(format!(
            "record has {} trailing bytes",
            bytes.len() - read
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_trailing_bytes() {
        let v = (7u64, String::from("x"), vec![1.5f32, -2.0]);
        let mut bytes = encode(&v).unwrap();
        let back: (u64, String, Vec<f32>) = decode(&bytes).unwrap();
        assert_eq!(back, v);
        bytes.push(0);
        assert!(decode::<(u64, String, Vec<f32>)>(&bytes).is_err());
    }
}

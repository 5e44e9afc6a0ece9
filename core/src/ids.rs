//! User ids.

use std::fmt;

/// A user id: 32 hex chars on SQL backends, a 24-hex ObjectId on Mongo. Opaque to the core.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub String);

impl UserId {
    /// A new uuid4 in the 32-char hex form regstack 0.9.3 stores, from 16 random bytes.
    pub fn uuid4_hex(mut bytes: [u8; 16]) -> Self {
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Self(crate::hex::encode(&bytes))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[regstack_macros::dual_test]
    fn uuid4_hex_sets_version_bits() {
        let id = UserId::uuid4_hex([0xff; 16]);
        assert_eq!(id.as_str().len(), 32);
        assert_eq!(&id.as_str()[12..13], "4");
        assert!(matches!(&id.as_str()[16..17], "8" | "9" | "a" | "b"));
    }
}

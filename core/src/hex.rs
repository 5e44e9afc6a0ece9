//! The one hex codec: identity headers, relay signatures and nonces, ids, hashes at rest.

/// Lower-case hex of a byte string.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// The bytes of a hex string (either case), or `None` if it is not exactly hex digits.
/// (`u8::from_str_radix` would also take a sign, so one signature would have several spellings.)
pub fn decode(s: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[regstack_macros::dual_test]
    fn round_trips_and_decodes_only_digits() {
        let bytes = [0x00, 0x0f, 0xa5, 0xff];
        assert_eq!(encode(&bytes), "000fa5ff");
        assert_eq!(decode("000fa5ff").unwrap(), bytes);
        assert_eq!(decode("000FA5FF").unwrap(), bytes);
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
        for bad in ["0", "+f", "-1", "0g", " 1", "é0"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}

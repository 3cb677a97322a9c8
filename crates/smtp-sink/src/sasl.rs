//! The two SASL mechanisms the sink understands (PLAIN and LOGIN), and the base64 they use.

/// Decodes standard base64 (with or without padding). `None` on any other character.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(byte: u8) -> Option<u32> {
        match byte {
            b'A'..=b'Z' => Some(u32::from(byte - b'A')),
            b'a'..=b'z' => Some(u32::from(byte - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(byte - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let digits = text.trim().trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut bits = 0u32;
        for (i, &byte) in chunk.iter().enumerate() {
            bits |= value(byte)? << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// Splits a decoded `AUTH PLAIN` payload (`authzid NUL authcid NUL password`) into the
/// user name and password.
pub(crate) fn split_plain(payload: &[u8]) -> Option<(String, String)> {
    let mut parts = payload.split(|&b| b == 0);
    let _authorization = parts.next()?;
    let username = parts.next()?;
    let password = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    Some((
        String::from_utf8_lossy(username).into_owned(),
        String::from_utf8_lossy(password).into_owned(),
    ))
}

/// Decodes one base64 line of an AUTH exchange into text.
pub(crate) fn decode_text(line: &str) -> Option<String> {
    decode_base64(line).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_padded_and_unpadded_base64() {
        assert_eq!(decode_base64("VXNlcm5hbWU6").unwrap(), b"Username:");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert_eq!(decode_base64("YWI").unwrap(), b"ab");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert!(decode_base64("a").is_none());
        assert!(decode_base64("a*bc").is_none());
    }

    #[test]
    fn splits_plain_payloads() {
        let payload = decode_base64("AHVzZXIAcGFzcw==").unwrap();
        assert_eq!(
            split_plain(&payload),
            Some(("user".to_owned(), "pass".to_owned()))
        );
        assert_eq!(split_plain(b"only-one-part"), None);
    }
}

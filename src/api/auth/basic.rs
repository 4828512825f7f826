//! HTTP Basic credentials (RFC 7617) read the way Go's `Request.BasicAuth` reads them: the
//! scheme word `Basic` matched case-insensitively and followed by one space, then standard
//! base64 with padding (line breaks ignored), split at the first `:`.

/// User name and password from an `Authorization` header value; None when malformed.
pub fn parse_basic_credentials(header_value: &str) -> Option<(String, String)> {
    const PREFIX: &str = "Basic ";
    let scheme = header_value.get(..PREFIX.len())?;
    if !scheme.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let decoded = decode_base64_std(&header_value[PREFIX.len()..])?;
    let text = String::from_utf8_lossy(&decoded);
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Standard base64 (`+/`, `=` padding required), as Go's `StdEncoding`; `\r` and `\n` are
/// skipped.
pub fn decode_base64_std(text: &str) -> Option<Vec<u8>> {
    let symbols: Vec<u8> = text
        .bytes()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect();
    if !symbols.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(symbols.len() / 4 * 3);
    let quads = symbols.len() / 4;
    for (n, quad) in symbols.chunks_exact(4).enumerate() {
        let last = n + 1 == quads;
        let padding = quad.iter().rev().take_while(|b| **b == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return None;
        }
        let mut bits: u32 = 0;
        for &symbol in &quad[..4 - padding] {
            bits = (bits << 6) | u32::from(sextet(symbol)?);
        }
        bits <<= 6 * padding as u32;
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - padding]);
    }
    Some(out)
}

fn sextet(symbol: u8) -> Option<u8> {
    match symbol {
        b'A'..=b'Z' => Some(symbol - b'A'),
        b'a'..=b'z' => Some(symbol - b'a' + 26),
        b'0'..=b'9' => Some(symbol - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_standard_base64() {
        assert_eq!(decode_base64_std("").unwrap(), b"");
        assert_eq!(decode_base64_std("Zg==").unwrap(), b"f");
        assert_eq!(decode_base64_std("Zm8=").unwrap(), b"fo");
        assert_eq!(decode_base64_std("Zm9v").unwrap(), b"foo");
        assert_eq!(decode_base64_std("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(decode_base64_std("Zm9v\r\nYmFy").unwrap(), b"foobar");
        assert_eq!(decode_base64_std("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        for bad in ["Zg", "Zg=", "Z===", "Zg==Zg==", "Zm9-", "Zm9v YmFy"] {
            assert_eq!(decode_base64_std(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_basic_credentials_like_go() {
        // "root:pw" and "a:b:c" (the password may contain ':').
        assert_eq!(
            parse_basic_credentials("Basic cm9vdDpwdw=="),
            Some(("root".into(), "pw".into()))
        );
        assert_eq!(
            parse_basic_credentials("bASIC YTpiOmM="),
            Some(("a".into(), "b:c".into()))
        );
        assert_eq!(parse_basic_credentials("Basic  cm9vdDpwdw=="), None);
        assert_eq!(parse_basic_credentials("Bearer cm9vdDpwdw=="), None);
        assert_eq!(parse_basic_credentials("Basic cm9vdA=="), None, "no colon");
        assert_eq!(parse_basic_credentials("Basic"), None);
        assert_eq!(parse_basic_credentials("Basé x"), None);
    }
}

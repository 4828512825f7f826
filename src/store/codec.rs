//! Byte-level primitives shared by the command codec and the snapshot format.
//!
//! ```text
//! u8      1 byte
//! u32     4 bytes, little-endian
//! u64     8 bytes, little-endian
//! i64     8 bytes, little-endian, two's complement
//! bool    1 byte: 0x00 = false, 0x01 = true (anything else is an error)
//! str     u32 byte length N, then N bytes of UTF-8
//! opt<T>  1 byte tag: 0x00 = absent, 0x01 = present and followed by T (anything else: error)
//! ```
//!
//! The reader never panics and never allocates more than the input it has seen: a length is
//! checked against the bytes that remain before anything is copied.

use std::fmt;

/// A malformed field. Every variant names the field and the offset where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The input ended inside a field.
    Truncated {
        field: &'static str,
        offset: usize,
        needed_bytes: usize,
        available_bytes: usize,
    },
    /// A bool byte that is neither 0 nor 1.
    InvalidBool {
        field: &'static str,
        offset: usize,
        found: u8,
    },
    /// An option tag that is neither 0 nor 1.
    InvalidOptionTag {
        field: &'static str,
        offset: usize,
        found: u8,
    },
    /// A string whose bytes are not UTF-8.
    InvalidUtf8 { field: &'static str, offset: usize },
    /// Bytes left over after the last field.
    TrailingBytes {
        expected_len: usize,
        found_len: usize,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated {
                field,
                offset,
                needed_bytes,
                available_bytes,
            } => write!(
                f,
                "truncated {field} at offset {offset}: expected {needed_bytes} bytes, found {available_bytes}"
            ),
            WireError::InvalidBool {
                field,
                offset,
                found,
            } => write!(
                f,
                "invalid bool {field} at offset {offset}: expected 0 or 1, found {found}"
            ),
            WireError::InvalidOptionTag {
                field,
                offset,
                found,
            } => write!(
                f,
                "invalid option tag for {field} at offset {offset}: expected 0 or 1, found {found}"
            ),
            WireError::InvalidUtf8 { field, offset } => {
                write!(f, "{field} at offset {offset}: expected UTF-8, found other bytes")
            }
            WireError::TrailingBytes {
                expected_len,
                found_len,
            } => write!(
                f,
                "trailing bytes: expected {expected_len} bytes in total, found {found_len}"
            ),
        }
    }
}

impl std::error::Error for WireError {}

pub(crate) fn put_u8(out: &mut Vec<u8>, value: u8) {
    out.push(value);
}

pub(crate) fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_i64(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_bool(out: &mut Vec<u8>, value: bool) {
    out.push(u8::from(value));
}

/// Strings longer than u32::MAX bytes cannot be encoded; the HTTP layer caps bodies far below.
pub(crate) fn put_str(out: &mut Vec<u8>, value: &str) {
    let len = u32::try_from(value.len()).unwrap_or_else(|_| {
        panic!(
            "string of {} bytes exceeds the u32 length field",
            value.len()
        )
    });
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(value.as_bytes());
}

pub(crate) fn put_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => put_u8(out, 0),
        Some(text) => {
            put_u8(out, 1);
            put_str(out, text);
        }
    }
}

pub(crate) fn put_opt_i64(out: &mut Vec<u8>, value: Option<i64>) {
    match value {
        None => put_u8(out, 0),
        Some(number) => {
            put_u8(out, 1);
            put_i64(out, number);
        }
    }
}

/// A cursor over untrusted bytes.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    /// Invariant: offset <= bytes.len().
    offset: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, offset: 0 }
    }

    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    fn take(&mut self, field: &'static str, len: usize) -> Result<&'a [u8], WireError> {
        if self.remaining() < len {
            return Err(WireError::Truncated {
                field,
                offset: self.offset,
                needed_bytes: len,
                available_bytes: self.remaining(),
            });
        }
        let slice = &self.bytes[self.offset..self.offset + len];
        self.offset += len;
        Ok(slice)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        Ok(self.take(field, 1)?[0])
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        let mut raw = [0u8; 4];
        raw.copy_from_slice(self.take(field, 4)?);
        Ok(u32::from_le_bytes(raw))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(field, 8)?);
        Ok(u64::from_le_bytes(raw))
    }

    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64, WireError> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(field, 8)?);
        Ok(i64::from_le_bytes(raw))
    }

    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, WireError> {
        let offset = self.offset;
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            found => Err(WireError::InvalidBool {
                field,
                offset,
                found,
            }),
        }
    }

    pub(crate) fn str(&mut self, field: &'static str) -> Result<String, WireError> {
        let len = self.u32(field)? as usize;
        let offset = self.offset;
        let raw = self.take(field, len)?;
        match std::str::from_utf8(raw) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(WireError::InvalidUtf8 { field, offset }),
        }
    }

    fn option_tag(&mut self, field: &'static str) -> Result<bool, WireError> {
        let offset = self.offset;
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            found => Err(WireError::InvalidOptionTag {
                field,
                offset,
                found,
            }),
        }
    }

    pub(crate) fn opt_str(&mut self, field: &'static str) -> Result<Option<String>, WireError> {
        if self.option_tag(field)? {
            Ok(Some(self.str(field)?))
        } else {
            Ok(None)
        }
    }

    pub(crate) fn opt_i64(&mut self, field: &'static str) -> Result<Option<i64>, WireError> {
        if self.option_tag(field)? {
            Ok(Some(self.i64(field)?))
        } else {
            Ok(None)
        }
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), WireError> {
        if self.remaining() != 0 {
            return Err(WireError::TrailingBytes {
                expected_len: self.offset,
                found_len: self.bytes.len(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut out = Vec::new();
        put_u8(&mut out, 7);
        put_u64(&mut out, u64::MAX - 1);
        put_i64(&mut out, -5);
        put_bool(&mut out, true);
        put_str(&mut out, "héllo");
        put_opt_str(&mut out, None);
        put_opt_str(&mut out, Some(""));
        put_opt_i64(&mut out, Some(i64::MIN));
        let mut reader = Reader::new(&out);
        assert_eq!(reader.u8("a").unwrap(), 7);
        assert_eq!(reader.u64("b").unwrap(), u64::MAX - 1);
        assert_eq!(reader.i64("c").unwrap(), -5);
        assert!(reader.bool("d").unwrap());
        assert_eq!(reader.str("e").unwrap(), "héllo");
        assert_eq!(reader.opt_str("f").unwrap(), None);
        assert_eq!(reader.opt_str("g").unwrap(), Some(String::new()));
        assert_eq!(reader.opt_i64("h").unwrap(), Some(i64::MIN));
        reader.finish().unwrap();
    }

    #[test]
    fn huge_length_is_truncation_not_allocation() {
        let bytes = [0xff, 0xff, 0xff, 0xff, b'a'];
        let error = Reader::new(&bytes).str("key").unwrap_err();
        assert_eq!(
            error,
            WireError::Truncated {
                field: "key",
                offset: 4,
                needed_bytes: u32::MAX as usize,
                available_bytes: 1
            }
        );
    }

    #[test]
    fn bad_bool_tag_and_utf8_are_errors() {
        assert!(matches!(
            Reader::new(&[2]).bool("dir"),
            Err(WireError::InvalidBool { found: 2, .. })
        ));
        assert!(matches!(
            Reader::new(&[9]).opt_str("v"),
            Err(WireError::InvalidOptionTag { found: 9, .. })
        ));
        assert!(matches!(
            Reader::new(&[1, 0, 0, 0, 0xff]).str("k"),
            Err(WireError::InvalidUtf8 { offset: 4, .. })
        ));
        let reader = Reader::new(&[1]);
        assert!(matches!(
            reader.finish(),
            Err(WireError::TrailingBytes {
                expected_len: 0,
                found_len: 1
            })
        ));
    }
}

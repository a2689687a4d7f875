//! The two wire framings in front of an Avro datum, parsed with bounds checks only.

use crate::CodecError;

const CONFLUENT_MAGIC: u8 = 0x00;
const CONFLUENT_HEADER: usize = 5;
const SINGLE_OBJECT_MAGIC: [u8; 2] = [0xC3, 0x01];
const SINGLE_OBJECT_HEADER: usize = 10;

/// How a record is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// Magic byte `0`, a 4-byte big-endian Schema Registry id, then the datum.
    #[default]
    Confluent,
    /// Avro single-object encoding: `C3 01`, the 8-byte little-endian CRC-64-AVRO (Rabin)
    /// fingerprint of the writer schema, then the datum.
    SingleObject,
}

/// How the writer schema of a framed datum is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaRef {
    Id(u32),
    Fingerprint(u64),
}

/// Splits a framed payload into the writer schema reference and the Avro body.
pub fn parse_header(bytes: &[u8]) -> Result<(SchemaRef, &[u8]), CodecError> {
    match bytes {
        [] => Err(CodecError::Empty),
        [CONFLUENT_MAGIC, rest @ ..] => {
            let (id, body) = rest
                .split_first_chunk::<4>()
                .ok_or(CodecError::ShortHeader {
                    framing: "Confluent",
                    len: bytes.len(),
                    need: CONFLUENT_HEADER,
                })?;
            Ok((SchemaRef::Id(u32::from_be_bytes(*id)), body))
        }
        [m0, m1, rest @ ..] if [*m0, *m1] == SINGLE_OBJECT_MAGIC => {
            let (fp, body) = rest
                .split_first_chunk::<8>()
                .ok_or(CodecError::ShortHeader {
                    framing: "single-object",
                    len: bytes.len(),
                    need: SINGLE_OBJECT_HEADER,
                })?;
            Ok((SchemaRef::Fingerprint(u64::from_le_bytes(*fp)), body))
        }
        [0xC3] => Err(CodecError::ShortHeader {
            framing: "single-object",
            len: 1,
            need: SINGLE_OBJECT_HEADER,
        }),
        _ => Err(CodecError::WrongMagic {
            found: bytes.iter().take(2).copied().collect(),
        }),
    }
}

/// Writes the header of `framing` for a writer schema into `out`.
pub(crate) fn write_header(out: &mut Vec<u8>, framing: Framing, id: u32, fingerprint: u64) {
    match framing {
        Framing::Confluent => {
            out.push(CONFLUENT_MAGIC);
            out.extend_from_slice(&id.to_be_bytes());
        }
        Framing::SingleObject => {
            out.extend_from_slice(&SINGLE_OBJECT_MAGIC);
            out.extend_from_slice(&fingerprint.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confluent_header_is_split_at_five_bytes() {
        let (r, body) = parse_header(&[0, 0, 0, 1, 2, 9, 9]).unwrap();
        assert_eq!(r, SchemaRef::Id(258));
        assert_eq!(body, &[9, 9]);
    }

    #[test]
    fn single_object_header_is_split_at_ten_bytes() {
        let mut b = vec![0xC3, 0x01];
        b.extend_from_slice(&0x0102_0304_0506_0708_u64.to_le_bytes());
        b.push(7);
        let (r, body) = parse_header(&b).unwrap();
        assert_eq!(r, SchemaRef::Fingerprint(0x0102_0304_0506_0708));
        assert_eq!(body, &[7]);
    }

    #[test]
    fn short_and_foreign_headers_are_typed_errors() {
        assert!(matches!(parse_header(&[]), Err(CodecError::Empty)));
        assert!(matches!(
            parse_header(&[0, 1, 2]),
            Err(CodecError::ShortHeader { need: 5, .. })
        ));
        assert!(matches!(
            parse_header(&[0xC3]),
            Err(CodecError::ShortHeader { need: 10, .. })
        ));
        assert!(matches!(
            parse_header(&[0xC3, 1, 2]),
            Err(CodecError::ShortHeader { need: 10, .. })
        ));
        assert!(matches!(
            parse_header(b"{\"json\":1}"),
            Err(CodecError::WrongMagic { .. })
        ));
    }
}

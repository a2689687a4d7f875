//! Avro's binary encoding, written straight from our records and read straight into them
//! (the hot paths).
//!
//! apache-avro encodes through its `Value` tree: every string cloned into it, then the whole
//! tree validated against the schema and each record's fields looked up by name in a hash
//! map, which profiled at a sixth of the pipeline's CPU. Each [`crate::AvroRecord`] writes
//! itself field by field in its newest schema's order instead, and reads itself back the
//! same way when the writer used that schema (decoding through `Value` took 2.2 µs an event,
//! 18 times the encode). Older writer schemas still go through apache-avro's schema
//! resolution. The codec tests check both directions against apache-avro for generated
//! records, so the two cannot drift.

use std::collections::BTreeMap;

/// An Avro datum being written at the end of a buffer.
#[derive(Debug)]
pub struct Datum<'a>(&'a mut Vec<u8>);

impl<'a> Datum<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self(out)
    }

    /// `long` (and `timestamp-millis`): zig-zag, then 7 bits a byte, low bits first.
    pub fn long(&mut self, n: i64) {
        let mut z = ((n << 1) ^ (n >> 63)) as u64;
        while z >= 0x80 {
            self.0.push((z as u8) | 0x80);
            z >>= 7;
        }
        self.0.push(z as u8);
    }

    pub fn int(&mut self, n: i32) {
        self.long(i64::from(n));
    }

    pub fn boolean(&mut self, b: bool) {
        self.0.push(u8::from(b));
    }

    pub fn double(&mut self, d: f64) {
        self.0.extend_from_slice(&d.to_le_bytes());
    }

    pub fn string(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    /// The branch of a union, before its value.
    pub fn branch(&mut self, index: u32) {
        self.long(i64::from(index));
    }

    /// `["null", "string"]`.
    pub fn optional_string(&mut self, s: Option<&str>) {
        match s {
            None => self.branch(0),
            Some(s) => {
                self.branch(1);
                self.string(s);
            }
        }
    }

    /// `["null", "long"]`.
    pub fn optional_long(&mut self, n: Option<i64>) {
        match n {
            None => self.branch(0),
            Some(n) => {
                self.branch(1);
                self.long(n);
            }
        }
    }

    /// An array: one block of every item, then the empty block that ends it.
    pub fn array<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        if !items.is_empty() {
            self.len(items.len());
            for i in items {
                item(self, i);
            }
        }
        self.0.push(0);
    }

    /// A map: one block of every entry (key, then value), then the empty block.
    pub fn map<'m, V: 'm>(
        &mut self,
        entries: impl ExactSizeIterator<Item = (&'m String, &'m V)>,
        mut value: impl FnMut(&mut Self, &V),
    ) {
        if entries.len() > 0 {
            self.len(entries.len());
            for (k, v) in entries {
                self.string(k);
                value(self, v);
            }
        }
        self.0.push(0);
    }

    fn len(&mut self, n: usize) {
        self.long(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// A datum the input is not: the reason, for [`crate::CodecError::Body`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn malformed(reason: impl Into<String>) -> Malformed {
    Malformed(reason.into())
}

/// An Avro datum being read from the front of a buffer, in the schema its record was
/// written with. Every length is checked against what is left before anything is reserved.
#[derive(Debug)]
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self(input)
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.0.len()
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        let (&b, rest) = self
            .0
            .split_first()
            .ok_or_else(|| malformed("the datum ends early"))?;
        self.0 = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if n > self.0.len() {
            return Err(malformed(format!(
                "the datum ends early: {n} bytes declared, {} left",
                self.0.len()
            )));
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    pub fn long(&mut self) -> Result<i64, Malformed> {
        let mut z: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        Err(malformed("a long of more than 10 bytes"))
    }

    pub fn int(&mut self) -> Result<i32, Malformed> {
        let n = self.long()?;
        i32::try_from(n).map_err(|_| malformed(format!("int {n} out of range")))
    }

    pub fn boolean(&mut self) -> Result<bool, Malformed> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(malformed(format!("boolean byte {b}"))),
        }
    }

    pub fn double(&mut self) -> Result<f64, Malformed> {
        let bytes = self.take(8)?;
        let mut le = [0u8; 8];
        le.copy_from_slice(bytes);
        Ok(f64::from_le_bytes(le))
    }

    pub fn string(&mut self) -> Result<String, Malformed> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| malformed(format!("a string that is not UTF-8: {e}")))
    }

    /// The branch of a union (or the symbol of an enum) of `branches`.
    pub fn branch(&mut self, branches: u32) -> Result<u32, Malformed> {
        let n = self.long()?;
        u32::try_from(n)
            .ok()
            .filter(|&b| b < branches)
            .ok_or_else(|| malformed(format!("union branch {n} of {branches}")))
    }

    /// `["null", "string"]`.
    pub fn optional_string(&mut self) -> Result<Option<String>, Malformed> {
        match self.branch(2)? {
            0 => Ok(None),
            _ => self.string().map(Some),
        }
    }

    /// `["null", "long"]`.
    pub fn optional_long(&mut self) -> Result<Option<i64>, Malformed> {
        match self.branch(2)? {
            0 => Ok(None),
            _ => self.long().map(Some),
        }
    }

    /// An array, block by block. A block of a negative count is followed by its size in
    /// bytes (how Java's buffered encoder writes). Every item of our schemas takes at least a
    /// byte, so a count larger than what is left is malformed, found before anything is
    /// reserved for it.
    pub fn array<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, Malformed>,
    ) -> Result<Vec<T>, Malformed> {
        let mut items = Vec::new();
        loop {
            let count = match self.long()? {
                0 => return Ok(items),
                n if n < 0 => {
                    self.long()?;
                    n.unsigned_abs()
                }
                n => n.unsigned_abs(),
            };
            if count > self.0.len() as u64 {
                return Err(malformed(format!(
                    "cannot allocate a block of {count} items from {} bytes",
                    self.0.len()
                )));
            }
            for _ in 0..count {
                items.push(item(self)?);
            }
        }
    }

    /// A map: an array of entries, each a string key and its value (a repeated key keeps
    /// its last value, as apache-avro's reader does).
    pub fn map<V>(
        &mut self,
        mut value: impl FnMut(&mut Self) -> Result<V, Malformed>,
    ) -> Result<BTreeMap<String, V>, Malformed> {
        let entries = self.array(|r| Ok((r.string()?, value(r)?)))?;
        Ok(entries.into_iter().collect())
    }

    /// An array of strings.
    pub fn strings(&mut self) -> Result<Vec<String>, Malformed> {
        self.array(Self::string)
    }

    fn len(&mut self) -> Result<usize, Malformed> {
        let n = self.long()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= crate::datum::MAX_LEN)
            .ok_or_else(|| malformed(format!("cannot allocate a length of {n}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long(n: i64) -> Vec<u8> {
        let mut out = Vec::new();
        Datum::new(&mut out).long(n);
        out
    }

    #[test]
    fn every_long_written_reads_back() {
        let mut n: i64 = 1;
        let mut values = vec![0, i64::MIN, i64::MAX, -1, 63, 64, -64, -65];
        while n < i64::MAX / 3 {
            values.extend([n, -n, n - 1, -n + 1]);
            n *= 3;
        }
        for v in values {
            let bytes = long(v);
            let mut input = Reader::new(&bytes);
            assert_eq!(input.long(), Ok(v), "{v}");
            assert_eq!(input.remaining(), 0, "{v}");
        }
    }

    #[test]
    fn a_block_of_negative_count_carries_its_size_and_is_read() {
        // Java's buffered encoder: count -2, size 4 bytes, two strings "a" "b", end block.
        let mut bytes = long(-2);
        bytes.extend(long(4));
        for s in ["a", "b"] {
            Datum::new(&mut bytes).string(s);
        }
        bytes.push(0);
        assert_eq!(
            Reader::new(&bytes).strings(),
            Ok(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn malformed_datums_are_errors_that_say_what_is_wrong() {
        let reason = |r: Result<String, Malformed>| r.unwrap_err().0;
        assert!(reason(Reader::new(&long(5)).string()).contains("ends early"));
        let too_long = long(crate::datum::MAX_LEN as i64 + 1);
        assert!(reason(Reader::new(&too_long).string()).contains("allocate"));
        assert!(reason(Reader::new(&long(-1)).string()).contains("allocate"));
        let not_utf8 = [4u8, 0xff, 0xfe];
        assert!(reason(Reader::new(&not_utf8).string()).contains("UTF-8"));
        let eleven = [0xffu8; 11];
        assert!(
            Reader::new(&eleven)
                .long()
                .unwrap_err()
                .0
                .contains("10 bytes")
        );
        assert!(Reader::new(&[2]).boolean().is_err());
        assert!(
            Reader::new(&long(2))
                .branch(2)
                .unwrap_err()
                .0
                .contains("branch 2")
        );
        assert!(Reader::new(&long(i64::from(i32::MAX) + 1)).int().is_err());
        let mut many = long(1000);
        many.extend([0u8; 10]);
        let err = Reader::new(&many).strings().unwrap_err().0;
        assert!(err.contains("allocate a block of 1000"), "{err}");
    }

    #[test]
    fn longs_are_zigzag_varints_as_the_avro_spec_gives_them() {
        // The examples of the Avro specification, and the extremes.
        assert_eq!(long(0), [0x00]);
        assert_eq!(long(-1), [0x01]);
        assert_eq!(long(1), [0x02]);
        assert_eq!(long(-2), [0x03]);
        assert_eq!(long(2), [0x04]);
        assert_eq!(long(-64), [0x7f]);
        assert_eq!(long(64), [0x80, 0x01]);
        for n in [i64::MIN, i64::MAX, 1_795_618_721_242] {
            let expected = apache_avro::to_avro_datum(
                &apache_avro::Schema::Long,
                apache_avro::types::Value::Long(n),
            )
            .unwrap();
            assert_eq!(long(n), expected, "{n}");
        }
    }
}

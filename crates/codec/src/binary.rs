//! Avro's binary encoding, written straight from our records (the encode hot path).
//!
//! apache-avro encodes through its `Value` tree: every string cloned into it, then the whole
//! tree validated against the schema and each record's fields looked up by name in a hash
//! map, which profiled at a sixth of the pipeline's CPU. Each [`crate::AvroRecord`] writes
//! itself field by field in its newest schema's order instead; the codec tests decode what it
//! writes with apache-avro against that schema for generated records, so the two cannot drift.

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

#[cfg(test)]
mod tests {
    use super::*;

    fn long(n: i64) -> Vec<u8> {
        let mut out = Vec::new();
        Datum::new(&mut out).long(n);
        out
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

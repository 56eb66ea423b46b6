//! The ABI's message encoding (docs/plugin-abi.md, "Encoding"): a subset of
//! the protocol buffers wire format. Every field is a tag varint
//! (number << 3 | wire type) and a varint (wire type 0: integers, zig-zag
//! for signed ones, and booleans) or a length-prefixed byte string (wire
//! type 2: strings, bytes, nested messages). Zero values are omitted,
//! repeated fields repeat their tag, and a decoder skips fields it does not
//! know. The field numbers are those of sdk/abi/types.go.

const VARINT: u64 = 0;
const BYTES: u64 = 2;

/// Enc appends fields to a buffer.
pub struct Enc<'a> {
    pub b: &'a mut Vec<u8>,
}

impl<'a> Enc<'a> {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.b.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.b.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u64) {
        self.varint((field as u64) << 3 | wire);
    }

    /// raw writes a length-delimited field even when it is empty (an
    /// element of a repeated field keeps its place).
    fn raw(&mut self, field: u32, p: &[u8]) {
        self.tag(field, BYTES);
        self.varint(p.len() as u64);
        self.b.extend_from_slice(p);
    }

    pub fn str(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.raw(field, s.as_bytes());
        }
    }

    pub fn strs(&mut self, field: u32, ss: &[String]) {
        for s in ss {
            self.raw(field, s.as_bytes());
        }
    }

    pub fn bytes(&mut self, field: u32, p: &[u8]) {
        if !p.is_empty() {
            self.raw(field, p);
        }
    }

    /// int writes a signed integer, zig-zag encoded.
    pub fn int(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.tag(field, VARINT);
            self.varint(((v << 1) ^ (v >> 63)) as u64);
        }
    }

    pub fn bool(&mut self, field: u32, v: bool) {
        if v {
            self.tag(field, VARINT);
            self.varint(1);
        }
    }

    /// msg writes a nested message, always (an empty one still marks an
    /// element of a repeated field). Like the Go encoder it writes the
    /// length as a five-byte padded varint and fills it in afterwards.
    pub fn msg(&mut self, field: u32, body: impl FnOnce(&mut Enc)) {
        self.tag(field, BYTES);
        let start = self.b.len();
        self.b.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x00]);
        body(&mut Enc { b: &mut *self.b });
        let n = (self.b.len() - start - 5) as u32;
        for i in 0..4 {
            self.b[start + i] = (n >> (7 * i)) as u8 | 0x80;
        }
        self.b[start + 4] = (n >> 28) as u8;
    }
}

/// A field's value as read: a varint or a byte string.
pub enum Val<'a> {
    Int(u64),
    Bytes(&'a [u8]),
}

impl<'a> Val<'a> {
    /// str is the value as a string; a varint or invalid UTF-8 is an error.
    pub fn str(&self) -> Result<String, String> {
        match self {
            Val::Bytes(p) => String::from_utf8(p.to_vec()).map_err(|_| "a string field is not UTF-8".to_string()),
            Val::Int(_) => Err("a string field has wire type 0".to_string()),
        }
    }

    pub fn int(&self) -> Result<i64, String> {
        match self {
            Val::Int(u) => Ok((u >> 1) as i64 ^ -((u & 1) as i64)),
            Val::Bytes(_) => Err("an integer field has wire type 2".to_string()),
        }
    }

    pub fn msg(&self) -> Result<Dec<'a>, String> {
        match self {
            Val::Bytes(p) => Ok(Dec { b: p }),
            Val::Int(_) => Err("a message field has wire type 0".to_string()),
        }
    }
}

/// Dec reads the fields of one message in order.
pub struct Dec<'a> {
    pub b: &'a [u8],
}

impl<'a> Dec<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let c = *self.b.get(i).ok_or("truncated message")?;
            v |= ((c & 0x7f) as u64) << (7 * i);
            if c < 0x80 {
                self.b = &self.b[i + 1..];
                return Ok(v);
            }
        }
        Err("varint overflows 64 bits".to_string())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.b.len() {
            return Err("truncated message".to_string());
        }
        let (p, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(p)
    }

    /// next returns the next field's number and value, None at the end.
    /// Fixed-width fields (which v1 never writes) are skipped.
    pub fn next(&mut self) -> Result<Option<(u32, Val<'a>)>, String> {
        loop {
            if self.b.is_empty() {
                return Ok(None);
            }
            let t = self.varint()?;
            let field = (t >> 3) as u32;
            if field == 0 {
                return Err("field number 0".to_string());
            }
            match t & 7 {
                0 => return Ok(Some((field, Val::Int(self.varint()?)))),
                2 => {
                    let n = self.varint()?;
                    return Ok(Some((field, Val::Bytes(self.take(n as usize)?))));
                }
                1 => drop(self.take(8)?),
                5 => drop(self.take(4)?),
                w => return Err(format!("unknown wire type {}", w)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Dec, Enc, Val};

    #[test]
    fn skips_what_it_does_not_know_and_refuses_what_is_broken() {
        // field 9 fixed64, field 10 fixed32, field 1 "a", field 2 zig-zag -2
        let b = [0x49, 1, 2, 3, 4, 5, 6, 7, 8, 0x55, 1, 2, 3, 4, 0x0a, 1, b'a', 0x10, 3];
        let mut d = Dec { b: &b };
        let mut got = Vec::new();
        while let Some((n, v)) = d.next().unwrap() {
            got.push(match v {
                Val::Int(_) => format!("{}={}", n, v.int().unwrap()),
                Val::Bytes(_) => format!("{}={}", n, v.str().unwrap()),
            });
        }
        assert_eq!(got, vec!["1=a", "2=-2"]);
        for bad in [&[0x0a, 5, b'a'][..], &[0x08][..], &[0x00, 1][..], &[0x0b][..], &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1][..]] {
            let mut d = Dec { b: bad };
            assert!(d.next().is_err(), "{:?} decoded", bad);
        }
        assert!(Val::Int(1).str().is_err() && Val::Bytes(b"x").int().is_err());
    }

    #[test]
    fn ints_round_trip() {
        for v in [0i64, 1, -1, 63, -64, 1 << 40, i64::MAX, i64::MIN] {
            let mut b = Vec::new();
            Enc { b: &mut b }.int(1, v);
            let got = Dec { b: &b }.next().unwrap().map(|(_, v)| v.int().unwrap()).unwrap_or(0);
            assert_eq!(got, v);
        }
    }
}

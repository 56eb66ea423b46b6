//! A small JSON reader and string writer: enough to walk a provider's
//! answers without a crate. Read a document by walking it:
//!
//!     let mut j = Json::new(body);
//!     j.begin_object();
//!     while let Some(key) = j.next_key() {
//!         match key.as_str() {
//!             "id" => id = j.number(),
//!             _ => j.skip(),
//!         }
//!     }
//!     j.end()?;
//!
//! Every arm reads exactly one value. The first error sticks: later reads
//! return empty values, the loops end, and end() reports it. A value of the
//! wrong type is an error; null reads as the empty value of any type.

/// Deeper documents are refused rather than recursed into.
const MAX_DEPTH: usize = 64;

#[derive(PartialEq)]
enum At {
    /// After a member or element: a ',' or the closing bracket is next.
    Middle,
    /// Just inside the opening bracket.
    First,
    /// A null read as an empty container: the loop ends at once.
    Null,
}

pub struct Json<'a> {
    b: &'a [u8],
    i: usize,
    err: Option<String>,
    /// at: where the reader stands in the container entered last.
    at: At,
}

impl<'a> Json<'a> {
    pub fn new(b: &'a [u8]) -> Json<'a> {
        Json { b, i: 0, err: None, at: At::Middle }
    }

    fn fail(&mut self, msg: &str) {
        if self.err.is_none() {
            self.err = Some(format!("invalid JSON at offset {}: {}", self.i, msg));
        }
        self.i = self.b.len();
    }

    /// ok reports whether no error has occurred yet.
    pub fn ok(&self) -> bool {
        self.err.is_none()
    }

    /// end returns the first error, or an error for anything but
    /// white space after the document.
    pub fn end(&mut self) -> Result<(), String> {
        self.ws();
        if self.err.is_none() && self.i < self.b.len() {
            self.fail("trailing data after the JSON value");
        }
        match &self.err {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    /// kind returns the first byte of the next value ('{', '[', '"', 't',
    /// 'f', 'n', '-' or a digit), or 0 at the end or after an error.
    pub fn kind(&mut self) -> u8 {
        self.ws();
        if self.err.is_some() {
            return 0;
        }
        *self.b.get(self.i).unwrap_or(&0)
    }

    fn literal(&mut self, lit: &str) -> bool {
        if self.b[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            self.fail("invalid literal");
            false
        }
    }

    fn null(&mut self) -> bool {
        self.kind() == b'n' && self.literal("null")
    }

    fn open(&mut self, c: u8, what: &str) -> bool {
        if self.null() {
            self.at = At::Null;
            return false;
        }
        self.at = At::Middle;
        if self.kind() != c {
            self.fail(what);
            return false;
        }
        self.i += 1;
        self.at = At::First;
        true
    }

    /// begin_object enters an object; a null reads as an empty one.
    pub fn begin_object(&mut self) -> bool {
        self.open(b'{', "expected an object")
    }

    /// begin_array enters an array; a null reads as an empty one.
    pub fn begin_array(&mut self) -> bool {
        self.open(b'[', "expected an array")
    }

    /// more moves past the separator before the next member or element,
    /// or past the closing bracket (then false).
    fn more(&mut self, close: u8) -> bool {
        let at = std::mem::replace(&mut self.at, At::Middle);
        if self.err.is_some() || at == At::Null {
            return false;
        }
        self.ws();
        let c = *self.b.get(self.i).unwrap_or(&0);
        if c == close {
            self.i += 1;
            return false;
        }
        if c == 0 {
            self.fail("unterminated object or array");
            return false;
        }
        if at == At::First {
            return true;
        }
        if c != b',' {
            self.fail("expected ',' or a closing bracket");
            return false;
        }
        self.i += 1;
        true
    }

    /// next_key returns the next member's name in the object entered last,
    /// or None after its closing brace.
    pub fn next_key(&mut self) -> Option<String> {
        if !self.more(b'}') {
            return None;
        }
        if self.kind() != b'"' {
            self.fail("expected a member name");
            return None;
        }
        let key = self.string();
        self.ws();
        if self.b.get(self.i) != Some(&b':') {
            self.fail("expected ':'");
            return None;
        }
        self.i += 1;
        Some(key)
    }

    /// next_item reports whether the array entered last has another
    /// element; the caller then reads it.
    pub fn next_item(&mut self) -> bool {
        self.more(b']')
    }

    /// string reads a string.
    pub fn string(&mut self) -> String {
        match self.kind() {
            b'"' => {}
            b'n' => {
                self.literal("null");
                return String::new();
            }
            _ => {
                self.fail("expected a string");
                return String::new();
            }
        }
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let start = self.i;
            while self.i < self.b.len() && !matches!(self.b[self.i], b'"' | b'\\') && self.b[self.i] >= 0x20 {
                self.i += 1;
            }
            out.extend_from_slice(&self.b[start..self.i]);
            match self.b.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    let e = *self.b.get(self.i + 1).unwrap_or(&0);
                    self.i += 2;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode(),
                        _ => {
                            self.fail("invalid escape in a string");
                            return String::new();
                        }
                    };
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
                _ => {
                    self.fail("unterminated string");
                    return String::new();
                }
            }
        }
        // Invalid UTF-8 in the input becomes U+FFFD, as in Go.
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    fn hex4(&mut self) -> Option<u32> {
        let p = self.b.get(self.i..self.i + 4)?;
        let s = std::str::from_utf8(p).ok()?;
        let v = u32::from_str_radix(s, 16).ok()?;
        self.i += 4;
        Some(v)
    }

    /// unicode reads the XXXX of \uXXXX (and a low surrogate's \uXXXX).
    fn unicode(&mut self) -> char {
        let hi = match self.hex4() {
            Some(v) => v,
            None => {
                self.fail("invalid \\u escape");
                return '\u{fffd}';
            }
        };
        if (0xd800..0xdc00).contains(&hi) && self.b[self.i..].starts_with(b"\\u") {
            let save = self.i;
            self.i += 2;
            if let Some(lo) = self.hex4() {
                if (0xdc00..0xe000).contains(&lo) {
                    return char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)).unwrap_or('\u{fffd}');
                }
            }
            self.i = save;
        }
        char::from_u32(hi).unwrap_or('\u{fffd}')
    }

    /// number returns a number's text ("4242"); a string is returned as it
    /// is (some providers quote ids).
    pub fn number(&mut self) -> String {
        match self.kind() {
            b'"' | b'n' => self.string(),
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while self.i < self.b.len() && matches!(self.b[self.i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                    self.i += 1;
                }
                String::from_utf8_lossy(&self.b[start..self.i]).into_owned()
            }
            _ => {
                self.fail("expected a number");
                String::new()
            }
        }
    }

    /// int reads an integer (or a string holding one); a fraction is
    /// truncated.
    pub fn int(&mut self) -> i64 {
        let s = self.number();
        if s.is_empty() || self.err.is_some() {
            return 0;
        }
        match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => match s.parse::<f64>() {
                Ok(f) => f as i64,
                Err(_) => {
                    self.fail("invalid integer");
                    0
                }
            },
        }
    }

    /// boolean reads true or false.
    pub fn boolean(&mut self) -> bool {
        match self.kind() {
            b't' => self.literal("true"),
            b'f' => {
                self.literal("false");
                false
            }
            b'n' => {
                self.literal("null");
                false
            }
            _ => {
                self.fail("expected true or false");
                false
            }
        }
    }

    /// skip reads and discards the next value.
    pub fn skip(&mut self) {
        self.skip_depth(0)
    }

    fn skip_depth(&mut self, depth: usize) {
        if depth > MAX_DEPTH {
            self.fail("the document is nested too deeply");
            return;
        }
        match self.kind() {
            b'{' => {
                self.begin_object();
                while self.next_key().is_some() {
                    self.skip_depth(depth + 1);
                }
            }
            b'[' => {
                self.begin_array();
                while self.next_item() {
                    self.skip_depth(depth + 1);
                }
            }
            b'"' => drop(self.string()),
            b't' | b'f' | b'n' => drop(self.boolean()),
            0 => self.fail("unexpected end of the document"),
            _ => drop(self.number()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Json;

    /// read walks an object of strings, numbers and booleans, skipping the
    /// rest, and returns "key=value" pairs.
    fn read(doc: &str) -> Result<Vec<String>, String> {
        let mut j = Json::new(doc.as_bytes());
        let mut out = Vec::new();
        j.begin_object();
        while let Some(k) = j.next_key() {
            let v = match j.kind() {
                b'"' => j.string(),
                b't' | b'f' => j.boolean().to_string(),
                b'-' | b'0'..=b'9' => j.number(),
                _ => {
                    j.skip();
                    "skipped".into()
                }
            };
            out.push(format!("{}={}", k, v));
        }
        j.end().map(|_| out)
    }

    #[test]
    fn values_and_escapes() {
        let got = read(r#" {"a": "x\"y\\z\/\n\t", "b": "\u00e9\ud83e\udd80", "c": -12.5e3, "d": true,
            "e": false, "f": null, "g": {"h": [1, {"i": []}, "j"]}, "k": [], "\u006b2": "\ud800"} "#).unwrap();
        assert_eq!(got, vec!["a=x\"y\\z/\n\t", "b=é🦀", "c=-12.5e3", "d=true", "e=false", "f=skipped",
            "g=skipped", "k=skipped", "k2=\u{fffd}"]);
    }

    #[test]
    fn null_reads_as_empty() {
        let mut j = Json::new(br#"{"o": null, "a": null, "s": null, "n": 7}"#);
        let mut seen = Vec::new();
        j.begin_object();
        while let Some(k) = j.next_key() {
            match k.as_str() {
                "o" => {
                    j.begin_object();
                    while j.next_key().is_some() {
                        panic!("a member in null");
                    }
                }
                "a" => {
                    j.begin_array();
                    while j.next_item() {
                        panic!("an element in null");
                    }
                }
                "s" => assert_eq!(j.string(), ""),
                _ => assert_eq!(j.int(), 7),
            }
            seen.push(k);
        }
        j.end().unwrap();
        assert_eq!(seen, vec!["o", "a", "s", "n"]);
    }

    #[test]
    fn ints() {
        for (doc, want) in [("42", 42), ("\"42\"", 42), ("-7", -7), ("3600.0", 3600), ("null", 0)] {
            let mut j = Json::new(doc.as_bytes());
            assert_eq!(j.int(), want, "{}", doc);
            j.end().unwrap();
        }
    }

    #[test]
    fn errors() {
        for doc in [
            "",
            "{",
            r#"{"a": 1"#,
            r#"{"a" 1}"#,
            r#"{"a": 1,}"#,
            r#"{"a": "x}"#,
            r#"{"a": "\q"}"#,
            r#"{"a": tru}"#,
            r#"{"a": 1} x"#,
            "[1 2]",
            "\"a\"",
        ] {
            assert!(read(doc).is_err(), "{:?} read without an error", doc);
        }
        // A string where a number is wanted, and the reverse.
        let mut j = Json::new(br#"{"id": true}"#);
        j.begin_object();
        j.next_key();
        j.number();
        assert!(j.end().unwrap_err().starts_with("invalid JSON at offset 7: expected a number"));
        let mut j = Json::new(b"[1]");
        j.begin_array();
        j.next_item();
        j.string();
        assert!(j.end().is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_recursed() {
        let doc = format!(r#"{{"a": {}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
        let err = read(&doc).unwrap_err();
        assert!(err.contains("nested too deeply"), "{}", err);
    }
}

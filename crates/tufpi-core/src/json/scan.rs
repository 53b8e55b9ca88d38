//! Read one member out of JSON text without building the document: skips everything else
//! without allocating. For cheap consistency checks of cached files that were verified in full
//! when they were stored (e.g. "is the cached snapshot the version timestamp names?").

use super::{parse, Value};

/// The value at `path` (object keys from the top), parsed, or `None` if absent or malformed.
/// Keys are compared with their raw JSON text, so only keys without escapes can be looked up.
pub fn find(text: &[u8], path: &[&str]) -> Option<Value> {
    let mut s = Scanner { s: text, i: 0 };
    let mut depth_path = path;
    loop {
        s.ws();
        let Some((key, rest)) = depth_path.split_first() else {
            let start = s.i;
            s.skip_value(0)?;
            return parse(&text[start..s.i]).ok();
        };
        if s.peek()? != b'{' {
            return None;
        }
        s.i += 1;
        loop {
            s.ws();
            match s.peek()? {
                b'}' => return None,
                b',' => {
                    s.i += 1;
                    continue;
                }
                b'"' => {}
                _ => return None,
            }
            let (ka, kb) = s.string_raw()?;
            s.ws();
            if s.peek()? != b':' {
                return None;
            }
            s.i += 1;
            s.ws();
            if &text[ka..kb] == key.as_bytes() {
                break;
            }
            s.skip_value(0)?;
        }
        depth_path = rest;
    }
}

struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// The byte range between the quotes of a string starting at `i`.
    fn string_raw(&mut self) -> Option<(usize, usize)> {
        let start = self.i + 1;
        let mut j = start;
        loop {
            let off = memchr::memchr2(b'"', b'\\', self.s.get(j..)?)?;
            j += off;
            if self.s[j] == b'\\' {
                j += 2;
                continue;
            }
            self.i = j + 1;
            return (j <= self.s.len()).then_some((start, j));
        }
    }

    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > super::MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'"' => self.string_raw().map(|_| ()),
            b'{' | b'[' => {
                let close = if self.peek()? == b'{' { b'}' } else { b']' };
                self.i += 1;
                loop {
                    self.ws();
                    match self.peek()? {
                        c if c == close => {
                            self.i += 1;
                            return Some(());
                        }
                        b',' | b':' => self.i += 1,
                        _ => self.skip_value(depth + 1)?,
                    }
                }
            }
            _ => {
                // Number or literal: up to the next delimiter.
                let start = self.i;
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_members() {
        let doc =
            br#"{"signatures": [{"keyid": "a\"}", "sig": "x"}], "signed": {"_type": "snapshot",
            "meta": {"a.json": {"version": 3}, "targets.json": {"version": 7}}, "version": 12}}"#;
        assert_eq!(find(doc, &["signed", "version"]), Some(Value::from(12u64)));
        assert_eq!(
            find(doc, &["signed", "meta", "targets.json", "version"]),
            Some(Value::from(7u64))
        );
        assert_eq!(
            find(doc, &["signed", "_type"]),
            Some(Value::from("snapshot"))
        );
        assert_eq!(find(doc, &["signed", "nope"]), None);
        assert_eq!(find(b"{\"signed\": ", &["signed", "version"]), None);
        assert_eq!(find(b"[1, 2]", &["signed"]), None);
    }
}

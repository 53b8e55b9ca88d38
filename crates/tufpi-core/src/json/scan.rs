//! Read one member out of JSON text without building the document: skips everything else
//! without allocating. For cheap consistency checks of cached files that were verified in full
//! when they were stored (e.g. "is the cached snapshot the version timestamp names?").

use super::parse::{parse, MAX_DEPTH};
use super::value::Value;

/// The value at `path` (object keys from the top), parsed, or `None` if absent or malformed.
/// Keys are compared with their raw JSON text, so only keys without escapes can be looked up.
pub fn find(text: &[u8], path: &[&str]) -> Option<Value> {
    find_many(text, &[path]).pop().flatten()
}

/// The values at several paths, in one pass over `text`.
pub fn find_many(text: &[u8], paths: &[&[&str]]) -> Vec<Option<Value>> {
    let mut out = vec![None; paths.len()];
    let mut s = Scanner { s: text, i: 0 };
    let mut cur: Vec<&str> = Vec::new();
    let _ = s.walk(&mut cur, paths, &mut out, 0);
    out
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

    /// Visit the value at `i` (whose path is `cur`): record it if a path names it, descend if
    /// a path goes through it, skip it otherwise.
    fn walk<'p>(
        &mut self,
        cur: &mut Vec<&'p str>,
        paths: &[&[&'p str]],
        out: &mut [Option<Value>],
        depth: usize,
    ) -> Option<()> {
        self.ws();
        if let Some(n) = paths.iter().position(|p| *p == cur.as_slice()) {
            let start = self.i;
            self.skip_value(depth)?;
            out[n] = parse(&self.s[start..self.i]).ok();
            return Some(());
        }
        let through = paths
            .iter()
            .any(|p| p.len() > cur.len() && p.starts_with(cur));
        if !through || self.peek()? != b'{' {
            return self.skip_value(depth);
        }
        self.i += 1;
        loop {
            self.ws();
            match self.peek()? {
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                b',' => self.i += 1,
                b'"' => {
                    let (ka, kb) = self.string_raw()?;
                    self.ws();
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.i += 1;
                    let key = &self.s[ka..kb];
                    let next = paths.iter().find_map(|p| {
                        p.get(cur.len())
                            .filter(|k| k.as_bytes() == key && p.starts_with(cur))
                    });
                    match next {
                        Some(k) => {
                            cur.push(k);
                            self.walk(cur, paths, out, depth + 1)?;
                            cur.pop();
                        }
                        None => self.skip_value(depth + 1)?,
                    }
                }
                _ => return None,
            }
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
        if depth > MAX_DEPTH {
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

//! Target-path matching as python-tuf does it: `paths` globs (fnmatch per `/`-separated part,
//! so `*` never crosses `/`) and SHA-256 path hashes for `path_hash_prefixes` and TAP 15 bins.

use sha2::{Digest, Sha256};

/// SHA-256 of the target path's UTF-8 bytes.
pub fn path_hash(target_path: &str) -> [u8; 32] {
    Sha256::digest(target_path.as_bytes()).into()
}

/// Lower-case hex SHA-256 of the target path.
pub fn path_hash_hex(target_path: &str) -> String {
    hex::encode(path_hash(target_path))
}

/// Whether `target_path` matches the delegation pattern: same number of `/` parts, each part
/// matched by `fnmatchcase`.
pub fn path_matches(target_path: &str, pattern: &str) -> bool {
    let t: Vec<&str> = target_path.split('/').collect();
    let p: Vec<&str> = pattern.split('/').collect();
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| fnmatch(t, p))
}

/// One element of a compiled glob.
#[derive(Debug)]
enum Tok {
    Any,
    One,
    Lit(char),
    Set {
        negate: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Compile a pattern the way Python's `fnmatch.translate` reads it.
fn compile(pat: &str) -> Vec<Tok> {
    let chars: Vec<char> = pat.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                if !matches!(toks.last(), Some(Tok::Any)) {
                    toks.push(Tok::Any);
                }
            }
            '?' => toks.push(Tok::One),
            '[' => {
                // Find the closing ']' ('!' and a leading ']' belong to the set).
                let mut j = i;
                if j < chars.len() && chars[j] == '!' {
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    toks.push(Tok::Lit('['));
                    continue;
                }
                toks.push(set(&chars[i..j]));
                i = j + 1;
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    toks
}

/// A `[...]` set (`body` between the brackets) exactly as `fnmatch.translate` turns it into a
/// regex class: split at the hyphens that can make ranges, drop reversed ranges by merging
/// their neighbours (which can leave a `!` in front that was not one before: `[z-a!]` matches
/// anything), escape the other hyphens; then read the class as `re` does.
fn set(body: &[char]) -> Tok {
    // The class text as (char, escaped) pairs: an escaped char is always a literal.
    let mut stuff: Vec<(char, bool)> = Vec::new();
    if !body.contains(&'-') {
        stuff.extend(body.iter().map(|&c| (c, false)));
    } else {
        let mut chunks: Vec<Vec<char>> = Vec::new();
        let (mut i, j) = (0, body.len());
        let mut k = if body[0] == '!' { 2 } else { 1 };
        while let Some(off) = body
            .get(k..j)
            .and_then(|s| s.iter().position(|&c| c == '-'))
        {
            k += off;
            chunks.push(body[i..k].to_vec());
            i = k + 1;
            k += 3;
        }
        if i < j {
            chunks.push(body[i..j].to_vec());
        } else if let Some(last) = chunks.last_mut() {
            last.push('-');
        }
        for k in (1..chunks.len()).rev() {
            if chunks[k - 1].last() > chunks[k].first() {
                let mut merged = chunks[k - 1][..chunks[k - 1].len() - 1].to_vec();
                merged.extend_from_slice(&chunks[k][1..]);
                chunks[k - 1] = merged;
                chunks.remove(k);
            }
        }
        for (n, chunk) in chunks.iter().enumerate() {
            if n > 0 {
                stuff.push(('-', false));
            }
            stuff.extend(chunk.iter().map(|&c| (c, c == '-')));
        }
    }
    if stuff.is_empty() {
        // An empty class never matches.
        return Tok::Set {
            negate: false,
            ranges: Vec::new(),
        };
    }
    if stuff == [('!', false)] {
        return Tok::One;
    }
    let negate = stuff[0] == ('!', false);
    let items = if negate { &stuff[1..] } else { &stuff[..] };
    let mut ranges = Vec::new();
    let mut k = 0;
    while k < items.len() {
        if k + 2 < items.len() && items[k + 1] == ('-', false) {
            ranges.push((items[k].0, items[k + 2].0));
            k += 3;
        } else {
            ranges.push((items[k].0, items[k].0));
            k += 1;
        }
    }
    Tok::Set { negate, ranges }
}

/// Python's `fnmatch.fnmatchcase` (no case folding, `*` matches anything incl. empty).
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    let toks = compile(pattern);
    let s: Vec<char> = name.chars().collect();
    // Iterative matcher with single-star backtracking: linear-ish, no recursion blow-up.
    let (mut ti, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        let step = match toks.get(ti) {
            Some(Tok::Any) => {
                star = Some((ti, si));
                ti += 1;
                continue;
            }
            Some(Tok::One) => true,
            Some(Tok::Lit(c)) => *c == s[si],
            Some(Tok::Set { negate, ranges }) => {
                let inside = ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&s[si]));
                inside != *negate
            }
            None => false,
        };
        if step {
            ti += 1;
            si += 1;
        } else if let Some((st, ss)) = star {
            ti = st + 1;
            si = ss + 1;
            star = Some((st, ss + 1));
        } else {
            return false;
        }
    }
    toks[ti..].iter().all(|t| matches!(t, Tok::Any))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(fnmatch("foo.tgz", "*.tgz"));
        assert!(fnmatch("", "*"));
        assert!(!fnmatch("a", ""));
        assert!(fnmatch("a1", "a?"));
        assert!(fnmatch("b", "[abc]"));
        assert!(!fnmatch("d", "[abc]"));
        assert!(fnmatch("d", "[!abc]"));
        assert!(fnmatch("]", "[]]"));
        assert!(fnmatch("[x", "[x"));
        assert!(fnmatch("m", "[a-z]"));
        assert!(!fnmatch("m", "[z-a]"));
        assert!(fnmatch("aXbYc", "a*b*c"));
        assert!(!fnmatch("aXbYd", "a*b*c"));
        assert!(fnmatch("*", "[*]"));
    }

    /// Found by the `pathmatch` fuzz target: removing a reversed range can leave a `!` at the
    /// front of the set, which Python then reads as a negation (checked with Python 3.11).
    #[test]
    fn reversed_ranges_as_python_removes_them() {
        assert!(fnmatch("q", "[z-a!]"));
        assert!(fnmatch("z", "[z-a![]"));
        assert!(!fnmatch("[", "[z-a![]"));
        assert!(fnmatch("-", "[a-!!z]"));
        assert!(!fnmatch("z", "[a-!!z]"));
        assert!(fnmatch("-", "[a-[!aa]"));
        assert!(fnmatch("b", "[z-ab]"));
        assert!(!fnmatch("z", "[z-ab]"));
        assert!(fnmatch("-", "[a-]"));
        assert!(fnmatch("-", "[--0]"));
        assert!(fnmatch("c", "[b-a-c]"));
        assert!(fnmatch("-", "[b-a-c]"));
        assert!(!fnmatch("b", "[b-a-c]"));
        assert!(fnmatch("x", "[!z-a]"));
    }

    #[test]
    fn paths_do_not_cross_slash() {
        assert!(path_matches("targets/foo.tgz", "targets/*.tgz"));
        assert!(!path_matches("targets/sub/foo.tgz", "targets/*.tgz"));
        assert!(path_matches("a/b/c", "*/*/*"));
        assert!(!path_matches("a/b", "*"));
    }
}

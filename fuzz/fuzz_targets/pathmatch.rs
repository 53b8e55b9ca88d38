//! Delegation path matching (`paths` globs) and path hashing, against a reference: Python's
//! `fnmatch.translate` (3.11) transcribed step by step, matched by plain dynamic programming.
//! python-tuf decides which role is trusted for a target with exactly that, so any
//! difference is a role confusion. Input: pattern, NUL, target path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tufpi_core::pathmatch::{fnmatch, path_hash_hex, path_matches};

#[derive(Debug)]
enum Tok {
    Star,
    Any,
    Never,
    Lit(char),
    /// A regex character class: negated?, (lo, hi) items.
    Class(bool, Vec<(char, char)>),
}

/// fnmatch.translate, token for token.
fn translate(pat: &[char]) -> Vec<Tok> {
    let mut res = Vec::new();
    let (mut i, n) = (0, pat.len());
    while i < n {
        let c = pat[i];
        i += 1;
        match c {
            '*' => {
                if !matches!(res.last(), Some(Tok::Star)) {
                    res.push(Tok::Star)
                }
            }
            '?' => res.push(Tok::Any),
            '[' => {
                let mut j = i;
                if j < n && pat[j] == '!' {
                    j += 1;
                }
                if j < n && pat[j] == ']' {
                    j += 1;
                }
                while j < n && pat[j] != ']' {
                    j += 1;
                }
                if j >= n {
                    res.push(Tok::Lit('['));
                    continue;
                }
                // `stuff` as (char, escaped) pairs: escaped chars are literal in the class.
                let mut stuff: Vec<(char, bool)> = Vec::new();
                if !pat[i..j].contains(&'-') {
                    stuff.extend(pat[i..j].iter().map(|&c| (c, false)));
                } else {
                    let mut chunks: Vec<Vec<char>> = Vec::new();
                    let mut k = if pat[i] == '!' { i + 2 } else { i + 1 };
                    loop {
                        let Some(off) = pat.get(k..j).and_then(|s| s.iter().position(|&c| c == '-'))
                        else {
                            break;
                        };
                        k += off;
                        chunks.push(pat[i..k].to_vec());
                        i = k + 1;
                        k += 3;
                    }
                    let chunk = pat[i..j].to_vec();
                    if !chunk.is_empty() {
                        chunks.push(chunk);
                    } else {
                        chunks.last_mut().unwrap().push('-');
                    }
                    for k in (1..chunks.len()).rev() {
                        if chunks[k - 1].last() > chunks[k].first() {
                            let mut merged = chunks[k - 1][..chunks[k - 1].len() - 1].to_vec();
                            merged.extend_from_slice(&chunks[k][1..]);
                            chunks[k - 1] = merged;
                            chunks.remove(k);
                        }
                    }
                    for (n, ch) in chunks.iter().enumerate() {
                        if n > 0 {
                            stuff.push(('-', false));
                        }
                        stuff.extend(ch.iter().map(|&c| (c, c == '-')));
                    }
                }
                i = j + 1;
                if stuff.is_empty() {
                    res.push(Tok::Never);
                } else if stuff == [('!', false)] {
                    res.push(Tok::Any);
                } else {
                    let negate = stuff[0] == ('!', false);
                    let body = if negate { &stuff[1..] } else { &stuff[..] };
                    // sre's class parser: `x-y` is a range, an escaped `-` is a literal.
                    let mut items = Vec::new();
                    let mut k = 0;
                    while k < body.len() {
                        let (c, _) = body[k];
                        if k + 2 < body.len() && body[k + 1] == ('-', false) {
                            items.push((c, body[k + 2].0));
                            k += 3;
                        } else {
                            items.push((c, c));
                            k += 1;
                        }
                    }
                    res.push(Tok::Class(negate, items));
                }
            }
            c => res.push(Tok::Lit(c)),
        }
    }
    res
}

fn matches(toks: &[Tok], s: &[char]) -> bool {
    // m[t][k]: toks[t..] matches s[k..].
    let (nt, ns) = (toks.len(), s.len());
    let mut m = vec![vec![false; ns + 1]; nt + 1];
    m[nt][ns] = true;
    for t in (0..nt).rev() {
        for k in (0..=ns).rev() {
            m[t][k] = match &toks[t] {
                Tok::Star => m[t + 1][k] || (k < ns && m[t][k + 1]),
                _ if k == ns => false,
                Tok::Any => m[t + 1][k + 1],
                Tok::Never => false,
                Tok::Lit(c) => *c == s[k] && m[t + 1][k + 1],
                Tok::Class(neg, items) => {
                    let inside = items.iter().any(|(lo, hi)| (*lo..=*hi).contains(&s[k]));
                    inside != *neg && m[t + 1][k + 1]
                }
            };
        }
    }
    m[0][0]
}

fn reference(name: &str, pattern: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    matches(&translate(&p), &s)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (pattern, path) = text.split_once('\0').unwrap_or((&text, ""));
    if pattern.len() > 512 || path.len() > 512 {
        return;
    }
    let got = path_matches(path, pattern);
    let parts_t: Vec<&str> = path.split('/').collect();
    let parts_p: Vec<&str> = pattern.split('/').collect();
    let want = parts_t.len() == parts_p.len()
        && parts_t.iter().zip(&parts_p).all(|(t, p)| reference(t, p));
    assert_eq!(got, want, "path_matches({path:?}, {pattern:?})");
    assert_eq!(fnmatch(path, pattern), reference(path, pattern), "fnmatch({path:?}, {pattern:?})");
    let h = path_hash_hex(path);
    assert!(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
});

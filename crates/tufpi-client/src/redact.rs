//! URL credential redaction: the one place the workspace removes a URL's userinfo
//! (`user:password@`), query and fragment before it reaches an error text or a log. The
//! fetchers build every `FetchError` with redacted URLs; whoever shows other text that may
//! carry a URL (the proxy's answers, log lines) passes it through `redact`.

/// `url` without userinfo, query and fragment. A URL that does not parse is cut by hand:
/// anything between `://` and an `@` in its authority goes, and so does everything from the
/// first `?` or `#` of the rest.
pub fn redact_url(url: &str) -> String {
    if let Ok(mut u) = url::Url::parse(url) {
        if u.has_host() {
            let _ = u.set_username("");
            let _ = u.set_password(None);
        }
        u.set_query(None);
        u.set_fragment(None);
        return u.to_string();
    }
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = path.split(['?', '#']).next().unwrap_or("");
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

/// `text` with every URL in it (`scheme://…` up to whitespace or a quote) redacted by
/// `redact_url`. A `://` with no scheme before it is cut the same way (its `user@` and
/// query go), so nothing that looks like an authority keeps credentials.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // The scheme: the ASCII letters, digits, `+`, `-`, `.` just before `://`.
        let start = rest[..i]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |(j, c)| j + c.len_utf8());
        // Userinfo may hold quotes and brackets (`'` is a legal sub-delim): the token ends no
        // earlier than the authority's last `@`, found as the authority ends (`/ ? #`,
        // whitespace or `"`), so a password never survives by ending the URL early.
        let auth_start = i + 3;
        let auth_end = rest[auth_start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"'))
            .map_or(rest.len(), |j| auth_start + j);
        let from = rest[auth_start..auth_end]
            .rfind('@')
            .map_or(i, |a| auth_start + a + 1);
        let end = rest[from..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .map_or(rest.len(), |j| from + j);
        out.push_str(&rest[..start]);
        let token = &rest[start..end];
        // A trailing `:` or `,` is the sentence's, not the URL's.
        let trimmed = token.trim_end_matches([':', ',', ';', ')']);
        if trimmed.len() < i - start + 3 {
            // The trimming reached into `://` itself: nothing after it to redact.
            out.push_str(token);
        } else {
            out.push_str(&redact_url(trimmed));
            out.push_str(&token[trimmed.len()..]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_removed() {
        assert_eq!(
            redact("GET http://alice:s3cr3t@h:1/m/x.json failed; see https://h/y"),
            "GET http://h:1/m/x.json failed; see https://h/y"
        );
        assert_eq!(redact("no url"), "no url");
        assert_eq!(redact("x://a@b"), "x://b");
        // Quotes and brackets are legal in a password: they don't end the URL before the `@`.
        assert_eq!(
            redact("GET http://alice:pa'ss@h/x failed"),
            "GET http://h/x failed"
        );
        assert_eq!(redact("see <http://u:p<w>@h/x>"), "see <http://h/x>");
        assert_eq!(redact("at 'http://u:p`q@h/x' now"), "at 'http://h/x' now");
    }

    #[test]
    fn urls_lose_credentials_queries_and_fragments() {
        assert_eq!(
            redact("a \"http://u:p@h:81/x?q=1\", then file:///tmp/y and x://a@b/c?d"),
            "a \"http://h:81/x\", then file:///tmp/y and x://b/c"
        );
        assert_eq!(redact("no urls :// here"), "no urls :// here");
        assert_eq!(redact_url("nonsense://[::1@x/?a"), "nonsense://x/");
        assert_eq!(
            redact_url("https://user:secret@index.test/metadata/timestamp.json?token=abc#x"),
            "https://index.test/metadata/timestamp.json"
        );
        assert_eq!(
            redact("see (http://u:p@h/x?t=1): done"),
            "see (http://h/x): done"
        );
    }

    #[test]
    fn no_scheme_still_loses_userinfo_and_query() {
        assert_eq!(redact("at ://a:b@h/x?t=1 now"), "at ://h/x now");
        assert_eq!(redact("ends with ://"), "ends with ://");
        assert_eq!(redact("odd ://:, end"), "odd ://:, end");
        assert_eq!(redact_url("://a@b/c?d"), "://b/c");
        assert_eq!(redact_url("a@b/c?d"), "b/c");
    }
}

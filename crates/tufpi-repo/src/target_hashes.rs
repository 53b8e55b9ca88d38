//! Which hash algorithms the signed metadata lists for every target (`--target-hashes`).
//!
//! Every TUF client checks every hash a target lists and refuses an algorithm it lacks:
//! tuf-js and go-tuf know only `sha256` and `sha512`, so a repository listing `blake2b-256`
//! is unusable to them. The default is therefore `sha256` alone; BLAKE2b-256 stays where PyPI
//! uses it (file paths and simple pages), outside the signed hashes unless an operator asks.

use std::collections::BTreeMap;
use std::fmt;

use tufpi_core::hashes;

use crate::error::RepoError;

/// Algorithms an operator may choose, with their hex digest lengths.
const ALGORITHMS: [(&str, usize); 3] = [("sha256", 64), ("sha512", 128), ("blake2b-256", 64)];

/// The algorithms every target lists: always `sha256` (the one every client verifies), plus
/// any the operator adds. Sorted, no duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHashes(Vec<&'static str>);

impl Default for TargetHashes {
    fn default() -> Self {
        TargetHashes(vec!["sha256"])
    }
}

impl TargetHashes {
    /// What repositories made before the option existed list: `sha256,blake2b-256`.
    pub fn legacy() -> TargetHashes {
        TargetHashes(vec!["blake2b-256", "sha256"])
    }

    /// List every target's hashes as the caller gives them, whatever the algorithms (RSTUF's
    /// API: the caller computes them, e.g. Warehouse sends only `blake2b-256`). Written
    /// `as-given` in settings.
    pub fn as_given() -> TargetHashes {
        TargetHashes(Vec::new())
    }

    /// Whether hashes are listed as given (see [`TargetHashes::as_given`]).
    pub fn is_as_given(&self) -> bool {
        self.0.is_empty()
    }

    /// Parse a comma-separated list, e.g. `sha256,blake2b-256` (or `as-given`).
    pub fn parse(text: &str) -> Result<TargetHashes, RepoError> {
        if text.trim() == AS_GIVEN {
            return Ok(TargetHashes::as_given());
        }
        let mut algs = Vec::new();
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((alg, _)) = ALGORITHMS.iter().find(|(a, _)| *a == name) else {
                return Err(RepoError::UnknownHashAlgorithm {
                    name: name.to_string(),
                    known: ALGORITHMS.map(|(a, _)| a).join(", "),
                });
            };
            algs.push(*alg);
        }
        if !algs.contains(&"sha256") {
            return Err(RepoError::Sha256Required {
                given: text.to_string(),
            });
        }
        algs.sort_unstable();
        algs.dedup();
        Ok(TargetHashes(algs))
    }

    /// The algorithm names, sorted.
    pub fn algorithms(&self) -> &[&'static str] {
        &self.0
    }

    /// The digests of `data` under every listed algorithm.
    pub fn digest(&self, data: &[u8]) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter_map(|a| Some((a.to_string(), hashes::digest_hex(a, data)?)))
            .collect()
    }

    /// The listed algorithms' digests out of `available` (others dropped); refused, naming
    /// the target, if one is missing or not a hex digest of the right length.
    pub fn select(
        &self,
        path: &str,
        available: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, RepoError> {
        if self.is_as_given() {
            if available.is_empty() {
                return Err(RepoError::MissingTargetHash {
                    path: path.to_string(),
                    alg: "any",
                    listed: AS_GIVEN.to_string(),
                });
            }
            return Ok(available.clone());
        }
        let mut out = BTreeMap::new();
        for alg in &self.0 {
            let Some(hex) = available.get(*alg) else {
                return Err(RepoError::MissingTargetHash {
                    path: path.to_string(),
                    alg,
                    listed: self.to_string(),
                });
            };
            let want = ALGORITHMS.iter().find(|(a, _)| a == alg).map_or(0, |x| x.1);
            if hex.len() != want || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(RepoError::BadTargetHash {
                    path: path.to_string(),
                    alg,
                    want,
                    got: hex.clone(),
                });
            }
            out.insert(alg.to_string(), hex.to_ascii_lowercase());
        }
        Ok(out)
    }
}

/// Digests a caller knows for a target beyond those its bin lists (the index keeps both
/// SHA-256 and BLAKE2b-256 of every file and page), so a switch can add an algorithm.
pub type KnownHashes<'a> =
    dyn Fn(&str, &BTreeMap<String, String>) -> Option<BTreeMap<String, String>> + 'a;

/// The settings value of [`TargetHashes::as_given`].
const AS_GIVEN: &str = "as-given";

impl fmt::Display for TargetHashes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_as_given() {
            return f.write_str(AS_GIVEN);
        }
        f.write_str(&self.0.join(","))
    }
}

impl std::str::FromStr for TargetHashes {
    type Err = RepoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TargetHashes::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_given_keeps_what_the_caller_sends() {
        let t = TargetHashes::parse("as-given").unwrap();
        assert!(t.is_as_given());
        assert_eq!(t.to_string(), "as-given");
        assert_eq!(TargetHashes::parse(&t.to_string()).unwrap(), t);
        let given = BTreeMap::from([("blake2b-256".to_string(), "ab".to_string())]);
        assert_eq!(t.select("p", &given).unwrap(), given);
        assert!(t.select("p", &BTreeMap::new()).is_err());
    }

    #[test]
    fn parse_sorts_dedups_and_requires_sha256() {
        let h = TargetHashes::parse("sha256, blake2b-256,sha256").unwrap();
        assert_eq!(h.algorithms(), ["blake2b-256", "sha256"]);
        assert_eq!(h.to_string(), "blake2b-256,sha256");
        assert_eq!(h, TargetHashes::legacy());
        assert_eq!(
            TargetHashes::parse("sha256").unwrap(),
            TargetHashes::default()
        );
        let e = TargetHashes::parse("blake2b-256").unwrap_err();
        assert!(
            matches!(&e, RepoError::Sha256Required { given } if given == "blake2b-256"),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(e.contains("must include sha256"), "{e}");
        let e = TargetHashes::parse("sha256,md5").unwrap_err();
        assert!(
            matches!(&e, RepoError::UnknownHashAlgorithm { name, .. } if name == "md5"),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(
            e.contains("\"md5\" is not one of sha256, sha512, blake2b-256"),
            "{e}"
        );
    }

    #[test]
    fn select_keeps_the_listed_and_names_what_is_missing() {
        let data = b"abc";
        let all = TargetHashes::parse("sha256,sha512,blake2b-256")
            .unwrap()
            .digest(data);
        assert_eq!(all.len(), 3);
        let only = TargetHashes::default().select("p", &all).unwrap();
        assert_eq!(only.keys().collect::<Vec<_>>(), ["sha256"]);
        let sha_only = BTreeMap::from([("sha256".to_string(), all["sha256"].clone())]);
        let e = TargetHashes::legacy()
            .select("pkg/x.whl", &sha_only)
            .unwrap_err();
        assert!(
            matches!(&e, RepoError::MissingTargetHash { path, alg: "blake2b-256", .. } if path == "pkg/x.whl"),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(e.contains("\"pkg/x.whl\": hashes lack blake2b-256"), "{e}");
        let short = BTreeMap::from([("sha256".to_string(), "abc".to_string())]);
        let e = TargetHashes::default().select("p", &short).unwrap_err();
        assert!(
            matches!(&e, RepoError::BadTargetHash { alg: "sha256", want: 64, got, .. } if got == "abc"),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(e.contains("sha256 must be 64 hex digits"), "{e}");
        let upper = BTreeMap::from([("sha256".to_string(), all["sha256"].to_uppercase())]);
        assert_eq!(
            TargetHashes::default().select("p", &upper).unwrap()["sha256"],
            all["sha256"]
        );
    }
}

//! Project names (PEP 503 normalisation, PEP 508 validity), PEP 440 versions and
//! distribution filenames (wheels and sdists) as an upload must spell them.

use std::str::FromStr;

use pep440_rs::Version;

/// What kind of distribution a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistKind {
    /// A wheel (`.whl`, form `filetype` `bdist_wheel`).
    Wheel,
    /// A source distribution (`.tar.gz` or `.zip`, form `filetype` `sdist`).
    Sdist,
}

impl DistKind {
    /// The PEP 691 / warehouse `packagetype` name.
    pub fn packagetype(self) -> &'static str {
        match self {
            DistKind::Wheel => "bdist_wheel",
            DistKind::Sdist => "sdist",
        }
    }
}

pub use tufpi_simple::{normalize, valid_project_name};

/// Parse a PEP 440 version, with a message naming it on failure.
pub fn parse_version(text: &str) -> Result<Version, String> {
    if text.trim() != text || text.is_empty() {
        return Err(format!("Invalid version {text:?}: not a PEP 440 version"));
    }
    Version::from_str(text).map_err(|e| format!("Invalid version {text:?}: {e}"))
}

/// Refuse filenames that could escape a directory or are not plain printable names.
pub fn check_safe_filename(filename: &str) -> Result<(), String> {
    if filename.is_empty() {
        return Err("Missing filename for the uploaded file".into());
    }
    if filename.contains('/') || filename.contains('\\') || filename.contains("..") {
        return Err(format!(
            "Invalid filename {filename:?}: it must not contain '/', '\\' or '..'"
        ));
    }
    if filename.len() > 255
        || filename.starts_with('.')
        || !filename
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '!'))
    {
        return Err(format!(
            "Invalid filename {filename:?}: use ASCII letters, digits and . _ - + ! only"
        ));
    }
    Ok(())
}

/// The kind of distribution `filename` names by its extension.
pub fn kind_of(filename: &str) -> Option<DistKind> {
    if filename.ends_with(".whl") {
        Some(DistKind::Wheel)
    } else if filename.ends_with(".tar.gz") || filename.ends_with(".zip") {
        Some(DistKind::Sdist)
    } else {
        None
    }
}

/// Refuse a PEP 440 local version (`1.0+local`): an index serves public versions only, as
/// PyPI does (a local label is for builds that never leave their origin).
pub fn check_public_version(text: &str, version: &Version) -> Result<(), String> {
    if version.is_local() {
        return Err(format!(
            "Invalid version {text:?}: local versions ('+' and a label) are not allowed on an index; upload a public version"
        ));
    }
    Ok(())
}

/// The canonical form of `version` as PyPI groups releases (`packaging`'s
/// `canonicalize_version`): normalised, trailing `.0`s of the release dropped, so `4`, `4.0`
/// and `4.0.0` are one release.
pub fn canonical_version(version: &Version) -> String {
    let release = version.release();
    let keep = release.iter().rposition(|&n| n != 0).map_or(1, |i| i + 1);
    version
        .clone()
        .with_release(release[..keep].to_vec())
        .to_string()
}

/// A wheel filename's parts (PEP 427 / binary distribution format), split but not
/// normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    /// Distribution name as spelled.
    pub name: String,
    /// Version as spelled.
    pub version: String,
    /// Optional build tag (starts with a digit).
    pub build: Option<String>,
    /// Python tag(s), `.`-separated.
    pub python: String,
    /// ABI tag(s).
    pub abi: String,
    /// Platform tag(s).
    pub platform: String,
}

impl WheelName {
    /// Every `python-abi-platform` tag the compressed tag sets expand to, lowercased, sorted,
    /// without duplicates.
    pub fn tags(&self) -> Vec<String> {
        let split =
            |s: &str| -> Vec<String> { s.split('.').map(str::to_ascii_lowercase).collect() };
        let mut out = Vec::new();
        for p in split(&self.python) {
            for a in split(&self.abi) {
                for pl in split(&self.platform) {
                    out.push(format!("{p}-{a}-{pl}"));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Whether `s` is a non-empty run of ASCII letters, digits and `_`.
fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The operating-system families a wheel platform tag may name (besides `any` and
/// `win32`), each followed by `_` and the rest of the tag: the `sysconfig` platforms of
/// CPython and the manylinux / musllinux / macOS / iOS / Android tag schemes.
const PLATFORM_FAMILIES: &[&str] = &[
    "win",
    "linux",
    "manylinux1",
    "manylinux2010",
    "manylinux2014",
    "manylinux",
    "musllinux",
    "macosx",
    "ios",
    "android",
    "emscripten",
    "pyodide",
    "wasi",
    "freebsd",
    "netbsd",
    "openbsd",
    "dragonfly",
    "solaris",
    "sunos",
    "aix",
    "cygwin",
    "mingw",
    "haiku",
];

/// Whether `tag` is one platform tag (one part of a compressed tag set): `any`, `win32` or
/// a known platform family followed by `_` and letters, digits and `_`. Refuses what is
/// not a platform, such as the `whl` of `…-any.whl.whl`.
pub fn valid_platform_tag(tag: &str) -> bool {
    let t = tag.to_ascii_lowercase();
    if t == "any" || t == "win32" {
        return true;
    }
    is_word(&t)
        && PLATFORM_FAMILIES.iter().any(|f| {
            t.strip_prefix(f)
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|rest| !rest.is_empty())
        })
}

/// Split a wheel filename (`NAME-VERSION(-BUILD)-PYTHON-ABI-PLATFORM.whl`) and check each
/// part's syntax: name of letters, digits, `_` and `.`; a build tag starting with a digit;
/// each python, ABI and platform tag of a compressed set a word, platform tags of a known
/// platform family.
pub fn parse_wheel_filename(filename: &str) -> Result<WheelName, String> {
    let bad = |why: String| format!("Invalid wheel filename {filename:?}: {why}");
    let stem = filename
        .strip_suffix(".whl")
        .ok_or_else(|| bad("it must end with .whl".into()))?;
    let parts: Vec<&str> = stem.split('-').collect();
    let (name, version, build, tags) = match parts[..] {
        [n, v, p, a, pl] => (n, v, None, [p, a, pl]),
        [n, v, b, p, a, pl] => (n, v, Some(b), [p, a, pl]),
        _ => {
            return Err(bad(
                "expected NAME-VERSION(-BUILD)-PYTHON-ABI-PLATFORM.whl".into()
            ))
        }
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
    {
        return Err(bad(format!(
            "the name {name:?} must be letters, digits, '_' and '.'"
        )));
    }
    if version.is_empty() {
        return Err(bad("no version".into()));
    }
    if let Some(b) = build {
        if !b.starts_with(|c: char| c.is_ascii_digit()) || !is_word(b) {
            return Err(bad(format!(
                "the build tag {b:?} must start with a digit and hold only letters, digits and '_'"
            )));
        }
    }
    for (what, set) in ["python", "ABI", "platform"].into_iter().zip(tags) {
        for t in set.split('.') {
            if !is_word(t) {
                return Err(bad(format!("invalid {what} tag {t:?} in {set:?}")));
            }
            if what == "platform" && !valid_platform_tag(t) {
                return Err(bad(format!("unknown platform tag {t:?}")));
            }
        }
    }
    Ok(WheelName {
        name: name.to_string(),
        version: version.to_string(),
        build: build.map(str::to_string),
        python: tags[0].to_string(),
        abi: tags[1].to_string(),
        platform: tags[2].to_string(),
    })
}

/// What makes two distribution files the same file whatever their spelling: the project,
/// the release (canonical version) and, for a wheel, its build tag and expanded tags. An
/// index holds at most one file per identity, ever (PyPI: "File already exists"); a release
/// has at most one sdist, whatever its format (PyPI: "Only one sdist may be uploaded per
/// release").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistIdentity {
    /// Normalised project name.
    pub project: String,
    /// [`canonical_version`].
    pub version: String,
    /// Wheel or sdist.
    pub kind: DistKind,
    /// A wheel's build tag, lowercased.
    pub build: Option<String>,
    /// A wheel's expanded tags ([`WheelName::tags`]); empty for an sdist.
    pub tags: Vec<String>,
}

impl DistIdentity {
    /// The identity of a file of `project` at `version` (a checked upload).
    pub fn new(
        filename: &str,
        project: &str,
        version: &Version,
        kind: DistKind,
    ) -> Result<DistIdentity, String> {
        let (build, tags) = match kind {
            DistKind::Wheel => {
                let w = parse_wheel_filename(filename)?;
                let tags = w.tags();
                (w.build.map(|b| b.to_ascii_lowercase()), tags)
            }
            DistKind::Sdist => (None, Vec::new()),
        };
        Ok(DistIdentity {
            project: normalize(project),
            version: canonical_version(version),
            kind,
            build,
            tags,
        })
    }

    /// Every identity `filename` may stand for, read from the name alone: one for a
    /// well-formed wheel; for an sdist, one per way of splitting `NAME-VERSION` (a legacy
    /// name may hold `-`). Empty if the name is not a distribution's.
    pub fn candidates(filename: &str) -> Vec<DistIdentity> {
        match kind_of(filename) {
            Some(DistKind::Wheel) => parse_wheel_filename(filename)
                .ok()
                .and_then(|w| {
                    let v = Version::from_str(&w.version).ok()?;
                    DistIdentity::new(filename, &w.name, &v, DistKind::Wheel).ok()
                })
                .into_iter()
                .collect(),
            Some(DistKind::Sdist) => {
                let stem = filename
                    .strip_suffix(".tar.gz")
                    .or_else(|| filename.strip_suffix(".zip"))
                    .unwrap_or(filename);
                stem.match_indices('-')
                    .filter_map(|(i, _)| {
                        let (name, ver) = (&stem[..i], &stem[i + 1..]);
                        let v = Version::from_str(ver).ok()?;
                        (!name.is_empty()).then(|| DistIdentity {
                            project: normalize(name),
                            version: canonical_version(&v),
                            kind: DistKind::Sdist,
                            build: None,
                            tags: Vec::new(),
                        })
                    })
                    .collect()
            }
            None => Vec::new(),
        }
    }

    /// The key under which the identity is recorded.
    pub fn key(&self) -> String {
        match self.kind {
            DistKind::Wheel => format!(
                "wheel {} {} {} {}",
                self.project,
                self.version,
                self.build.as_deref().unwrap_or("-"),
                self.tags.join(",")
            ),
            DistKind::Sdist => format!("sdist {} {}", self.project, self.version),
        }
    }

    /// In words, for refusals.
    pub fn describe(&self) -> String {
        match self.kind {
            DistKind::Wheel => format!(
                "a wheel of {} {}{} for {}",
                self.project,
                self.version,
                self.build
                    .as_ref()
                    .map(|b| format!(" (build {b})"))
                    .unwrap_or_default(),
                self.tags.join(", ")
            ),
            DistKind::Sdist => format!("the sdist of {} {}", self.project, self.version),
        }
    }
}

/// Check that `filename` is a wheel or sdist of `project` at `version` (names compared
/// normalised, versions compared as PEP 440 versions); returns its kind.
pub fn check_filename(
    filename: &str,
    project: &str,
    version: &Version,
) -> Result<DistKind, String> {
    check_safe_filename(filename)?;
    let kind = kind_of(filename).ok_or_else(|| {
        format!(
            "Invalid file extension of {filename:?}: upload a wheel (.whl) or an sdist (.tar.gz)"
        )
    })?;
    let want = normalize(project);
    match kind {
        DistKind::Wheel => {
            let w = parse_wheel_filename(filename)?;
            if normalize(&w.name) != want {
                return Err(format!(
                    "Wheel filename {filename:?} is for project {:?}, not {project:?}",
                    w.name
                ));
            }
            match Version::from_str(&w.version) {
                Ok(v) if &v == version => Ok(kind),
                _ => Err(format!(
                    "Wheel filename {filename:?} has version {:?}, but the upload is for version {version}",
                    w.version
                )),
            }
        }
        DistKind::Sdist => {
            let stem = filename
                .strip_suffix(".tar.gz")
                .or_else(|| filename.strip_suffix(".zip"))
                .unwrap_or(filename);
            // The name may itself hold '-' (legacy sdists): try every split.
            let mut name_matched = false;
            for (i, _) in stem.match_indices('-') {
                let (name, ver) = (&stem[..i], &stem[i + 1..]);
                if normalize(name) != want {
                    continue;
                }
                name_matched = true;
                if Version::from_str(ver).is_ok_and(|v| &v == version) {
                    return Ok(kind);
                }
            }
            let expected = format!("{}-{version}.tar.gz", want.replace('-', "_"));
            Err(if name_matched {
                format!("Sdist filename {filename:?} does not name version {version}: expected {expected:?}")
            } else {
                format!(
                    "Sdist filename {filename:?} is not for project {project:?}: expected {expected:?}"
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        parse_version(s).unwrap()
    }

    #[test]
    fn normalises_like_pep_503() {
        for (a, b) in [
            ("Foo", "foo"),
            ("foo_bar", "foo-bar"),
            ("Foo.Bar", "foo-bar"),
            ("foo--_.bar", "foo-bar"),
            ("FOO-BAR", "foo-bar"),
            ("a", "a"),
        ] {
            assert_eq!(normalize(a), b, "{a}");
        }
    }

    #[test]
    fn project_names_follow_pep_508() {
        for ok in ["a", "foo-bar", "Foo.Bar_2", "x1"] {
            assert!(valid_project_name(ok), "{ok}");
        }
        for bad in ["", "-foo", "foo-", "foo bar", "föö", "foo/bar", "_x", "x."] {
            assert!(!valid_project_name(bad), "{bad}");
        }
    }

    #[test]
    fn versions_are_pep_440() {
        assert!(v("1.0.0") == v("1.0"));
        assert_eq!(v("1.0.POST1").to_string(), "1.0.post1");
        for bad in ["", "banana", "1.0 ", "1..0", "1.0-"] {
            assert!(parse_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unsafe_filenames_are_refused() {
        for bad in [
            "../x-1.0.tar.gz",
            "a/b-1.0.tar.gz",
            "a\\b-1.0.tar.gz",
            "x..y-1.0.tar.gz",
            ".hidden-1.0.tar.gz",
            "sp ace-1.0.tar.gz",
            "nul\0-1.0.tar.gz",
            "",
        ] {
            assert!(check_safe_filename(bad).is_err(), "{bad:?}");
        }
        assert!(check_safe_filename("foo_bar-1.0+local-py3-none-any.whl").is_ok());
    }

    #[test]
    fn wheel_filenames() {
        let ver = v("1.0");
        assert_eq!(
            check_filename("foo_bar-1.0-py3-none-any.whl", "Foo.Bar", &ver),
            Ok(DistKind::Wheel)
        );
        assert_eq!(
            check_filename(
                "Foo_Bar-1.0.0-1build-cp311-cp311-manylinux_2_17_x86_64.whl",
                "foo-bar",
                &ver
            ),
            Ok(DistKind::Wheel)
        );
        let e = check_filename("other-1.0-py3-none-any.whl", "foo", &ver).unwrap_err();
        assert!(e.contains("not \"foo\""), "{e}");
        let e = check_filename("foo-2.0-py3-none-any.whl", "foo", &ver).unwrap_err();
        assert!(e.contains("version"), "{e}");
        for bad in [
            "foo-1.0-py3-none.whl",
            "foo-1.0-x-py3-none-any.whl",
            "foo-1.0-py3-none-any-x-y.whl",
            "foo-1.0--none-any.whl",
        ] {
            assert!(check_filename(bad, "foo", &ver).is_err(), "{bad}");
        }
    }

    #[test]
    fn releases_group_canonical_versions() {
        for (a, b) in [
            ("4", "4"),
            ("4.0", "4"),
            ("4.0.0", "4"),
            ("0.0", "0"),
            ("1.10.0", "1.10"),
            ("1.0.post1", "1.post1"),
            ("1.0.0a1", "1a1"),
            ("1!2.0", "1!2"),
            ("2.0.1.0", "2.0.1"),
            ("1.0.dev0", "1.dev0"),
        ] {
            assert_eq!(canonical_version(&v(a)), b, "{a}");
        }
    }

    #[test]
    fn local_versions_are_refused() {
        let e = check_public_version("5+evil", &v("5+evil")).unwrap_err();
        assert!(e.contains("local versions"), "{e}");
        assert!(check_public_version("5.0.post1", &v("5.0.post1")).is_ok());
    }

    #[test]
    fn platform_tags() {
        for ok in [
            "any",
            "win32",
            "win_amd64",
            "win_arm64",
            "linux_x86_64",
            "manylinux1_x86_64",
            "manylinux2014_aarch64",
            "manylinux_2_17_x86_64",
            "musllinux_1_2_x86_64",
            "macosx_10_9_universal2",
            "macosx_11_0_arm64",
            "ios_13_0_arm64_iphoneos",
            "android_21_arm64_v8a",
            "emscripten_3_1_58_wasm32",
            "pyodide_2024_0_wasm32",
            "freebsd_13_2_release_amd64",
            "MANYLINUX_2_17_X86_64",
        ] {
            assert!(valid_platform_tag(ok), "{ok}");
        }
        for bad in [
            "whl",
            "",
            "linux",
            "win",
            "tar",
            "any_",
            "linux_",
            "linux-x86_64",
            "x86_64",
        ] {
            assert!(!valid_platform_tag(bad), "{bad}");
        }
        let e = parse_wheel_filename("alpha-3.0-py3-none-any.whl.whl").unwrap_err();
        assert_eq!(
            e,
            "Invalid wheel filename \"alpha-3.0-py3-none-any.whl.whl\": unknown platform tag \"whl\""
        );
    }

    #[test]
    fn wheel_names_split_and_tags_expand() {
        let w =
            parse_wheel_filename("Foo_Bar-1.0-2b-py2.py3-none-any.macosx_11_0_arm64.whl").unwrap();
        assert_eq!(
            (w.name.as_str(), w.version.as_str(), w.build.as_deref()),
            ("Foo_Bar", "1.0", Some("2b"))
        );
        assert_eq!(
            w.tags(),
            [
                "py2-none-any",
                "py2-none-macosx_11_0_arm64",
                "py3-none-any",
                "py3-none-macosx_11_0_arm64"
            ]
        );
        let a = parse_wheel_filename("x-1-py3.py2-NONE-any.whl").unwrap();
        let b = parse_wheel_filename("x-1-py2.py3.py2-none-any.whl").unwrap();
        assert_eq!(a.tags(), b.tags());
    }

    #[test]
    fn identities_ignore_spelling() {
        let id = |f: &str, p: &str, ver: &str| {
            let k = kind_of(f).unwrap();
            DistIdentity::new(f, p, &v(ver), k).unwrap().key()
        };
        let a = id("alpha-4.0-py3-none-any.whl", "alpha", "4.0");
        assert_eq!(a, "wheel alpha 4 - py3-none-any");
        assert_eq!(a, id("Alpha-4.0.0-py3-none-any.whl", "ALPHA", "4.0.0"));
        assert_eq!(a, id("alpha-4-PY3-none-any.whl", "alpha", "4"));
        assert_ne!(a, id("alpha-4-1-py3-none-any.whl", "alpha", "4"));
        assert_ne!(a, id("alpha-4-py2.py3-none-any.whl", "alpha", "4"));
        let s = id("beta-2.0.tar.gz", "beta", "2.0");
        assert_eq!(s, "sdist beta 2");
        assert_eq!(s, id("Beta-2.zip", "beta", "2"));
        assert_eq!(s, id("beta-2.0.0.tar.gz", "beta", "2.0.0"));
        // From the name alone: every split of an sdist's NAME-VERSION.
        let keys: Vec<String> = DistIdentity::candidates("foo-bar-1.0.tar.gz")
            .iter()
            .map(DistIdentity::key)
            .collect();
        assert_eq!(keys, ["sdist foo-bar 1"]);
        let keys: Vec<String> = DistIdentity::candidates("foo-1-2.tar.gz")
            .iter()
            .map(DistIdentity::key)
            .collect();
        assert_eq!(keys, ["sdist foo 1.post2", "sdist foo-1 2"]);
        assert_eq!(
            DistIdentity::candidates("Alpha-4.0.0-py3-none-any.whl")[0].key(),
            a
        );
        assert!(DistIdentity::candidates("notes.txt").is_empty());
        assert!(DistIdentity::candidates("x-1-py3-none-any.whl.whl").is_empty());
    }

    #[test]
    fn sdist_filenames() {
        let ver = v("0.1.0");
        for ok in [
            "foo_bar-0.1.0.tar.gz",
            "foo-bar-0.1.tar.gz",
            "Foo.Bar-0.1.0.zip",
        ] {
            assert_eq!(
                check_filename(ok, "foo-bar", &ver),
                Ok(DistKind::Sdist),
                "{ok}"
            );
        }
        let e = check_filename("foo_bar-0.2.tar.gz", "foo-bar", &ver).unwrap_err();
        assert!(e.contains("does not name version"), "{e}");
        let e = check_filename("baz-0.1.0.tar.gz", "foo-bar", &ver).unwrap_err();
        assert!(e.contains("not for project"), "{e}");
        let e = check_filename("foo_bar-0.1.0.exe", "foo-bar", &ver).unwrap_err();
        assert!(e.contains("extension"), "{e}");
        assert!(check_filename("foo_bar-0.1.0.tar.bz2", "foo-bar", &ver).is_err());
    }
}

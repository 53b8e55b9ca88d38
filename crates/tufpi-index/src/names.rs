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

fn is_tag(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
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
            let stem = &filename[..filename.len() - 4];
            let parts: Vec<&str> = stem.split('-').collect();
            let well_formed = match parts.len() {
                5 => parts[2..].iter().all(|t| is_tag(t)),
                6 => {
                    parts[2].starts_with(|c: char| c.is_ascii_digit())
                        && parts[2..].iter().all(|t| is_tag(t))
                }
                _ => false,
            };
            if !well_formed || !is_tag(parts[0]) {
                return Err(format!(
                    "Invalid wheel filename {filename:?}: expected NAME-VERSION(-BUILD)-PYTHON-ABI-PLATFORM.whl"
                ));
            }
            if normalize(parts[0]) != want {
                return Err(format!(
                    "Wheel filename {filename:?} is for project {:?}, not {project:?}",
                    parts[0]
                ));
            }
            match Version::from_str(parts[1]) {
                Ok(v) if &v == version => Ok(kind),
                _ => Err(format!(
                    "Wheel filename {filename:?} has version {:?}, but the upload is for version {version}",
                    parts[1]
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

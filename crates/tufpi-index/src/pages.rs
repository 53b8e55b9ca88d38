//! Simple repository pages: PEP 503 HTML and PEP 691 JSON, with PEP 592 yanking, PEP 658/714
//! core metadata and PEP 700 `versions`, `size` and `upload-time`. Pure functions of the
//! project's files; the index renders each page once per change and keeps its bytes.

use std::collections::BTreeSet;
use std::str::FromStr;
pub use tufpi_simple::{HTML_TYPE, JSON_TYPE};

use pep440_rs::Version;
use serde_json::{json, Map, Value};

/// The simple API version these pages implement (PEP 700).
pub const API_VERSION: &str = "1.1";

/// Size and digests of a stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// Length in bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// BLAKE2b-256, hex.
    pub blake2b: String,
}

/// A distribution file of a project as the pages list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// File name.
    pub filename: String,
    /// Normalised project name.
    pub project: String,
    /// PEP 440 version (normalised).
    pub version: String,
    /// `bdist_wheel` or `sdist`.
    pub packagetype: String,
    /// Target path, `packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/<filename>`.
    pub path: String,
    /// Size and digests of the file.
    pub digests: Digests,
    /// `Requires-Python`, if declared.
    pub requires_python: Option<String>,
    /// The extracted core metadata file (`<path>.metadata`), for wheels.
    pub metadata: Option<Digests>,
    /// Upload time, `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub upload_time: String,
    /// `Some(reason)` when yanked (the reason may be empty).
    pub yanked: Option<String>,
}

pub use tufpi_simple::escape;

/// The URL of a file relative to its project page (`/simple/<project>/`): pages stay valid
/// whatever host or port serves them.
pub fn file_url(f: &FileRow) -> String {
    format!("../../{}", f.path)
}

fn sorted(files: &[FileRow]) -> Vec<&FileRow> {
    let mut v: Vec<&FileRow> = files.iter().collect();
    v.sort_by(|a, b| {
        let va = Version::from_str(&a.version).ok();
        let vb = Version::from_str(&b.version).ok();
        va.cmp(&vb).then_with(|| a.filename.cmp(&b.filename))
    });
    v
}

/// Every version with a file, in PEP 440 order.
pub fn versions(files: &[FileRow]) -> Vec<String> {
    let set: BTreeSet<(Option<Version>, &str)> = files
        .iter()
        .map(|f| (Version::from_str(&f.version).ok(), f.version.as_str()))
        .collect();
    let mut out: Vec<String> = Vec::new();
    for (_, v) in set {
        if !out.iter().any(|o| o == v) {
            out.push(v.to_string());
        }
    }
    out
}

/// The PEP 503 HTML detail page of `project` (normalised name).
pub fn project_html(project: &str, files: &[FileRow]) -> Vec<u8> {
    let name = escape(project);
    let mut s = format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"{API_VERSION}\">\n    <title>Links for {name}</title>\n  </head>\n  <body>\n    <h1>Links for {name}</h1>\n"
    );
    for f in sorted(files) {
        s.push_str(&format!(
            "    <a href=\"{}#sha256={}\"",
            escape(&file_url(f)),
            f.digests.sha256
        ));
        if let Some(rp) = &f.requires_python {
            s.push_str(&format!(" data-requires-python=\"{}\"", escape(rp)));
        }
        if let Some(m) = &f.metadata {
            s.push_str(&format!(
                " data-dist-info-metadata=\"sha256={0}\" data-core-metadata=\"sha256={0}\"",
                m.sha256
            ));
        }
        if let Some(reason) = &f.yanked {
            s.push_str(&format!(" data-yanked=\"{}\"", escape(reason)));
        }
        s.push_str(&format!(">{}</a><br />\n", escape(&f.filename)));
    }
    s.push_str("  </body>\n</html>\n");
    s.into_bytes()
}

/// The PEP 691 JSON detail page of `project` (normalised name).
pub fn project_json(project: &str, files: &[FileRow]) -> Vec<u8> {
    let list: Vec<Value> = sorted(files)
        .into_iter()
        .map(|f| {
            let mut m = Map::new();
            m.insert("filename".into(), json!(f.filename));
            m.insert("url".into(), json!(file_url(f)));
            m.insert("hashes".into(), json!({ "sha256": f.digests.sha256 }));
            if let Some(rp) = &f.requires_python {
                m.insert("requires-python".into(), json!(rp));
            }
            if let Some(md) = &f.metadata {
                m.insert("core-metadata".into(), json!({ "sha256": md.sha256 }));
                m.insert("dist-info-metadata".into(), json!({ "sha256": md.sha256 }));
            }
            let yanked = match &f.yanked {
                None => json!(false),
                Some(r) if r.is_empty() => json!(true),
                Some(r) => json!(r),
            };
            m.insert("yanked".into(), yanked);
            m.insert("size".into(), json!(f.digests.size));
            m.insert("upload-time".into(), json!(f.upload_time));
            Value::Object(m)
        })
        .collect();
    let page = json!({
        "meta": { "api-version": API_VERSION },
        "name": project,
        "versions": versions(files),
        "files": list,
    });
    serde_json::to_vec(&page).unwrap_or_default()
}

/// The PEP 503 HTML project list: (normalised, display) names.
pub fn index_html(projects: &[(String, String)]) -> Vec<u8> {
    let mut s = format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"{API_VERSION}\">\n    <title>Simple index</title>\n  </head>\n  <body>\n"
    );
    for (norm, display) in projects {
        s.push_str(&format!(
            "    <a href=\"{}/\">{}</a><br />\n",
            escape(norm),
            escape(display)
        ));
    }
    s.push_str("  </body>\n</html>\n");
    s.into_bytes()
}

/// The PEP 691 JSON project list: (normalised, display) names.
pub fn index_json(projects: &[(String, String)]) -> Vec<u8> {
    let list: Vec<Value> = projects
        .iter()
        .map(|(_, display)| json!({ "name": display }))
        .collect();
    serde_json::to_vec(&json!({ "meta": { "api-version": API_VERSION }, "projects": list }))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(seed: char, size: u64) -> Digests {
        Digests {
            size,
            sha256: seed.to_string().repeat(64),
            blake2b: "b".repeat(64),
        }
    }

    fn file(name: &str, version: &str, meta: bool, yanked: Option<&str>) -> FileRow {
        FileRow {
            filename: name.into(),
            project: "foo-bar".into(),
            version: version.into(),
            packagetype: "bdist_wheel".into(),
            path: format!("packages/bb/bb/{}/{name}", "b".repeat(60)),
            digests: digests('a', 123),
            requires_python: Some(">=3.8".into()),
            metadata: meta.then(|| digests('c', 10)),
            upload_time: "2024-01-02T03:04:05.000006Z".into(),
            yanked: yanked.map(str::to_string),
        }
    }

    fn sample() -> Vec<FileRow> {
        vec![
            file("foo_bar-1.10-py3-none-any.whl", "1.10", true, None),
            file("foo_bar-1.9.tar.gz", "1.9", false, Some("broken <build>")),
            file("foo_bar-1.9-py3-none-any.whl", "1.9", true, Some("")),
        ]
    }

    #[test]
    fn json_page_has_pep_691_700_658_fields() {
        let v: Value = serde_json::from_slice(&project_json("foo-bar", &sample())).unwrap();
        assert_eq!(v["meta"]["api-version"], "1.1");
        assert_eq!(v["name"], "foo-bar");
        assert_eq!(v["versions"], json!(["1.9", "1.10"]));
        let files = v["files"].as_array().unwrap();
        assert_eq!(files.len(), 3);
        let whl = &files[2];
        assert_eq!(whl["filename"], "foo_bar-1.10-py3-none-any.whl");
        assert!(whl["url"]
            .as_str()
            .unwrap()
            .starts_with("../../packages/bb/bb/"));
        assert_eq!(whl["hashes"]["sha256"], "a".repeat(64));
        assert_eq!(whl["core-metadata"]["sha256"], "c".repeat(64));
        assert_eq!(whl["dist-info-metadata"]["sha256"], "c".repeat(64));
        assert_eq!(whl["requires-python"], ">=3.8");
        assert_eq!(whl["size"], 123);
        assert_eq!(whl["upload-time"], "2024-01-02T03:04:05.000006Z");
        assert_eq!(whl["yanked"], false);
        // 1.9: the sdist yanked with a reason, the wheel without one.
        assert_eq!(files[0]["filename"], "foo_bar-1.9-py3-none-any.whl");
        assert_eq!(files[0]["yanked"], true);
        assert_eq!(files[1]["yanked"], "broken <build>");
        assert!(files[1].get("core-metadata").is_none());
    }

    #[test]
    fn html_page_has_pep_503_592_658_attributes() {
        let html = String::from_utf8(project_html("foo-bar", &sample())).unwrap();
        assert!(html.contains("<meta name=\"pypi:repository-version\" content=\"1.1\">"));
        assert!(html.contains("<title>Links for foo-bar</title>"));
        let line = html
            .lines()
            .find(|l| l.contains(">foo_bar-1.10-py3-none-any.whl</a>"))
            .unwrap();
        assert!(
            line.contains(&format!("#sha256={}\"", "a".repeat(64))),
            "{line}"
        );
        assert!(line.contains("href=\"../../packages/bb/bb/"), "{line}");
        assert!(line.contains(&format!("data-core-metadata=\"sha256={}\"", "c".repeat(64))));
        assert!(line.contains(&format!(
            "data-dist-info-metadata=\"sha256={}\"",
            "c".repeat(64)
        )));
        assert!(line.contains("data-requires-python=\"&gt;=3.8\""), "{line}");
        assert!(!line.contains("data-yanked"));
        assert!(html.contains("data-yanked=\"broken &lt;build&gt;\">foo_bar-1.9.tar.gz</a>"));
        assert!(html.contains("data-yanked=\"\">foo_bar-1.9-py3-none-any.whl</a>"));
    }

    #[test]
    fn pages_are_deterministic() {
        let mut rev = sample();
        rev.reverse();
        assert_eq!(
            project_json("foo-bar", &sample()),
            project_json("foo-bar", &rev)
        );
        assert_eq!(
            project_html("foo-bar", &sample()),
            project_html("foo-bar", &rev)
        );
    }

    #[test]
    fn index_pages_list_projects() {
        let p = vec![("foo-bar".to_string(), "Foo_Bar".to_string())];
        let html = String::from_utf8(index_html(&p)).unwrap();
        assert!(html.contains("<a href=\"foo-bar/\">Foo_Bar</a>"));
        let v: Value = serde_json::from_slice(&index_json(&p)).unwrap();
        assert_eq!(v["projects"], json!([{ "name": "Foo_Bar" }]));
        assert_eq!(v["meta"]["api-version"], "1.1");
    }
}

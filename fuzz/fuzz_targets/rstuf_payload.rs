//! RSTUF API request payloads (`tufpi_rstuf::payload`) on arbitrary bytes: the input's first
//! byte picks the request (bootstrap, artifacts add/delete, root update, online roles, sign,
//! sign delete, config), the rest is the body, read as the routes read it (`parse_body`, the
//! pre-1.0 `targets` alias). Checks: nothing panics; a payload is accepted iff no error was
//! recorded, and a refusal's 422 body lists at least one located error; every accepted
//! artifact path is relative without empty, `.` or `..` segments and every added artifact has
//! a hash; `add_task_id` puts the id into every accepted artifact's `custom`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tufpi_rstuf::payload;
use tufpi_rstuf::validate::{parse_body, Check};

fn plain(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// A refusal's FastAPI body: `detail` is a non-empty list of located errors.
fn refused(c: Check) {
    let d = c.into_detail();
    let list = d["detail"].as_array().expect("detail is a list");
    assert!(!list.is_empty(), "refused without an error");
    for e in list {
        assert!(e["type"].is_string() && e["msg"].is_string(), "{e}");
        assert_eq!(e["loc"][0], "body", "{e}");
    }
    let _ = d.to_string();
}

/// `accepted` is what the parser returned; it must agree with the errors recorded.
fn agree(c: Check, accepted: bool) {
    if accepted {
        assert!(c.ok(), "accepted with errors: {}", c.into_detail());
    } else {
        refused(c);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let mut v = match parse_body(body) {
        Ok(v) => v,
        Err(d) => {
            assert_eq!(d["detail"][0]["type"], "json_invalid");
            return;
        }
    };
    let mut c = Check::new();
    match which % 8 {
        0 => {
            let b = payload::bootstrap(&mut c, &v);
            if let Some(b) = &b {
                assert!(b.bins.is_power_of_two() && (2..=payload::MAX_BINS).contains(&b.bins));
                assert!(b.root.as_root().is_some());
            }
            agree(c, b.is_some());
        }
        1 => {
            payload::targets_alias(&mut v);
            let a = payload::add_artifacts(&mut c, &v);
            if let Some(a) = &a {
                payload::check_customs(&mut c, a);
                for art in &a.artifacts {
                    assert!(plain(&art.path), "accepted path {:?}", art.path);
                    assert!(
                        !art.hashes.is_empty(),
                        "accepted {:?} with no hash",
                        art.path
                    );
                }
                if c.ok() {
                    payload::add_task_id(&mut v, "f00d");
                    let mut again = Check::new();
                    let b = payload::add_artifacts(&mut again, &v)
                        .expect("still accepted with the task id added");
                    assert_eq!(b.artifacts.len(), a.artifacts.len());
                    for art in &b.artifacts {
                        let custom = art.custom.as_ref().expect("custom set");
                        assert_eq!(custom["added_by_task_id"], "f00d");
                    }
                    return;
                }
                refused(c);
                return;
            }
            agree(c, false);
        }
        2 => {
            payload::targets_alias(&mut v);
            let d = payload::delete_artifacts(&mut c, &v);
            if let Some(d) = &d {
                assert!(d.artifacts.iter().all(|p| plain(p)), "{:?}", d.artifacts);
            }
            agree(c, d.is_some());
        }
        3 => {
            let m = payload::metadata_update(&mut c, &v);
            agree(c, m.is_some());
        }
        4 => {
            let r = payload::online_roles(&mut c, &v);
            agree(c, r.is_some());
        }
        5 => {
            let s = payload::sign(&mut c, &v);
            agree(c, s.is_some());
        }
        6 => {
            let r = payload::role(&mut c, &v);
            agree(c, r.is_some());
        }
        _ => {
            let e = payload::config(&mut c, &v);
            if let Some(e) = &e {
                let max = tufpi_rstuf::validate::MAX_DAYS;
                assert!(e.values().all(|d| (1..=max).contains(d)), "{e:?}");
            }
            agree(c, e.is_some());
        }
    }
});

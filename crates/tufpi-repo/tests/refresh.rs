//! Expiry refresh re-signs only the online roles within the margin; warnings for offline roles
//! nearing expiry and for anything expired.

mod common;

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use common::{assert_targets, record, target, verify_published};
use tufpi_repo::{Change, RepoConfig, Repository};

fn bins(repo: &Repository) -> BTreeMap<String, tufpi_repo::RoleState> {
    repo.role_states()
        .iter()
        .filter(|(n, _)| tufpi_repo::layout::succinct_index(repo.config(), n).is_some())
        .map(|(n, s)| (n.clone(), *s))
        .collect()
}

#[test]
fn refresh_re_signs_only_roles_within_the_margin() {
    let tmp = common::TestDir::new(module_path!());
    let cfg = RepoConfig {
        bit_length: 4,
        ..RepoConfig::default()
    };
    let mut repo = Repository::init_dev(tmp.path(), cfg).unwrap();
    let (p, e) = target(3, 0);
    repo.enqueue(&[Change::Add(record(&p, &e))]).unwrap();
    repo.publish(10).unwrap();
    let model = BTreeMap::from([(p, e)]);
    let before = repo.role_states().clone();
    let before_bins = bins(&repo);
    assert_eq!(before_bins.len(), 16);
    // Bins expire staggered over the second day: 1 day + i * 1.5 h, except the one just
    // published (1 day). Margin 30 h 45 min: ≥ 45 min away from any bin's expiry.
    let margin = Duration::hours(30) + Duration::minutes(45);
    let limit = (Utc::now() + margin).timestamp();
    let due: Vec<&String> = before_bins
        .iter()
        .filter(|(_, s)| s.expires <= limit)
        .map(|(n, _)| n)
        .collect();
    assert!(!due.is_empty() && due.len() < 16, "{due:?}");
    for s in before_bins.values() {
        assert!(
            (s.expires - limit).abs() > 600,
            "a bin expires too close to the margin"
        );
    }
    let n = repo.refresh(margin).unwrap();
    assert_eq!(n, due.len());
    let after = repo.role_states().clone();
    for (name, st) in &before {
        let now_st = after[name];
        let expect_bump = due.contains(&name) || name == "snapshot" || name == "timestamp";
        assert_eq!(
            now_st.version,
            st.version + u64::from(expect_bump),
            "{name}: version"
        );
        if expect_bump {
            // Re-signed for the online period from now.
            let fresh = (Utc::now() + Duration::days(1)).timestamp();
            assert!(
                (now_st.expires - fresh).abs() < 120,
                "{name}: expiry {}",
                now_st.expires
            );
        } else {
            assert_eq!(now_st.expires, st.expires, "{name}: expiry moved");
        }
    }
    // Offline roles untouched.
    for r in ["root", "targets", "bins"] {
        assert_eq!(after[r], before[r], "{r}");
    }
    let pub_ = verify_published(&repo.metadata_dir()).unwrap();
    assert_targets(&pub_, &model);
    for (name, v) in &pub_.bin_versions {
        assert_eq!(*v, after[name].version, "{name}");
    }
    assert_eq!(pub_.snapshot_version, before["snapshot"].version + 1);

    // Nothing within 1 h: nothing happens, no new files.
    let files = std::fs::read_dir(repo.metadata_dir()).unwrap().count();
    let ts = std::fs::read(repo.metadata_dir().join("timestamp.json")).unwrap();
    assert_eq!(repo.refresh(Duration::hours(1)).unwrap(), 0);
    assert_eq!(repo.role_states(), &after);
    assert_eq!(
        std::fs::read_dir(repo.metadata_dir()).unwrap().count(),
        files
    );
    assert_eq!(
        std::fs::read(repo.metadata_dir().join("timestamp.json")).unwrap(),
        ts
    );

    // 48 h: every bin.
    assert_eq!(repo.refresh(Duration::hours(48)).unwrap(), 16);
    let pub2 = verify_published(&repo.metadata_dir()).unwrap();
    for (name, v) in &pub2.bin_versions {
        assert_eq!(*v, pub_.bin_versions[name] + 1, "{name}");
    }
    assert_targets(&pub2, &model);
    assert_eq!(pub2.targets_version, pub_.targets_version);
    assert_eq!(pub2.bins_version, pub_.bins_version);
    drop(repo);
    // State persisted.
    let repo = Repository::open(tmp.path()).unwrap();
    assert_eq!(
        repo.role_states()["snapshot"].version,
        pub2.snapshot_version
    );
}

#[test]
fn warnings_for_offline_roles_nearing_expiry() {
    let tmp = common::TestDir::new(module_path!());
    let cfg = RepoConfig {
        bit_length: 2,
        root_expiry: Duration::days(20),
        offline_expiry: Duration::days(10),
        ..RepoConfig::default()
    };
    let repo = Repository::init_dev(tmp.path(), cfg).unwrap();
    let w = repo.warnings(Duration::days(30));
    for role in ["root", "targets", "bins"] {
        assert!(
            w.iter()
                .any(|l| l.starts_with(&format!("{role} v1 (offline)"))),
            "{role}: {w:?}"
        );
    }
    // Online roles expire within a day but are refreshed automatically: no warning.
    assert_eq!(w.len(), 3, "{w:?}");
    let w = repo.warnings(Duration::days(15));
    assert_eq!(w.len(), 2, "root (20 d) is beyond 15 d: {w:?}");
    assert!(repo.warnings(Duration::days(5)).is_empty());
}

#[test]
fn targets_online_is_not_an_offline_role() {
    let tmp = common::TestDir::new(module_path!());
    let cfg = RepoConfig {
        bit_length: 2,
        targets_online: true,
        offline_expiry: Duration::days(10),
        ..RepoConfig::default()
    };
    let repo = Repository::init_dev(tmp.path(), cfg).unwrap();
    assert!(repo.role_states().get("bins").is_none());
    let w = repo.warnings(Duration::days(30));
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn expired_roles_warn_loudly() {
    let tmp = common::TestDir::new(module_path!());
    let cfg = RepoConfig {
        bit_length: 3,
        online_expiry: Duration::hours(-1),
        ..RepoConfig::default()
    };
    let repo = Repository::init_dev(tmp.path(), cfg).unwrap();
    let w = repo.warnings(Duration::days(30));
    assert!(
        w.iter().any(|l| l.starts_with("snapshot v1 EXPIRED")),
        "{w:?}"
    );
    assert!(
        w.iter().any(|l| l.starts_with("timestamp v1 EXPIRED")),
        "{w:?}"
    );
    assert!(
        w.iter().any(|l| l.starts_with("8 bin roles EXPIRED")),
        "{w:?}"
    );
    assert!(verify_published(&repo.metadata_dir()).is_err());
}

#[test]
fn refresh_after_expiry_brings_the_repository_back() {
    // Online roles that expire 2 s after signing: wait them out, then refresh.
    let tmp = common::TestDir::new(module_path!());
    let cfg = RepoConfig {
        bit_length: 3,
        online_expiry: Duration::seconds(2),
        ..RepoConfig::default()
    };
    let mut repo = Repository::init_dev(tmp.path(), cfg).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3100));
    assert!(verify_published(&repo.metadata_dir()).is_err());
    assert!(repo
        .warnings(Duration::days(1))
        .iter()
        .any(|w| w.contains("EXPIRED")));
    // A margin beyond the expiry period catches everything; the result is fresh for 2 s.
    assert_eq!(repo.refresh(Duration::seconds(10)).unwrap(), 8);
    let p = verify_published(&repo.metadata_dir()).unwrap();
    assert_eq!(p.snapshot_version, 2);
    assert!(p.bin_versions.values().all(|v| *v == 2));
}

/// With `targets_online`, targets is signed by the online key: refresh must re-sign it when it
/// nears expiry like any other online role (nobody holds an offline key for it).
#[test]
fn refresh_re_signs_online_targets() {
    let tmp = common::TestDir::new(module_path!());
    let cfg = RepoConfig {
        bit_length: 2,
        targets_online: true,
        offline_expiry: Duration::hours(2),
        ..RepoConfig::default()
    };
    let mut repo = Repository::init_dev(tmp.path(), cfg).unwrap();
    let (p, e) = target(3, 0);
    repo.enqueue(&[Change::Add(record(&p, &e))]).unwrap();
    repo.publish(10).unwrap();
    assert_eq!(repo.role_states()["targets"].version, 1);
    // Nothing but targets is due within 3 h.
    repo.refresh(Duration::hours(3)).unwrap();
    let st = repo.role_states()["targets"];
    assert_eq!(
        st.version, 2,
        "online targets within the margin was not re-signed"
    );
    assert!(st.expires > (Utc::now() + Duration::hours(1)).timestamp());
    let pub_ = verify_published(&repo.metadata_dir()).unwrap();
    assert_eq!(pub_.targets_version, 2);
    assert_targets(&pub_, &BTreeMap::from([(p, e)]));
}

//! The delegation walk: pre-order depth-first search in delegation order, `terminating`,
//! cycles, the `max_delegations` cap, TAP 15 succinct bins and `path_hash_prefixes`.

mod sim;

use sim::*;
use tufpi_client::ClientError;

fn url(role: &str, version: u64) -> String {
    format!("{META_URL}{version}.{role}.json")
}

/// Names of the targets roles fetched, in order.
fn roles_fetched(sim: &Sim) -> Vec<String> {
    sim.fetched()
        .iter()
        .filter_map(|u| u.strip_prefix(META_URL))
        .filter_map(|f| f.strip_suffix(".json"))
        .filter_map(|f| f.split_once('.').map(|(_, r)| r.to_string()))
        .filter(|r| !["root", "snapshot", "timestamp"].contains(&r.as_str()))
        .collect()
}

#[test]
fn preorder_depth_first_in_delegation_order() {
    let sim = Sim::new();
    {
        // targets → a → (a1, a2), targets → b; the target is in b and in a2.
        let mut r = sim.repo();
        r.delegate("targets", "a", &["*"], false);
        r.delegate("targets", "b", &["*"], false);
        r.delegate("a", "a1", &["*"], false);
        r.delegate("a", "a2", &["*"], false);
        r.add_target("a2", "f", b"from a2");
        r.add_target("b", "f", b"from b");
        r.publish(&["targets", "a", "b", "a1", "a2"]);
    }
    let c = Client::new(&sim);
    let info = c.targetinfo(&sim, "f").unwrap().unwrap();
    assert_eq!(info.length, 7);
    assert_eq!(roles_fetched(&sim), ["targets", "a", "a1", "a2"]);

    sim.clear_fetched();
    assert_eq!(c.targetinfo(&sim, "g").unwrap(), None);
    // All from the local cache now, b newly fetched last.
    assert_eq!(roles_fetched(&sim), ["b"]);
}

#[test]
fn first_matching_role_wins() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.delegate("targets", "first", &["pkg/*"], false);
        r.delegate("targets", "second", &["pkg/*"], false);
        r.add_target("first", "pkg/x", b"first!");
        r.add_target("second", "pkg/x", b"second");
        r.publish(&["targets", "first", "second"]);
    }
    let first = sim.repo().targets_body("first").targets["pkg/x"].clone();
    let c = Client::new(&sim);
    assert_eq!(c.targetinfo(&sim, "pkg/x").unwrap().unwrap(), first);
    assert!(!roles_fetched(&sim).contains(&"second".to_string()));
    let file = c.download(&sim, "pkg/x").unwrap();
    assert_eq!(std::fs::read(file).unwrap(), b"first!");

    // Swap the order: now "second" wins.
    {
        let mut r = sim.repo();
        let d = r.targets_body("targets").delegations.as_mut().unwrap();
        d.roles.as_mut().unwrap().reverse();
        r.publish(&["targets"]);
    }
    let second = sim.repo().targets_body("second").targets["pkg/x"].clone();
    assert_eq!(c.targetinfo(&sim, "pkg/x").unwrap().unwrap(), second);
}

#[test]
fn terminating_role_stops_backtracking() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.delegate("targets", "term", &["*"], true);
        r.delegate("targets", "other", &["*"], false);
        r.delegate("term", "child", &["*"], false);
        r.add_target("other", "f", b"from other");
        r.add_target("child", "in-child", b"child");
        r.publish(&["targets", "term", "other", "child"]);
    }
    let c = Client::new(&sim);
    // Not in term or its children: the search stops, "other" is never consulted.
    assert_eq!(c.targetinfo(&sim, "f").unwrap(), None);
    assert_eq!(roles_fetched(&sim), ["targets", "term", "child"]);
    // Children of a terminating role are still searched.
    assert!(c.targetinfo(&sim, "in-child").unwrap().is_some());

    // Non-terminating: backtracks to "other".
    {
        let mut r = sim.repo();
        let d = r.targets_body("targets").delegations.as_mut().unwrap();
        d.roles.as_mut().unwrap()[0].terminating = false;
        r.publish(&["targets"]);
    }
    let info = c.targetinfo(&sim, "f").unwrap().unwrap();
    assert_eq!(info.length, 10);
}

#[test]
fn terminating_role_not_matching_does_not_stop() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.delegate("targets", "term", &["other/*"], true);
        r.delegate("targets", "b", &["*"], false);
        r.add_target("b", "f", b"f");
        r.publish(&["targets", "term", "b"]);
    }
    let c = Client::new(&sim);
    assert!(c.targetinfo(&sim, "f").unwrap().is_some());
    assert_eq!(roles_fetched(&sim), ["targets", "b"]);
}

#[test]
fn cycles_terminate() {
    let sim = Sim::new();
    {
        // a → b → a, b → targets-like self loop too.
        let mut r = sim.repo();
        r.delegate("targets", "a", &["*"], false);
        r.delegate("a", "b", &["*"], false);
        r.delegate("b", "a", &["*"], false);
        r.delegate("b", "b", &["*"], false);
        r.publish(&["targets", "a", "b"]);
    }
    let c = Client::new(&sim);
    assert_eq!(c.targetinfo(&sim, "missing").unwrap(), None);
    let fetched = roles_fetched(&sim);
    assert_eq!(fetched, ["targets", "a", "b"]);
    assert_eq!(sim.count(&url("a", 1)), 1);
}

fn chain(n: usize) -> Sim {
    let sim = Sim::new();
    {
        // targets → r1 → r2 → … → rn, each holding "tN".
        let mut r = sim.repo();
        let mut parent = "targets".to_string();
        let mut names = vec!["targets".to_string()];
        for i in 1..=n {
            let name = format!("r{i}");
            r.delegate(&parent, &name, &["*"], false);
            r.add_target(&name, &format!("t{i}"), name.as_bytes());
            names.push(name.clone());
            parent = name;
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        r.publish(&refs);
    }
    sim
}

#[test]
fn max_delegations_caps_the_walk() {
    let sim = chain(10);
    let mut c = Client::new(&sim);
    c.config.max_delegations = 5;
    // Five delegated roles may be visited besides top-level targets, as in python-tuf.
    assert!(c.targetinfo(&sim, "t5").unwrap().is_some());
    sim.clear_fetched();
    assert_eq!(c.targetinfo(&sim, "t6").unwrap(), None);
    assert!(!roles_fetched(&sim).contains(&"r6".to_string()));
    assert_eq!(c.targetinfo(&sim, "t10").unwrap(), None);
    assert!(!sim.fetched().contains(&url("r6", 1)));
    // With the default cap (32) the whole chain is walked.
    c.config = tufpi_client::UpdaterConfig::default();
    assert!(c.targetinfo(&sim, "t10").unwrap().is_some());
}

#[test]
fn max_delegations_counts_a_wide_graph_too() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        let mut names = vec!["targets".to_string()];
        for i in 0..8 {
            let name = format!("w{i}");
            r.delegate("targets", &name, &["*"], false);
            names.push(name);
        }
        r.add_target("w7", "deep", b"x");
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        r.publish(&refs);
    }
    let mut c = Client::new(&sim);
    c.config.max_delegations = 3;
    assert_eq!(c.targetinfo(&sim, "deep").unwrap(), None);
    assert_eq!(roles_fetched(&sim), ["targets", "w0", "w1", "w2"]);
}

fn succinct(bits: u32, prefix: &str, bin: u64, name: &str) {
    let sim = Sim::new();
    let path = (0..)
        .map(|i| format!("packages/p{i}.whl"))
        .find(|p| bin_of(p, bits) == bin)
        .unwrap();
    let neighbour = (0..)
        .map(|i| format!("packages/q{i}.whl"))
        .find(|p| bin_of(p, bits) != bin)
        .unwrap();
    {
        let mut r = sim.repo();
        r.delegate_succinct("targets", bits, prefix);
        r.add_target(name, &path, path.as_bytes());
        r.publish(&["targets", name]);
    }
    let c = Client::new(&sim);
    let info = c.targetinfo(&sim, &path).unwrap().unwrap();
    assert_eq!(info.length, path.len() as u64);
    assert!(sim.fetched().contains(&url(name, 1)), "{:?}", sim.fetched());
    assert!(c.read(&format!("{name}.json")).is_some());
    // A path of another bin goes to that bin, which the repository does not have.
    let other = sim
        .repo()
        .targets_body("targets")
        .delegations
        .as_ref()
        .unwrap()
        .succinct_roles
        .as_ref()
        .unwrap()
        .role_for_target(&neighbour);
    assert_ne!(other, name);
    let e = err(c.targetinfo(&sim, &neighbour));
    assert!(
        matches!(&e, ClientError::NotListed { role, parent: "snapshot" } if *role == other),
        "{e:?}"
    );
    assert_msg(&e, &[&other, "not listed in snapshot"]);
}

#[test]
fn succinct_bins_bit_length_1() {
    succinct(1, "bins", 1, "bins-1");
    succinct(1, "bins", 0, "bins-0");
}

#[test]
fn succinct_bins_bit_length_4() {
    succinct(4, "bin", 0xb, "bin-b");
}

#[test]
fn succinct_bins_bit_length_14_zero_padded() {
    succinct(14, "bin", 3, "bin-0003");
}

#[test]
fn succinct_bin_name_not_zero_padded_is_not_delegated() {
    let sim = Sim::new();
    let path = (0..)
        .map(|i| format!("p{i}"))
        .find(|p| bin_of(p, 14) == 3)
        .unwrap();
    {
        // The unpadded "bin-3" exists with the target, but bit_length 14 means "bin-0003".
        let mut r = sim.repo();
        r.delegate_succinct("targets", 14, "bin");
        r.add_target("bin-0003", "other", b"o");
        r.publish(&["targets", "bin-0003"]);
        let bin = r.targets["bin-0003"].clone();
        r.targets.insert("bin-3".into(), bin);
        let s = r.signers["bin-0003"].clone();
        r.signers.insert("bin-3".into(), s);
        r.add_target("bin-3", &path, b"x");
        r.publish(&["bin-3"]);
    }
    let c = Client::new(&sim);
    assert_eq!(c.targetinfo(&sim, &path).unwrap(), None);
    assert!(!sim.fetched().iter().any(|u| u.contains("bin-3.json")));
}

#[test]
fn path_hash_prefixes() {
    let path = "simple/requests/index.html";
    let digest = tufpi_core::hashes::digest_hex("sha256", path.as_bytes()).unwrap();
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        let wrong = if digest.starts_with("00") { "01" } else { "00" };
        r.delegate_role("targets", "wrong", None, Some(&[wrong]), false);
        r.delegate_role("targets", "right", None, Some(&["ff", &digest[..3]]), false);
        r.add_target("wrong", path, b"wrong");
        r.add_target("right", path, b"right");
        r.publish(&["targets", "wrong", "right"]);
    }
    let c = Client::new(&sim);
    let info = c.targetinfo(&sim, path).unwrap().unwrap();
    assert_eq!(info, sim.repo().targets_body("right").targets[path]);
    assert_eq!(roles_fetched(&sim), ["targets", "right"]);
}

#[test]
fn delegated_role_signed_by_wrong_key_refused() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.delegate("targets", "a", &["*"], false);
        r.add_target("a", "f", b"f");
        r.signers.insert("a".into(), vec![Signer::ecdsa()]);
        r.publish(&["targets", "a"]);
    }
    let c = Client::new(&sim);
    let e = err(c.targetinfo(&sim, "f"));
    assert!(
        matches!(&e, ClientError::Signatures(tufpi_core::verify::VerifyError::Threshold { role, valid: 0, threshold: 1, .. }) if role == "a"),
        "{e:?}"
    );
    assert_msg(
        &e,
        &["a: signature threshold not met: 0/1", "not a key of role a"],
    );
    assert_eq!(c.read("a.json"), None);
}

#[test]
fn delegated_role_missing_from_snapshot() {
    let sim = Sim::new();
    {
        let mut r = sim.repo();
        r.delegate("targets", "a", &["*"], false);
        r.publish(&["targets"]); // "a" never published
    }
    let c = Client::new(&sim);
    let e = err(c.targetinfo(&sim, "f"));
    assert!(
        matches!(&e, ClientError::NotListed { role, parent: "snapshot" } if role == "a"),
        "{e:?}"
    );
    assert_msg(&e, &["a: not listed in snapshot"]);
}

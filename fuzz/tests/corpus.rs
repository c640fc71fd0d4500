//! Replays every committed input through its target's checks on stable, without libFuzzer:
//! `fuzz/corpus/<target>/*` (the minimized corpora) and `fuzz/regressions/<target>/*`
//! (reproducers of findings, kept forever). `cargo test` in `fuzz/`.

use std::fs;
use std::path::Path;

fn replay(dir: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut total = 0;
    for &(name, check) in chatbox_fuzz::TARGETS {
        let Ok(entries) = fs::read_dir(root.join(name)) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.expect("dir entry").path()).collect();
        files.sort();
        for path in files {
            let data = fs::read(&path).expect("read input");
            eprintln!("{name}: {}", path.display());
            check(&data);
            total += 1;
        }
    }
    total
}

#[test]
fn corpora_replay_clean() {
    let n = replay("corpus");
    eprintln!("{n} corpus inputs");
}

#[test]
fn regressions_replay_clean() {
    let n = replay("regressions");
    eprintln!("{n} regression inputs");
}

#[test]
fn every_target_has_a_binary() {
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("Cargo.toml");
    for (name, _) in chatbox_fuzz::TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name} has no [[bin]]"
        );
        assert!(chatbox_fuzz::target(name).is_some());
    }
}

/// Smoke: a handful of fixed inputs through every target (the seeds that `ci/fuzz.sh`
/// starts from are in the corpora).
#[test]
fn seeds_run_clean() {
    let (_, hello) = chatbox_fuzz::support::client_hello();
    let reply = chatbox_fuzz::support::server_reply(b"hi");
    let seeds: [&[u8]; 6] = [b"", b"\x00", b"\x00\x05hello", &hello, &reply, &[0xff; 300]];
    for (_, check) in chatbox_fuzz::TARGETS {
        for s in seeds {
            check(s);
        }
    }
}

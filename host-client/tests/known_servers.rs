//! Trust on first use of server keys, with a temporary CHATBOX_HOME.

use std::fs;

use chatbox_client::known_servers::{Outcome, Trust, TrustError, check, is_fingerprint};

const FP_A: &str = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
const FP_B: &str = "SHA256:ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs";

#[test]
fn fingerprints_are_recognised() {
    assert!(is_fingerprint(FP_A));
    assert!(is_fingerprint(FP_B));
    assert!(!is_fingerprint("SHA256:short"));
    assert!(!is_fingerprint(
        "MD5:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
    ));
    assert!(!is_fingerprint(
        "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSu=U"
    ));
}

#[test]
fn first_use_records_then_match_passes_then_mismatch_fails() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("nested").join("known_servers");
    let trust = Trust::File(path.clone());

    let first = check(&trust, "127.0.0.1:6001", FP_A).unwrap();
    assert_eq!(first.outcome, Outcome::Recorded(path.clone()));
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!("127.0.0.1:6001 {FP_A}\n")
    );

    let again = check(&trust, "127.0.0.1:6001", FP_A).unwrap();
    assert_eq!(again.outcome, Outcome::Known);

    // Another server is recorded alongside.
    let other = check(&trust, "example.invalid:7000", FP_B).unwrap();
    assert!(matches!(other.outcome, Outcome::Recorded(_)));
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2);

    let e = check(&trust, "127.0.0.1:6001", FP_B).unwrap_err();
    let TrustError::Mismatch {
        expected,
        got,
        source,
        ..
    } = &e
    else {
        panic!("expected a mismatch, got {e:?}");
    };
    assert_eq!(expected, FP_A);
    assert_eq!(got, FP_B);
    assert_eq!(source.as_ref().map(|(_, line)| *line), Some(1));
    let msg = e.to_string();
    assert!(msg.contains(FP_A) && msg.contains(FP_B), "{msg}");
    assert!(msg.contains("127.0.0.1:6001"), "{msg}");
    assert!(msg.contains("--server-key"), "says how to fix it: {msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    // The mismatch did not overwrite the recorded key.
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2);
}

#[test]
fn pinned_key_is_respected_and_file_untouched() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("known_servers");
    fs::write(&path, format!("127.0.0.1:6001 {FP_B}\n")).unwrap();

    // The pin wins over the file (which says B).
    let ok = check(&Trust::Pinned(FP_A.into()), "127.0.0.1:6001", FP_A).unwrap();
    assert_eq!(ok.outcome, Outcome::Pinned);
    match check(&Trust::Pinned(FP_A.into()), "127.0.0.1:6001", FP_B) {
        Err(TrustError::Mismatch {
            expected,
            got,
            source: None,
            ..
        }) => {
            assert_eq!((expected.as_str(), got.as_str()), (FP_A, FP_B));
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    // A new server with a pin is not recorded.
    check(&Trust::Pinned(FP_A.into()), "10.0.0.1:1", FP_A).unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!("127.0.0.1:6001 {FP_B}\n")
    );
}

#[test]
fn garbage_lines_are_skipped_never_fatal() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("known_servers");
    let garbage = format!(
        "# comment\n\nthis is not a line\n127.0.0.1:6001 SHA256:tooshort\n\
         127.0.0.1:6001 {FP_A} extra\n\u{0}\u{ff}binary\n127.0.0.1:6001 {FP_A}\n"
    );
    let mut bytes = garbage.into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
    fs::write(&path, &bytes).unwrap();
    let trust = Trust::File(path.clone());

    let found = check(&trust, "127.0.0.1:6001", FP_A).unwrap();
    assert_eq!(found.outcome, Outcome::Known);
    assert_eq!(found.skipped, vec![3, 4, 5, 6]);

    // A new server is appended on its own line even though the file ends oddly.
    let new = check(&trust, "[::1]:6001", FP_B).unwrap();
    assert!(matches!(new.outcome, Outcome::Recorded(_)));
    assert_eq!(new.skipped, vec![3, 4, 5, 6, 8]);
    let text = String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned();
    assert!(
        text.ends_with(&format!("\n[::1]:6001 {FP_B}\n")),
        "{text:?}"
    );
    assert_eq!(
        check(&trust, "[::1]:6001", FP_B).unwrap().outcome,
        Outcome::Known
    );
}

#[test]
fn unreadable_file_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    // A directory where the file should be.
    let path = home.path().join("known_servers");
    fs::create_dir(&path).unwrap();
    match check(&Trust::File(path.clone()), "127.0.0.1:6001", FP_A) {
        Err(e @ TrustError::Io(..)) => assert!(e.to_string().contains("known_servers")),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(p).map_or(0, |m| m.permissions().mode() & 0o777)
}

#[cfg(unix)]
#[test]
fn chatbox_home_and_known_servers_are_private_and_tightened() {
    use std::os::unix::fs::PermissionsExt as _;
    // The usual umask: without an explicit mode, new files would be 0644.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("chatbox");
    let path = dir.join("known_servers");
    let trust = Trust::File(path.clone());
    let first = check(&trust, "127.0.0.1:6001", FP_A).unwrap();
    assert!(first.tightened.is_empty());
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&path), 0o600);
    // Opened up by someone else: tightened at the next use, and said.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let again = check(&trust, "127.0.0.1:6001", FP_A).unwrap();
    assert_eq!(again.outcome, Outcome::Known);
    assert_eq!(again.tightened.len(), 2, "{:?}", again.tightened);
    assert!(again.tightened[0].contains("from 0755 to 0700"));
    assert!(again.tightened[1].contains("known_servers from 0644 to 0600"));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn link_key_is_pinned_then_recorded_and_never_overrides_a_recorded_key() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("known_servers");
    let link = |key: &str| Trust::Link {
        key: key.into(),
        file: path.clone(),
    };
    // First contact, another key than the link's: refused, nothing written.
    match check(&link(FP_A), "127.0.0.1:6001", FP_B) {
        Err(e @ TrustError::LinkMismatch { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(FP_A) && msg.contains(FP_B), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
        other => panic!("expected a link mismatch, got {other:?}"),
    }
    assert!(!path.exists());
    // The link's key: accepted and recorded as a first use would.
    let first = check(&link(FP_A), "127.0.0.1:6001", FP_A).unwrap();
    assert_eq!(first.outcome, Outcome::Recorded(path.clone()));
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!("127.0.0.1:6001 {FP_A}\n")
    );
    assert_eq!(
        check(&link(FP_A), "127.0.0.1:6001", FP_A).unwrap().outcome,
        Outcome::Pinned
    );
    // Later trust on first use finds it.
    assert_eq!(
        check(&Trust::File(path.clone()), "127.0.0.1:6001", FP_A)
            .unwrap()
            .outcome,
        Outcome::Known
    );
    // A link naming another key than the one recorded, and the server showing the link's key:
    // the two sources disagree, the recorded one is not overridden.
    assert!(matches!(
        check(&link(FP_B), "127.0.0.1:6001", FP_B),
        Err(TrustError::Mismatch { .. })
    ));
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1);
}

//! A script that pipes lines faster than the server's rate limit (issue 13.13): the real client
//! against the real server with its default limit (20 messages/s, burst 40, cut off after 5
//! warnings). The client paces itself to the limit the server announces at login, so every
//! line is stored once, in order, and it exits 0; a line the server refuses for good makes the
//! exit status 6.

mod common;

use common::*;

/// Waits, if needed, until at least 4 s of the current TOTP step are left.
fn away_from_step_end() {
    let into = now_secs() % 30;
    if into > 26 {
        std::thread::sleep(core::time::Duration::from_secs(31 - into));
    }
}

fn default_limits(c: &mut chatbox_server::Config) {
    c.rate_per_sec = 20.0;
    c.rate_burst = 40.0;
    c.rate_violations = 5;
}

/// `n` lines: `/join` every 20 lines, `/me` and `/msg bob` now and then, the rest said in the
/// current room. Returns the lines and the (target, kind, text) rows they must store.
fn script(tag: &str, n: usize) -> (Vec<String>, Vec<(String, i64, String)>) {
    let mut lines = Vec::new();
    let mut rows = Vec::new();
    let mut room = "#lobby".to_owned();
    for i in 0..n {
        if i % 20 == 10 {
            room = format!("#{tag}{}", i / 20);
            lines.push(format!("/join {room}"));
        } else if i % 7 == 3 {
            let text = format!("{tag} waves {i}");
            lines.push(format!("/me {text}"));
            rows.push((room.clone(), 1, text));
        } else if i % 11 == 5 {
            let text = format!("{tag} psst {i}");
            lines.push(format!("/msg bob {text}"));
            rows.push(("bob".to_owned(), 2, text));
        } else {
            let text = format!("{tag} line {i}");
            rows.push((room.clone(), 0, text.clone()));
            lines.push(text);
        }
    }
    (lines, rows)
}

fn stored(server: &TestServer, user: &str, tag: &str) -> Vec<(String, i64, String)> {
    let db = server.db();
    let mut st = db
        .prepare("SELECT target, kind, text FROM MESSAGES WHERE sender = ?1 ORDER BY id")
        .expect("query");
    st.query_map([user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .filter(|(_, _, text): &(String, i64, String)| text.starts_with(tag))
        .collect()
}

/// Pipes every line at once, closes stdin, waits for the exit.
fn pipe_all(
    mut c: Client,
    lines: &[String],
) -> (std::process::ExitStatus, Vec<String>, Vec<String>) {
    for l in lines {
        c.send(l);
    }
    c.finish()
}

#[test]
fn piped_lines_faster_than_the_rate_limit_are_each_stored_once_in_order() {
    let server = TestServer::start_with(default_limits);
    let home = tempfile::tempdir().expect("tempdir");
    let _bob = register(&server.address, home.path(), "bob");
    away_from_step_end();
    // Confirmed with the previous step's code: the current one is left for the second run.
    let ann = register_with_step(&server.address, home.path(), "ann", -1);

    // 120 lines with a code given on the command line (a scratch code).
    let (lines, want) = script("a", 120);
    assert_eq!(lines.iter().filter(|l| l.starts_with("/join")).count(), 6);
    let started = std::time::Instant::now();
    let c = chat(&server, home.path(), "ann", &ann.scratch[0], &[]);
    let (status, out, err) = pipe_all(c, &lines);
    let took = started.elapsed();
    assert!(status.success(), "{status:?}\n{out:#?}\n{err:#?}");
    assert!(
        !out.iter()
            .any(|l| l.starts_with("error ") || l.starts_with("bye ")),
        "no refusal, no cut-off: {out:#?}"
    );
    assert_eq!(
        stored(&server, "ann", "a "),
        want,
        "stored once each, in order"
    );
    eprintln!("120 lines (6 joins) delivered in {took:?}");

    // 120 more with the secret in the environment (so a cut-off would have meant a reconnect
    // and lines sent twice).
    let (lines, want) = script("b", 120);
    let c = Client::spawn_env(
        home.path(),
        &[
            "--server",
            &server.address,
            "chat",
            "--user",
            "ann",
            "--plain",
        ],
        &[("CHATBOX_TOTP_SECRET", ann.secret_b32.as_str())],
    );
    let (status, out, err) = pipe_all(c, &lines);
    assert!(status.success(), "{status:?}\n{out:#?}\n{err:#?}");
    assert!(
        !out.iter()
            .any(|l| l.starts_with("error ") || l.starts_with("reconnect")),
        "no refusal, no reconnect: {out:#?}"
    );
    assert_eq!(
        stored(&server, "ann", "b "),
        want,
        "stored once each, in order"
    );
}

#[test]
fn a_line_refused_for_good_makes_the_exit_status_non_zero() {
    let server = TestServer::start_with(default_limits);
    let home = tempfile::tempdir().expect("tempdir");
    let mut cy = register(&server.address, home.path(), "cy");
    let lines = [
        "c first".to_owned(),
        format!("c {}", "x".repeat(1100)), // over the server's 1024-byte limit
        "/msg nobody c hello".to_owned(),  // no such user
        "c last".to_owned(),
    ];
    let c = chat(&server, home.path(), "cy", &cy.next_code(), &[]);
    let (status, out, err) = pipe_all(c, &lines);
    assert_eq!(status.code(), Some(6), "{out:#?}\n{err:#?}");
    assert!(
        out.iter().any(|l| l.starts_with("error too_long")),
        "{out:#?}"
    );
    assert!(
        out.iter().any(|l| l.starts_with("error no_such_user")),
        "{out:#?}"
    );
    assert!(
        err.iter().any(|l| l.contains("2 line(s) refused")),
        "{err:#?}"
    );
    let texts: Vec<String> = stored(&server, "cy", "c ")
        .into_iter()
        .map(|(_, _, t)| t)
        .collect();
    assert_eq!(texts, ["c first", "c last"]);
}

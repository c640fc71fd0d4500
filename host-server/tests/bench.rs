//! Rough throughput numbers (ignored by default):
//! `cargo test --release -p chatbox-server --test bench -- --ignored --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chatbox_server::test_util as common;

use std::time::Instant;

use chatbox_core::proto::{ClientMsg, ServerMsg};
use common::*;

fn logins_per_sec(iterations: u32, n: usize) -> f64 {
    let s = TestServer::start_with(|c| {
        c.pbkdf2_iterations = iterations;
        c.hash_queue = 64;
    });
    let acc = register(s.addr(), "alice");
    let addr = s.addr();
    let start = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let codes: Vec<String> = acc.scratch.clone();
            std::thread::spawn(move || {
                for i in 0..n / 4 {
                    // Wrong password: full hash work, no state change (a wrong code after the
                    // right password would count toward the lock).
                    let mut c = Client::connect(addr);
                    c.send(&ClientMsg::Login {
                        user: "alice",
                        password: "not the password",
                        otp: "00000000",
                    });
                    let _ = c.recv();
                    let _ = (t, i, &codes);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

#[test]
#[ignore = "benchmark"]
fn bench_logins() {
    println!(
        "logins/s at 10000 iterations: {:.0}",
        logins_per_sec(10_000, 400)
    );
    println!(
        "logins/s at 600000 iterations: {:.1}",
        logins_per_sec(600_000, 16)
    );
}

#[test]
#[ignore = "benchmark"]
fn bench_messages() {
    let s = TestServer::start_with(|c| {
        c.rate_burst = 1e9;
        c.rate_per_sec = 1e9;
    });
    let a = register(s.addr(), "alice");
    let b = register(s.addr(), "bob");
    let mut ca = login(s.addr(), &a, 0);
    let mut cb = login(s.addr(), &b, 0);
    let n = 20_000;
    let start = Instant::now();
    let reader = std::thread::spawn(move || {
        for _ in 0..n {
            cb.recv_until("msg", |m| matches!(m, ServerMsg::Message(_)));
        }
    });
    for i in 0..n {
        ca.send(&ClientMsg::Say {
            room: "#lobby",
            text: "a typical chat line of some forty bytes.",
        });
        if i % 100 == 99 {
            for _ in 0..100 {
                ca.recv_until("echo", |m| matches!(m, ServerMsg::Message(_)));
            }
        }
    }
    reader.join().unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "messages/s stored and fanned out to 2 clients: {:.0}",
        n as f64 / secs
    );
}

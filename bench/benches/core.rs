//! Core primitives: record seal/open (ratchet included), handshake, TOTP, PBKDF2.
#![allow(clippy::unwrap_used)] // a benchmark: a failure is a panic with a message

use std::hint::black_box;

use chatbox_bench::ossl::{OsslPlain, OsslRatchet};
use chatbox_core::crypto::cipher::RecordKeys;
use chatbox_core::noise::StaticKeypair;
use chatbox_core::otp::Totp;
use chatbox_core::password;
use chatbox_core::session::{Input, Ratchet, Session};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SIZES: [usize; 3] = [64, 1024, 16 * 1024];

fn records(c: &mut Criterion) {
    let mut g = c.benchmark_group("record");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let mut body = vec![0x5au8; size + 16];
        let mut buf = vec![0u8; size + 16];

        // ChatBox: the ratchet (per-record HKDF) + AES-256-CTR + HMAC-SHA256.
        let mut sender = Ratchet::new([7; 32]);
        g.bench_with_input(BenchmarkId::new("chatbox_seal", size), &size, |b, _| {
            b.iter(|| sender.seal_body(black_box(&mut body)).unwrap())
        });
        let (mut tx, mut rx) = (Ratchet::new([9; 32]), Ratchet::new([9; 32]));
        g.bench_with_input(
            BenchmarkId::new("chatbox_seal_open", size),
            &size,
            |b, _| {
                b.iter(|| {
                    tx.seal_body(&mut buf).unwrap();
                    rx.open_body(black_box(&mut buf)).unwrap()
                })
            },
        );

        // The same construction on OpenSSL, contexts reused and re-keyed in place.
        let mut o_sender = OsslRatchet::new([7; 32]);
        g.bench_with_input(BenchmarkId::new("openssl_seal", size), &size, |b, _| {
            b.iter(|| o_sender.seal_body(black_box(&mut body)))
        });
        let (mut o_tx, mut o_rx) = (OsslRatchet::new([9; 32]), OsslRatchet::new([9; 32]));
        g.bench_with_input(
            BenchmarkId::new("openssl_seal_open", size),
            &size,
            |b, _| {
                b.iter(|| {
                    o_tx.seal_body(&mut buf);
                    assert!(o_rx.open_body(black_box(&mut buf)))
                })
            },
        );

        // Without the ratchet: fixed keys, only the nonce changes per record.
        let keys = RecordKeys::from_parts([1; 32], [2; 32]);
        let mut n = 0u64;
        g.bench_with_input(
            BenchmarkId::new("chatbox_plain_seal", size),
            &size,
            |b, _| {
                b.iter(|| {
                    n += 1;
                    let (ct, tag) = body.split_at_mut(size);
                    tag.copy_from_slice(&keys.seal_in_place(n, &[0, 0], black_box(ct)));
                })
            },
        );
        let mut plain = OsslPlain::new(&[1; 32], &[2; 32]);
        g.bench_with_input(
            BenchmarkId::new("openssl_plain_seal", size),
            &size,
            |b, _| b.iter(|| plain.seal_body(black_box(&mut body))),
        );
    }
    g.finish();
}

fn handshake(c: &mut Criterion) {
    let server_key = StaticKeypair::from_secret([3; 32]);
    c.bench_function("handshake/full_both_sides", |b| {
        let mut wire = [0u8; 512];
        b.iter(|| {
            let mut client = Session::client([1; 32]);
            let mut server = Session::server(&server_key, [2; 32], b"\x01bench").unwrap();
            let n = client.poll_transmit(&mut wire).unwrap();
            assert!(matches!(
                server.handle_input(&mut wire[..n]),
                Ok(Input::Handshake { .. })
            ));
            let n = server.poll_transmit(&mut wire).unwrap();
            client.handle_input(&mut wire[..n]).unwrap();
            black_box(client.is_established())
        })
    });
}

fn otp_and_password(c: &mut Criterion) {
    let totp = Totp::sha1_default(b"12345678901234567890").unwrap();
    let now = 1_700_000_000;
    let code = totp.generate(now).unwrap();
    c.bench_function("totp/verify_window", |b| {
        b.iter(|| black_box(totp.verify(black_box(code.as_str()), now, None)))
    });
    let mut g = c.benchmark_group("pbkdf2");
    g.sample_size(10);
    g.bench_function("sha256_600000", |b| {
        let mut out = [0u8; 32];
        b.iter(|| {
            password::pbkdf2_sha256(b"correct horse", b"0123456789abcdef", 600_000, &mut out)
                .unwrap();
            black_box(out)
        })
    });
    g.finish();
}

criterion_group!(benches, records, handshake, otp_and_password);
criterion_main!(benches);

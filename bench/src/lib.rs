//! Benchmark support: the ChatBox record construction rebuilt on OpenSSL, so `benches/core.rs`
//! can print ratios against a best-effort OpenSSL baseline (contexts reused, re-keyed in place).
//! A test checks that both produce the same bytes, so the comparison is like for like.

pub mod ossl;

#![allow(clippy::std_instead_of_alloc)] // test code uses std freely
use std::format;
use std::string::{String, ToString};

use super::*;

const FP: &str = "SHA256:+/8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0";
const FP_ENC: &str = "SHA256:%2B%2F8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0";
const TOKEN: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

fn digest() -> [u8; 32] {
    let mut d = [0u8; 32];
    d[0] = 0xfb;
    d[1] = 0xff;
    for (i, b) in d.iter_mut().enumerate().skip(2) {
        *b = u8::try_from(i - 2).unwrap();
    }
    d
}

fn token_bytes() -> [u8; 32] {
    core::array::from_fn(|i| u8::try_from(i).unwrap())
}

#[test]
fn canonical_link_known_answer() {
    let link = Link::new(
        "chat.example.org",
        7000,
        Some(digest()),
        Some(InviteToken::from_bytes(token_bytes())),
    )
    .unwrap();
    assert_eq!(
        link.to_string(),
        format!("chatbox://chat.example.org:7000/?key={FP_ENC}&invite={TOKEN}")
    );
    assert_eq!(link.key_fingerprint().unwrap().as_str(), FP);
    assert_eq!(link.server().as_str(), "chat.example.org:7000");
}

#[test]
fn parses_encoded_and_plain_spellings() {
    for s in [
        format!("chatbox://chat.example.org:7000/?key={FP_ENC}&invite={TOKEN}"),
        format!("chatbox://chat.example.org:7000/?key={FP}&invite={TOKEN}"),
        format!("CHATBOX://chat.example.org:7000?invite={TOKEN}&key={FP}&x=1"),
        format!(
            "  chatbox://chat.example.org:7000/?key=SHA256%3a%2b%2f8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0&invite={TOKEN}\n"
        ),
    ] {
        let l = Link::parse(&s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(l.host(), "chat.example.org");
        assert_eq!(l.port(), 7000);
        assert_eq!(l.key(), Some(&digest()));
        assert_eq!(l.invite().unwrap().as_bytes(), &token_bytes());
        // Round trip through the canonical form.
        assert_eq!(Link::parse(&l.to_string()).unwrap(), l);
    }
}

#[test]
fn key_only_and_ipv6_links() {
    let l = Link::parse(&format!("chatbox://[::1]:7000/?key={FP_ENC}")).unwrap();
    assert_eq!(l.host(), "[::1]");
    assert_eq!(l.server().as_str(), "[::1]:7000");
    assert!(l.invite().is_none());
    assert_eq!(l.to_string(), format!("chatbox://[::1]:7000/?key={FP_ENC}"));
    let l = Link::parse("chatbox://127.0.0.1:7000/").unwrap();
    assert!(l.key().is_none() && l.invite().is_none());
    assert_eq!(l.to_string(), "chatbox://127.0.0.1:7000/");
}

#[test]
fn refuses_bad_links() {
    let good_inv = format!("invite={TOKEN}");
    let cases: &[(String, LinkError)] = &[
        ("https://x:1/".into(), LinkError::NotALink),
        ("chatbox:".into(), LinkError::NotALink),
        ("chatbox://:7000/".into(), LinkError::BadHost),
        ("chatbox://a b:7000/".into(), LinkError::BadHost),
        ("chatbox://h%41:7000/".into(), LinkError::BadHost),
        ("chatbox://[zz]:7000/".into(), LinkError::BadHost),
        ("chatbox://host/".into(), LinkError::BadPort),
        ("chatbox://host:0/".into(), LinkError::BadPort),
        ("chatbox://host:70000/".into(), LinkError::BadPort),
        ("chatbox://host:+70/".into(), LinkError::BadPort),
        ("chatbox://host:7000/path".into(), LinkError::BadPath),
        (
            format!("chatbox://host:7000/?{good_inv}#frag"),
            LinkError::BadPath,
        ),
        ("chatbox://host:7000/?key".into(), LinkError::BadQuery),
        (
            format!("chatbox://host:7000/?{good_inv}&{good_inv}"),
            LinkError::BadQuery,
        ),
        (
            "chatbox://host:7000/?key=SHA256:abc".into(),
            LinkError::BadKey,
        ),
        (
            format!("chatbox://host:7000/?key={}", &FP[..FP.len() - 1]),
            LinkError::BadKey,
        ),
        (
            format!("chatbox://host:7000/?key=MD5:{}", &FP[7..]),
            LinkError::BadKey,
        ),
        (
            "chatbox://host:7000/?key=SHA256:%zz".into(),
            LinkError::BadKey,
        ),
        (
            format!("chatbox://host:7000/?invite={}", &TOKEN[1..]),
            LinkError::BadInvite,
        ),
        (
            format!("chatbox://host:7000/?invite={}+", &TOKEN[1..]),
            LinkError::BadInvite,
        ),
        (
            format!("chatbox://host:7000/?invite={}", "a".repeat(2000)),
            LinkError::TooLong,
        ),
    ];
    for (s, want) in cases {
        assert_eq!(Link::parse(s), Err(*want), "{s}");
    }
}

#[test]
fn tokens() {
    let t = InviteToken::parse(TOKEN).unwrap();
    assert_eq!(t.as_bytes(), &token_bytes());
    assert_eq!(t.to_text().as_str(), TOKEN);
    // URL-safe alphabet: - and _ instead of + and /.
    let mut b = token_bytes();
    b[0] = 0xfb;
    b[1] = 0xff;
    let text = InviteToken::from_bytes(b).to_text();
    assert!(text.starts_with("-_8"), "{text}");
    assert_eq!(InviteToken::parse(&text).unwrap().as_bytes(), &b);
    for bad in [
        "",
        "AAEC",
        "+/8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0",
        &format!("{TOKEN}A"),
    ] {
        assert_eq!(InviteToken::parse(bad), Err(LinkError::BadInvite), "{bad}");
    }
    // Non-canonical trailing bits are refused (one text per token).
    assert!(InviteToken::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9").is_err());
    assert!(!format!("{t:?}").contains(TOKEN));
}

#[test]
fn fingerprints_and_pinning() {
    let kp = crate::noise::StaticKeypair::from_secret([7u8; 32]);
    let fp = kp.fingerprint();
    let digest = parse_fingerprint(&fp).unwrap();
    assert!(key_matches(&digest, &kp.public()));
    assert!(!key_matches(&digest, &[1u8; 32]));
    assert_eq!(parse_fingerprint("SHA256:"), Err(LinkError::BadKey));
}

#[test]
fn percent_coding() {
    let mut buf = [0u8; 16];
    assert_eq!(percent_decode("a%2Bb%2fc+", &mut buf).unwrap(), "a+b/c+");
    assert_eq!(percent_decode("%4", &mut buf), Err(LinkError::BadQuery));
    assert_eq!(percent_decode("%ff", &mut buf), Err(LinkError::BadQuery));
    assert_eq!(
        percent_decode("aaaaaaaaaaaaaaaaa", &mut buf),
        Err(LinkError::TooLong)
    );
    let mut out = String::new();
    percent_encode("SHA256:a+b/c=d e~", &mut out).unwrap();
    assert_eq!(out, "SHA256:a%2Bb%2Fc%3Dd%20e~");
}

proptest::proptest! {
    #[test]
    fn any_text_parses_or_errs_and_canonical_forms_are_stable(s in "\\PC{0,200}") {
        for t in [s.clone(), format!("chatbox://{s}"), format!("chatbox://h:1/?{s}")] {
            if let Ok(l) = Link::parse(&t) {
                let canon = l.to_string();
                let again = Link::parse(&canon);
                proptest::prop_assert_eq!(again, Ok(l));
            }
        }
        let mut buf = [0u8; 32];
        let _ = percent_decode(&s, &mut buf);
    }

    #[test]
    fn generated_links_round_trip(
        host in "[a-z0-9][a-z0-9.-]{0,40}",
        port in 1u16..,
        key in proptest::option::of(proptest::array::uniform32(proptest::num::u8::ANY)),
        tok in proptest::option::of(proptest::array::uniform32(proptest::num::u8::ANY)),
    ) {
        let l = Link::new(&host, port, key, tok.map(InviteToken::from_bytes)).unwrap();
        let text = l.to_string();
        proptest::prop_assert!(!text.contains('+'));
        let back = Link::parse(&text).unwrap();
        proptest::prop_assert_eq!(back.host(), host.as_str());
        proptest::prop_assert_eq!(back.port(), port);
        proptest::prop_assert_eq!(back.key(), key.as_ref());
        proptest::prop_assert_eq!(back.invite().map(|t| *t.as_bytes()), tok);
    }
}

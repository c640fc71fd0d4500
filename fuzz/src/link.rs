//! `core::link`: invite links, tokens and percent-decoding on arbitrary text. Never a panic; a
//! parsed link's canonical form parses back to the same link and is its own canonical form; a
//! parsed token's text parses back to the same token.

use chatbox_core::link::{InviteToken, Link, percent_decode};

/// Arbitrary text (lossy UTF-8) as a link, a token and a percent-encoded value.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for s in [&*text, &format!("chatbox://{text}"), &format!("chatbox://h:1/?{text}")] {
        if let Ok(l) = Link::parse(s) {
            let canon = l.to_string();
            let again = Link::parse(&canon).expect("canonical form parses");
            assert_eq!(again, l);
            assert_eq!(again.to_string(), canon);
        }
    }
    if let Ok(t) = InviteToken::parse(&text) {
        assert_eq!(t.to_text().as_str(), &*text);
    }
    let mut out = [0u8; 64];
    let _ = percent_decode(&text, &mut out);
}

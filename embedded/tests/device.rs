//! The device client's decisions (`chatbox_embedded::device`) on the board: its command line
//! and its answers to room commands. The whole device against a real server is ci/device.sh.
#![no_std]
#![no_main]

use chatbox_embedded as _;
use chatbox_embedded::device::Stats;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    chatbox_embedded::panic_with_message(info)
}

// Helpers live outside the test module: defmt-test allows only tests there.

const KEY: &str = "SHA256:FktRsP0G4tiaQtRTwRoEiWl4Pd1CwStrxGU6zll2f/Y";
/// A complete command line (the TOTP secret is RFC 6238's "12345678901234567890" in
/// Base32), then `extra`.
fn words(extra: &'static [&'static str]) -> impl Iterator<Item = &'static str> {
    [
        "user=Device",
        "password=correct-horse",
        "totp=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        "key=SHA256:FktRsP0G4tiaQtRTwRoEiWl4Pd1CwStrxGU6zll2f/Y",
    ]
    .into_iter()
    .chain(extra.iter().copied())
}

fn stats() -> Stats {
    Stats {
        sent: 12,
        received: 345,
        stack: 7312,
    }
}

#[defmt_test::tests]
mod tests {
    use chatbox_core::proto::MAX_TEXT_LEN;
    use chatbox_embedded::device::{
        Config, ConfigError, DEFAULT_PING_SECS, DEFAULT_ROOM, Reply, STATS_LEN, Stats, reply,
    };
    use defmt::{assert, assert_eq};

    use super::{KEY, stats, words};

    #[test]
    fn config_from_key_value_words() {
        let c = Config::parse(words(&["firmware", "colour=blue"])).unwrap();
        assert_eq!(c.user.as_str(), "device"); // lower-cased as the server does
        assert_eq!(c.password, "correct-horse");
        assert_eq!(c.key, KEY);
        assert_eq!(c.room, DEFAULT_ROOM);
        assert_eq!(c.ping_secs, DEFAULT_PING_SECS);
        // RFC 6238 appendix B: T = 59 s gives 94287082, so 287082 with 6 digits.
        assert_eq!(c.totp.generate(59).unwrap().as_str(), "287082");

        let c = Config::parse(words(&["room=#lab-3", "ping=60"])).unwrap();
        assert_eq!(c.room, "#lab-3");
        assert_eq!(c.ping_secs, 60);
        let lower = Config::parse(words(&["totp=gezdgnbvgy3tqojqgezdgnbvgy3tqojq"])).unwrap();
        assert_eq!(lower.totp.secret(), b"12345678901234567890");
    }

    #[test]
    fn config_refusals_name_the_key_only() {
        let missing = |name| Err(ConfigError::Missing(name));
        let only = |w: &'static [&'static str]| Config::parse(w.iter().copied()).map(|_| ());
        assert_eq!(only(&[]), missing("user"));
        assert_eq!(only(&["user=d"]), missing("password"));
        assert_eq!(only(&["user=d", "password=12345678"]), missing("totp"));
        assert_eq!(
            only(&[
                "user=d",
                "password=12345678",
                "totp=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
            ]),
            missing("key")
        );

        let invalid = |name| Err(ConfigError::Invalid(name));
        let with = |w: &'static [&'static str]| Config::parse(words(w)).map(|_| ());
        assert_eq!(with(&["user=1abc"]), invalid("user"));
        assert_eq!(with(&["user=a b"]), invalid("user"));
        assert_eq!(with(&["password=short"]), invalid("password"));
        assert_eq!(with(&["totp=not*base32"]), invalid("totp"));
        assert_eq!(with(&["totp="]), invalid("totp"));
        assert_eq!(with(&["key=SHA256:tooshort"]), invalid("key"));
        assert_eq!(
            with(&["key=MD5:FktRsP0G4tiaQtRTwRoEiWl4Pd1CwStrxGU6zll2f/Yxxxx"]),
            invalid("key")
        );
        assert_eq!(
            with(&["key=SHA256:FktRsP0G4tiaQtRTwRoEiWl4Pd1CwStrxGU6zll2f/!"]),
            invalid("key")
        );
        assert_eq!(with(&["room=devices"]), invalid("room"));
        assert_eq!(with(&["room=#Devices"]), invalid("room"));
        assert_eq!(with(&["ping=0"]), invalid("ping"));
        assert_eq!(with(&["ping=61"]), invalid("ping"));
        assert_eq!(with(&["ping=ten"]), invalid("ping"));
    }

    #[test]
    fn answers_to_room_commands() {
        let mut s = [0u8; STATS_LEN];
        assert_eq!(reply("!ping", stats(), &mut s), Some(Reply::Say("pong")));
        assert_eq!(reply("!bye", stats(), &mut s), Some(Reply::Bye));
        assert_eq!(
            reply("!echo hello  there ", stats(), &mut s),
            Some(Reply::Say("hello  there "))
        );
        assert_eq!(
            reply("!stats", stats(), &mut s),
            Some(Reply::Say("records sent=12 received=345 stack=7312 bytes"))
        );
        let zero = Stats {
            sent: 0,
            received: u64::MAX,
            stack: 0,
        };
        assert_eq!(
            reply("!stats", zero, &mut s),
            Some(Reply::Say(
                "records sent=0 received=18446744073709551615 stack=0 bytes"
            ))
        );
        for silent in [
            "!ping ", "ping", "!PING", "!echo", "!echo ", "!echoes", "hello", "",
        ] {
            assert!(reply(silent, stats(), &mut s).is_none(), "{=str}", silent);
        }
    }

    #[test]
    fn echo_of_1000_bytes_and_the_longest_text() {
        let mut line = [b'x'; 6 + MAX_TEXT_LEN + 1];
        line[..6].copy_from_slice(b"!echo ");
        let mut s = [0u8; STATS_LEN];
        let text = core::str::from_utf8(&line[..6 + 1000]).unwrap();
        assert_eq!(reply(text, stats(), &mut s), Some(Reply::Say(&text[6..])));
        let longest = core::str::from_utf8(&line[..6 + MAX_TEXT_LEN]).unwrap();
        assert_eq!(
            reply(longest, stats(), &mut s),
            Some(Reply::Say(&longest[6..]))
        );
        let too_long = core::str::from_utf8(&line).unwrap();
        assert!(reply(too_long, stats(), &mut s).is_none());
    }
}

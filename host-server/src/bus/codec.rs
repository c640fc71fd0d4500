//! The bytes of an [`Event`] on the bus (before sealing, see [`super::seal`]): the origin,
//! the number of effects, then each effect as a tag byte and its fields (u64 big-endian,
//! strings and records as u32 length + bytes). Decoding refuses anything but exactly one
//! event (see docs/DESIGN.md, "Server: chat and bus").

use std::collections::BTreeSet;
use std::sync::Arc;

use super::effect::{Effect, Event};
use crate::chat::ConnId;
use crate::chat::state::RemoteConn;
use crate::store::TopicRow;

/// Longest string or record in an event.
const MAX_FIELD: usize = 1 << 20;

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        let n = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&n.to_be_bytes());
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(x) => {
                self.u8(1);
                self.u64(x);
            }
            None => self.u8(0),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn u64(&mut self) -> Option<u64> {
        let b: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(u64::from_be_bytes(b))
    }
    fn u32(&mut self) -> Option<u32> {
        let b: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(u32::from_be_bytes(b))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        if n > MAX_FIELD {
            return None;
        }
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        core::str::from_utf8(self.bytes()?).ok().map(str::to_owned)
    }
    fn rec(&mut self) -> Option<Arc<[u8]>> {
        Some(Arc::from(self.bytes()?))
    }
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.u64()?)),
            _ => None,
        }
    }
}

impl Event {
    /// The event's bytes (before sealing).
    #[must_use]
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64));
        w.str(&self.origin);
        w.u64(self.effects.len() as u64);
        for e in &self.effects {
            encode_effect(&mut w, e);
        }
        w.0
    }

    /// Parses an event; `None` if the bytes are not exactly one event.
    #[must_use]
    pub(crate) fn decode(b: &[u8]) -> Option<Event> {
        let mut r = Reader(b);
        let origin = r.string()?;
        let n = r.u64()?;
        let mut effects = Vec::new();
        for _ in 0..n {
            effects.push(decode_effect(&mut r)?);
        }
        r.0.is_empty().then_some(Event { origin, effects })
    }
}

fn encode_effect(w: &mut Writer, e: &Effect) {
    match e {
        Effect::Room { room, except, rec } => {
            w.u8(1);
            w.str(room);
            w.opt_u64(*except);
            w.bytes(rec);
        }
        Effect::User { user, except, rec } => {
            w.u8(2);
            w.str(user);
            w.opt_u64(*except);
            w.bytes(rec);
        }
        Effect::Disconnect { user, rec } => {
            w.u8(3);
            w.str(user);
            w.bytes(rec);
        }
        Effect::Kick { room, user } => {
            w.u8(4);
            w.str(room);
            w.str(user);
        }
        Effect::Topic(t) => {
            w.u8(5);
            w.str(&t.room);
            w.str(&t.topic);
            w.str(&t.set_by);
            w.u64(t.time_ms);
        }
        Effect::Away { user, text } => {
            w.u8(6);
            w.str(user);
            w.str(text);
        }
        Effect::Mute { user, until_ms } => {
            w.u8(7);
            w.str(user);
            w.opt_u64(*until_ms);
        }
        Effect::Motd(t) => {
            w.u8(8);
            w.str(t);
        }
        Effect::Login {
            conn,
            user,
            address,
            since_ms,
        } => {
            w.u8(9);
            w.u64(*conn);
            w.str(user);
            w.str(address);
            w.u64(*since_ms);
        }
        Effect::CloseSessions {
            user,
            only,
            except,
            rec,
        } => {
            w.u8(16);
            w.str(user);
            for t in [only, except] {
                match t {
                    Some((n, c)) => {
                        w.u8(1);
                        w.str(n);
                        w.u64(*c);
                    }
                    None => w.u8(0),
                }
            }
            w.bytes(rec);
        }
        Effect::Join { conn, room } => {
            w.u8(10);
            w.u64(*conn);
            w.str(room);
        }
        Effect::Part { conn, room } => {
            w.u8(11);
            w.u64(*conn);
            w.str(room);
        }
        Effect::Gone { conn } => {
            w.u8(12);
            w.u64(*conn);
        }
        Effect::Hello => w.u8(13),
        Effect::Snapshot(conns) => {
            w.u8(14);
            w.u64(conns.len() as u64);
            for c in conns {
                w.u64(c.id);
                w.str(&c.user);
                w.str(&c.address);
                w.u64(c.since_ms);
                w.u64(c.rooms.len() as u64);
                for r in &c.rooms {
                    w.str(r);
                }
            }
        }
        Effect::NodeDown { node } => {
            w.u8(15);
            w.str(node);
        }
    }
}

fn decode_effect(r: &mut Reader<'_>) -> Option<Effect> {
    Some(match r.u8()? {
        1 => Effect::Room {
            room: r.string()?,
            except: r.opt_u64()?,
            rec: r.rec()?,
        },
        2 => Effect::User {
            user: r.string()?,
            except: r.opt_u64()?,
            rec: r.rec()?,
        },
        3 => Effect::Disconnect {
            user: r.string()?,
            rec: r.rec()?,
        },
        4 => Effect::Kick {
            room: r.string()?,
            user: r.string()?,
        },
        5 => Effect::Topic(TopicRow {
            room: r.string()?,
            topic: r.string()?,
            set_by: r.string()?,
            time_ms: r.u64()?,
        }),
        6 => Effect::Away {
            user: r.string()?,
            text: r.string()?,
        },
        7 => Effect::Mute {
            user: r.string()?,
            until_ms: r.opt_u64()?,
        },
        8 => Effect::Motd(r.string()?),
        9 => Effect::Login {
            conn: r.u64()?,
            user: r.string()?,
            address: r.string()?,
            since_ms: r.u64()?,
        },
        16 => {
            let user = r.string()?;
            let mut target = || -> Option<Option<(String, ConnId)>> {
                match r.u8()? {
                    0 => Some(None),
                    1 => Some(Some((r.string()?, r.u64()?))),
                    _ => None,
                }
            };
            let only = target()?;
            let except = target()?;
            Effect::CloseSessions {
                user,
                only,
                except,
                rec: r.rec()?,
            }
        }
        10 => Effect::Join {
            conn: r.u64()?,
            room: r.string()?,
        },
        11 => Effect::Part {
            conn: r.u64()?,
            room: r.string()?,
        },
        12 => Effect::Gone { conn: r.u64()? },
        13 => Effect::Hello,
        14 => {
            let n = r.u64()?;
            let mut conns = Vec::new();
            for _ in 0..n {
                let id = r.u64()?;
                let user = r.string()?;
                let address = r.string()?;
                let since_ms = r.u64()?;
                let k = r.u64()?;
                let mut rooms = BTreeSet::new();
                for _ in 0..k {
                    rooms.insert(r.string()?);
                }
                conns.push(RemoteConn {
                    id,
                    user,
                    rooms,
                    address,
                    since_ms,
                });
            }
            Effect::Snapshot(conns)
        }
        15 => Effect::NodeDown { node: r.string()? },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Effect> {
        let rec: Arc<[u8]> = Arc::from(&b"\x01\x02record"[..]);
        vec![
            Effect::Room {
                room: "#a".into(),
                except: Some(7),
                rec: rec.clone(),
            },
            Effect::User {
                user: "bob".into(),
                except: None,
                rec: rec.clone(),
            },
            Effect::Disconnect {
                user: "bob".into(),
                rec,
            },
            Effect::Kick {
                room: "#a".into(),
                user: "bob".into(),
            },
            Effect::Topic(TopicRow {
                room: "#a".into(),
                topic: "t".into(),
                set_by: "op".into(),
                time_ms: 5,
            }),
            Effect::Away {
                user: "a".into(),
                text: "lunch".into(),
            },
            Effect::Mute {
                user: "a".into(),
                until_ms: Some(0),
            },
            Effect::Mute {
                user: "a".into(),
                until_ms: None,
            },
            Effect::Motd("hi".into()),
            Effect::Login {
                conn: 3,
                user: "a".into(),
                address: "127.0.0.1:5".into(),
                since_ms: 9,
            },
            Effect::CloseSessions {
                user: "a".into(),
                only: Some(("n2".into(), 4)),
                except: None,
                rec: Arc::from(&b"bye"[..]),
            },
            Effect::CloseSessions {
                user: "a".into(),
                only: None,
                except: Some(("n1".into(), 5)),
                rec: Arc::from(&b"bye"[..]),
            },
            Effect::Join {
                conn: 3,
                room: "#a".into(),
            },
            Effect::Part {
                conn: 3,
                room: "#a".into(),
            },
            Effect::Gone { conn: 3 },
            Effect::Hello,
            Effect::Snapshot(vec![RemoteConn {
                id: 1,
                user: "a".into(),
                rooms: ["#a".to_owned(), "#b".to_owned()].into_iter().collect(),
                address: "[::1]:7".into(),
                since_ms: 3,
            }]),
            Effect::NodeDown { node: "n2".into() },
        ]
    }

    fn check(ev: &Event) {
        let b = ev.encode();
        let back = Event::decode(&b).expect("decodes");
        assert_eq!(back.origin, ev.origin);
        assert_eq!(format!("{back:?}"), format!("{ev:?}"));
        assert_eq!(back.encode(), b);
        for cut in 0..b.len() {
            assert!(Event::decode(&b[..cut]).is_none(), "prefix {cut} of {ev:?}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert!(Event::decode(&longer).is_none());
    }

    #[test]
    fn every_effect_round_trips_alone_and_in_one_batch_and_no_prefix_or_extension_decodes() {
        for e in samples() {
            check(&Event {
                origin: "n1".into(),
                effects: vec![e],
            });
        }
        check(&Event {
            origin: "n1".into(),
            effects: samples(),
        });
        check(&Event {
            origin: "n1".into(),
            effects: Vec::new(),
        });
    }

    #[test]
    fn an_unknown_tag_or_a_count_beyond_the_bytes_does_not_decode() {
        let mut w = Writer(Vec::new());
        w.str("n1");
        w.u64(1);
        w.u8(99);
        assert!(Event::decode(&w.0).is_none());
        let mut w = Writer(Vec::new());
        w.str("n1");
        w.u64(u64::MAX);
        w.u8(13);
        assert!(Event::decode(&w.0).is_none());
    }
}

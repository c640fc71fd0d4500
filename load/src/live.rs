//! The load phase: every set-up connection is handed to an event loop (one per generator
//! thread) that reads it when epoll says it is readable and sends its payloads when their slots
//! come.
//!
//! Why not one smol task per client, as during set-up: at 200 000 deliveries/s the per-read
//! costs of the async path were a large part of the generator's CPU. Each readiness went
//! through async-io's one-shot epoll registration (an `epoll_ctl` re-arm per read), a waker, the
//! executor's queue and an `Or` of the read and the client's timer, and the reactor was handed
//! back and forth between the `block_on` thread and the "async-io" thread (futex wake-ups, a
//! fifth of the generator's CPU in a profile). Here the sockets are registered once,
//! level-triggered, every readiness is one `read`, and the send slots are one binary heap. What
//! is measured is unchanged: every record is opened with core's real [`Session`] and decoded,
//! every IRC line parsed, and a delivery's latency is the time after the read that brought it
//! minus the stamp in its payload.

use core::cmp::Reverse;
use core::sync::atomic::Ordering;
use std::collections::BinaryHeap;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::sync::mpsc::Receiver;

use anyhow::{Result, anyhow, bail};
use chatbox_core::proto::{ClientMsg, ErrorCode, ServerMsg};
use chatbox_core::session::Session;
use rustix::event::{Timespec, epoll};

use crate::{Ctx, drain_records, irc, next_slot, note_error, pong, stats};

/// Longest wait in the loop (a new connection or a stop is seen within this).
const IDLE_WAIT_US: u64 = 10_000;

/// Unsent bytes a connection may hold (the server stopped reading it).
const MAX_OUT: usize = 256 * 1024;

/// What a ready connection speaks.
pub(crate) enum Kind {
    /// ChatBox: the established session, the account name (its own echo is not a delivery)
    /// and the room it says things to.
    Chatbox {
        session: Box<Session>,
        user: String,
        room: String,
    },
    /// IRC: the channel it says things to.
    Irc { room: String },
}

/// A set-up connection in the load phase (a non-blocking socket).
pub(crate) struct Live {
    stream: TcpStream,
    /// Received bytes not yet handled are `buf[..len]`.
    buf: Vec<u8>,
    len: usize,
    /// Bytes not yet written.
    out: Vec<u8>,
    kind: Kind,
}

impl Live {
    /// Takes over a set-up connection and what it read past the set-up (`buf[..len]`).
    pub(crate) fn new(stream: TcpStream, buf: Vec<u8>, len: usize, kind: Kind) -> Result<Live> {
        stream.set_nonblocking(true)?;
        Ok(Live {
            stream,
            buf,
            len,
            out: Vec::with_capacity(512),
            kind,
        })
    }

    /// One read; `false` if there was nothing (a spurious readiness).
    fn read_once(&mut self) -> Result<bool> {
        let space = self.buf.get_mut(self.len..).unwrap_or_default();
        if space.is_empty() {
            bail!("receive buffer full");
        }
        match (&self.stream).read(space) {
            Ok(0) => bail!("server closed the connection"),
            Ok(n) => {
                self.len += n;
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// [`Live::read_once`] for the tests: `true` if something was read.
    #[cfg(test)]
    pub(crate) fn read_once_for_test(&mut self) -> bool {
        self.read_once().unwrap_or(false)
    }

    /// Handles every complete record / line in the buffer; latencies (µs, received at `now`)
    /// of deliveries go to `lat`. IRC PINGs queue their PONG in `out`.
    pub(crate) fn process(&mut self, ctx: &Ctx, now: u64, lat: &mut Vec<u64>) -> Result<()> {
        let Live {
            buf,
            len,
            out,
            kind,
            ..
        } = self;
        match kind {
            Kind::Chatbox { session, user, .. } => {
                drain_records(session, buf, len, |m| {
                    match *m {
                        ServerMsg::Message(ref cm) => {
                            if cm.from == user.as_str() {
                                ctx.echoes.fetch_add(1, Ordering::Relaxed);
                            } else if let Some(t) = stats::parse_stamp(cm.text) {
                                lat.push(now.saturating_sub(t));
                            }
                        }
                        ServerMsg::Error { code, .. } if code == ErrorCode::RateLimited as u16 => {
                            ctx.refused.fetch_add(1, Ordering::Relaxed);
                        }
                        ServerMsg::Bye { reason } => bail!("server said bye: {reason}"),
                        _ => {}
                    }
                    Ok(None::<()>)
                })?;
            }
            Kind::Irc { .. } => {
                let mut err = None;
                let used = irc::split_lines(buf.get(..*len).unwrap_or_default(), |l| {
                    let Some(p) = irc::parse(l) else { return };
                    match p.command {
                        "PRIVMSG" => {
                            if let Some(t) = p.trailing.and_then(stats::parse_stamp) {
                                lat.push(now.saturating_sub(t));
                            }
                        }
                        "PING" => pong(out, &p),
                        "ERROR" => err = Some(l.to_owned()),
                        _ => {}
                    }
                });
                buf.copy_within(used..*len, 0);
                *len -= used;
                if let Some(e) = err {
                    bail!("IRC server: {e}");
                }
            }
        }
        Ok(())
    }

    /// Queues one payload to the connection's room (sealed, for ChatBox).
    pub(crate) fn queue_say(&mut self, text: &str) -> Result<()> {
        match &mut self.kind {
            Kind::Chatbox { session, room, .. } => {
                let mut pt = [0u8; 2048];
                let n = ClientMsg::Say { room, text }
                    .encode(&mut pt)
                    .map_err(|e| anyhow!("encode: {e:?}"))?;
                let at = self.out.len();
                self.out.resize(at + n + 64, 0);
                let w = session
                    .seal(
                        pt.get(..n).unwrap_or_default(),
                        self.out.get_mut(at..).unwrap_or_default(),
                    )
                    .map_err(|e| anyhow!("seal: {e}"))?;
                self.out.truncate(at + w);
            }
            Kind::Irc { room } => {
                self.out.extend_from_slice(b"PRIVMSG ");
                self.out.extend_from_slice(room.as_bytes());
                self.out.extend_from_slice(b" :");
                self.out.extend_from_slice(text.as_bytes());
                self.out.extend_from_slice(b"\r\n");
            }
        }
        Ok(())
    }

    /// Writes what is queued, as far as the socket takes it; `true` when all of it went out.
    pub(crate) fn flush(&mut self) -> Result<bool> {
        let mut done = 0;
        let r = loop {
            let rest = self.out.get(done..).unwrap_or_default();
            if rest.is_empty() {
                break Ok(true);
            }
            match (&self.stream).write(rest) {
                Ok(0) => break Err(anyhow!("server closed the connection")),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(e.into()),
            }
        };
        self.out.drain(..done);
        if self.out.len() > MAX_OUT {
            bail!("the server does not read ({} bytes unsent)", self.out.len());
        }
        r
    }
}

/// One connection of a loop.
struct Slot {
    /// Client index.
    i: usize,
    /// Send phase ∈ [0, 1).
    phase: f64,
    live: Live,
    /// Registered for writability too (unsent bytes).
    writing: bool,
}

/// What happened to a connection on a readiness.
fn on_ready(
    ep: &rustix::fd::OwnedFd,
    key: u64,
    s: &mut Slot,
    ctx: &Ctx,
    flags: epoll::EventFlags,
    lat: &mut Vec<u64>,
) -> Result<()> {
    if flags.intersects(epoll::EventFlags::IN | epoll::EventFlags::HUP | epoll::EventFlags::ERR)
        && s.live.read_once()?
    {
        if ctx.measuring.load(Ordering::Relaxed) {
            ctx.reads.fetch_add(1, Ordering::Relaxed);
        }
        // All records of one read arrived together: one clock reading for them.
        let now = ctx.now_us();
        s.live.process(ctx, now, lat)?;
    }
    if s.writing || !s.live.out.is_empty() {
        write_out(ep, key, s)?;
    }
    Ok(())
}

/// Flushes `s` and keeps its writability registration in step with what is left.
fn write_out(ep: &rustix::fd::OwnedFd, key: u64, s: &mut Slot) -> Result<()> {
    let all = s.live.flush()?;
    if all == s.writing {
        let flags = if all {
            epoll::EventFlags::IN
        } else {
            epoll::EventFlags::IN | epoll::EventFlags::OUT
        };
        epoll::modify(ep, &s.live.stream, epoll::EventData::new_u64(key), flags)?;
        s.writing = !all;
    }
    Ok(())
}

/// A connection failed: counted as lost (unless the run is stopping), its first error noted.
fn lose(ctx: &Ctx, i: usize, e: &anyhow::Error) {
    if !ctx.stop.load(Ordering::Relaxed) {
        note_error(ctx, &format!("client {i}: {e:#}"));
        ctx.lost.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs one event loop over the connections that come through `feed` (client index and its
/// ready connection) until `ctx.stop`.
pub(crate) fn run(ctx: &Ctx, feed: &Receiver<(usize, Live)>) {
    if let Err(e) = run_loop(ctx, feed) {
        note_error(ctx, &format!("event loop: {e:#}"));
    }
}

fn run_loop(ctx: &Ctx, feed: &Receiver<(usize, Live)>) -> Result<()> {
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    let mut conns: Vec<Option<Slot>> = Vec::new();
    // Send slots (µs since t0, connection key), earliest first.
    let mut due: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let mut rate_seen: Option<u64> = None;
    let mut events = Vec::with_capacity(1024);
    let mut lat = Vec::with_capacity(4096);
    while !ctx.stop.load(Ordering::Relaxed) {
        let rate_milli = ctx.rate_milli.load(Ordering::Relaxed);
        let rate = ctx.rate();
        // Newly set-up connections.
        while let Ok((i, live)) = feed.try_recv() {
            let key = conns.len();
            #[allow(clippy::cast_precision_loss)]
            let phase = i as f64 / ctx.clients.max(1) as f64;
            let mut s = Slot {
                i,
                phase,
                live,
                writing: false,
            };
            let r = epoll::add(
                &ep,
                &s.live.stream,
                epoll::EventData::new_u64(key as u64),
                epoll::EventFlags::IN,
            )
            .map_err(anyhow::Error::from)
            // What the set-up's last read brought past its end.
            .and_then(|()| s.live.process(ctx, ctx.now_us(), &mut lat));
            match r {
                Ok(()) => {
                    if rate > 0.0 && rate_seen == Some(rate_milli) {
                        due.push(Reverse((next_slot(ctx.now_us(), rate, phase), key)));
                    }
                    conns.push(Some(s));
                }
                Err(e) => {
                    lose(ctx, i, &e);
                    conns.push(None);
                }
            }
        }
        // A new rate: every connection's next slot at that rate.
        if rate_seen != Some(rate_milli) {
            rate_seen = Some(rate_milli);
            due.clear();
            if rate > 0.0 {
                let now = ctx.now_us();
                for (key, s) in conns.iter().enumerate() {
                    if let Some(s) = s {
                        due.push(Reverse((next_slot(now, rate, s.phase), key)));
                    }
                }
            }
        }
        let now = ctx.now_us();
        let wait_us = due
            .peek()
            .map_or(IDLE_WAIT_US, |Reverse((at, _))| at.saturating_sub(now))
            .min(IDLE_WAIT_US);
        #[allow(clippy::cast_possible_wrap)]
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: (wait_us * 1000) as i64,
        };
        events.clear();
        match epoll::wait(
            &ep,
            rustix::buffer::spare_capacity(&mut events),
            Some(&timeout),
        ) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        for ev in &events {
            // `Event` is packed: copy the fields out.
            let (flags, data) = (ev.flags, ev.data);
            let key = data.u64();
            let Some(entry) = usize::try_from(key).ok().and_then(|k| conns.get_mut(k)) else {
                continue;
            };
            let Some(s) = entry else { continue };
            if let Err(e) = on_ready(&ep, key, s, ctx, flags, &mut lat) {
                let _ = epoll::delete(&ep, &s.live.stream);
                lose(ctx, s.i, &e);
                *entry = None;
            }
        }
        ctx.record(&mut lat);
        // Sends whose slot has come (a slot passed while reading is sent now, not skipped).
        if rate > 0.0 && !ctx.stop.load(Ordering::Relaxed) {
            let now = ctx.now_us();
            while let Some(&Reverse((at, key))) = due.peek() {
                if at > now {
                    break;
                }
                due.pop();
                let Some(entry) = conns.get_mut(key) else {
                    continue;
                };
                let Some(s) = entry else { continue };
                let text = stats::payload(ctx.now_us(), s.i, ctx.payload);
                let r = s
                    .live
                    .queue_say(&text)
                    .and_then(|()| write_out(&ep, key as u64, s));
                match r {
                    Ok(()) => {
                        if ctx.measuring.load(Ordering::Relaxed) {
                            ctx.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        due.push(Reverse((next_slot(now, rate, s.phase), key)));
                    }
                    Err(e) => {
                        let _ = epoll::delete(&ep, &s.live.stream);
                        lose(ctx, s.i, &e);
                        *entry = None;
                    }
                }
            }
        }
    }
    Ok(())
}

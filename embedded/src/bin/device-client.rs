//! A ChatBox device: firmware for the Cortex-M4F of QEMU's mps2-an386 that logs in to a real
//! `chatbox-server` through UART0 and answers commands in a room.
//!
//! QEMU joins the UART to a TCP connection (`-serial tcp:127.0.0.1:PORT`), so the byte stream
//! on the UART is the server's TCP stream: no network stack. The settings come from the
//! semihosting command line (`user= password= totp= key= room= ping=`, see
//! [`chatbox_embedded::device::Config`]); nothing secret is compiled in.
//!
//! 1. Noise NX handshake; the server's static key must have the fingerprint in `key=`, or the
//!    device exits 3 without sending anything more.
//! 2. Login with the password and the TOTP code of the host's current time (`SYS_TIME`);
//!    refused: exit 4.
//! 3. Join the room and say `hello from NAME`; then answer lines said there by others:
//!    `!ping` → `pong`, `!echo TEXT` → `TEXT`, `!stats` → `records sent=N received=M stack=B
//!    bytes`, `!bye` → Bye and exit 0. A Ping every `ping=` seconds (30 by default) keeps the
//!    session alive; no Pong within that interval plus 10 s means the connection is lost: exit 2,
//!    as for a Bye from the server or anything that breaks the protocol.
//!
//! Every wait has a deadline, and every end goes through semihosting `exit`: never a hang.
//! Everything that is protocol is chatbox-core's: this file drives `session::Session`, encodes
//! `ClientMsg` and decodes `ServerMsg`.
//!
//! Randomness: the 32 bytes of the ephemeral key come from the host's `/dev/urandom`, read
//! through semihosting file calls — on the emulated board the host is the only entropy there
//! is, and its kernel CSPRNG is a real one. Without it the device refuses to start (exit 1)
//! rather than derive a guessable key from clocks or the command line. A real board must use a
//! hardware TRNG (e.g. STM32 RNG, nRF RNG, or a secure element) instead.
#![no_std]
#![no_main]

use chatbox_core::frame::{self, Decoded, HEADER_LEN, MAX_WIRE_LEN};
use chatbox_core::noise::fingerprint;
use chatbox_core::proto::{
    ClientMsg, ErrorCode, MAX_ROOM_LEN, MAX_TEXT_LEN, MessageKind, ServerMsg,
};
use chatbox_core::session::{Event, Input, RECORD_OVERHEAD, Session};
use chatbox_embedded::clock::{Clock, unix_seconds};
use chatbox_embedded::device::{Config, Exit, Reply, STATS_LEN, Stats, reply};
use chatbox_embedded::uart::Uart;
use chatbox_embedded::{EXIT_HARD_FAULT, exit, stack};
use cortex_m_rt::{entry, exception};
use zeroize::Zeroize;

/// Room for the semihosting command line.
const ARGS_LEN: usize = 1024;
/// The largest record the device sends: a Say of the longest room and text the server accepts
/// (the Login, at most 175 bytes of plaintext, is smaller).
const TX_LEN: usize = RECORD_OVERHEAD + 1 + 2 + MAX_ROOM_LEN + 2 + MAX_TEXT_LEN;
/// Time for the handshake (the server allows 10 s).
const HANDSHAKE_MS: u64 = 15_000;
/// Time for the login's answer (the server hashes the password, and may queue the work).
const LOGIN_MS: u64 = 60_000;
/// How long a Pong may take beyond the ping interval before the connection counts as lost.
const PONG_GRACE_MS: u64 = 10_000;
/// How long one record may take to leave the UART before the connection counts as lost.
const WRITE_MS: u64 = 10_000;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    chatbox_embedded::panic_location_only(info)
}

/// Interrupts are masked for good (see `chatbox_embedded::uart`); if one were ever taken, end
/// the run instead of cortex-m-rt's default endless loop.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    defmt::error!("unexpected interrupt {=i16}", irqn);
    exit(EXIT_HARD_FAULT)
}

#[entry]
fn main() -> ! {
    stack::paint();
    let status = run();
    defmt::println!(
        "exit {=i32} ({}), peak stack {=usize} bytes",
        status.code(),
        status,
        stack::peak()
    );
    exit(status.code())
}

fn run() -> Exit {
    let Ok(args) = semihosting::experimental::env::args::<ARGS_LEN>() else {
        defmt::error!("no semihosting command line");
        return Exit::Config;
    };
    let config = match Config::parse((&args).into_iter().filter_map(Result::ok)) {
        Ok(c) => c,
        Err(e) => {
            defmt::error!("bad command line: {}", e);
            return Exit::Config;
        }
    };
    defmt::println!(
        "device {=str}: room {=str}, server key {=str}, ping every {=u32} s",
        config.user.as_str(),
        config.room,
        config.key,
        config.ping_secs
    );
    let Some(clock) = Clock::new() else {
        defmt::error!("the host has no SYS_ELAPSED clock");
        return Exit::Config;
    };
    let mut ephemeral = [0u8; 32];
    if semihosting::experimental::random::fill_bytes(&mut ephemeral).is_err() {
        defmt::error!("no randomness from the host (/dev/urandom through semihosting)");
        return Exit::Config;
    }
    let Some(cp) = cortex_m::Peripherals::take() else {
        return Exit::Config;
    };
    let Some(uart) = Uart::take(cp.SYST) else {
        return Exit::Config;
    };
    let (Some(rx), Some(tx)) = (
        cortex_m::singleton!(: [u8; MAX_WIRE_LEN] = [0; MAX_WIRE_LEN]),
        cortex_m::singleton!(: [u8; TX_LEN] = [0; TX_LEN]),
    ) else {
        return Exit::Config;
    };
    let mut link = Link {
        uart,
        clock,
        session: Session::client(ephemeral),
        tx,
        rx_len: 0,
    };
    ephemeral.zeroize();
    match device(&mut link, &config, rx) {
        Ok(()) => Exit::Bye,
        Err(e) => e,
    }
}

/// Handshake, login, join, hello, then answers until `!bye`.
fn device(link: &mut Link, config: &Config<'_>, rx: &mut [u8]) -> Result<(), Exit> {
    let start = link.clock.now_ms();
    handshake(link, config, rx)?;
    let handshake_done = link.clock.now_ms();
    defmt::println!(
        "handshake done in {=u64} ms; server key {=str} is the pinned one",
        handshake_done.saturating_sub(start),
        config.key
    );

    let code = config
        .totp
        .generate(unix_seconds())
        .map_err(|_| Exit::Config)?;
    link.send(&ClientMsg::Login {
        user: config.user.as_str(),
        password: config.password,
        otp: code.as_str(),
    })?;
    login(link, rx, handshake_done)?;

    link.send(&ClientMsg::Join { room: config.room })?;
    let mut hello = heapless::String::<64>::new();
    let _ = hello.push_str("hello from ");
    let _ = hello.push_str(config.user.as_str());
    link.send(&ClientMsg::Say {
        room: config.room,
        text: &hello,
    })?;
    defmt::println!("joined {=str}, said {=str}", config.room, hello.as_str());
    chat(link, config, rx)
}

/// Sends message 1, reads message 2, checks the server key against `key=`.
fn handshake(link: &mut Link, config: &Config<'_>, rx: &mut [u8]) -> Result<(), Exit> {
    let n = link.session.poll_transmit(&mut link.tx[..]).map_err(|e| {
        defmt::error!("handshake: {}", e);
        Exit::Lost
    })?;
    link.write_frame(n)?;
    let deadline = link.clock.now_ms().saturating_add(HANDSHAKE_MS);
    let Some(len) = link.read_frame(rx, deadline)? else {
        defmt::error!("no handshake answer within {=u64} ms", HANDSHAKE_MS);
        return Err(Exit::Lost);
    };
    match link.session.handle_input(&mut rx[..len]) {
        Ok(Input::Handshake { .. }) => {}
        Ok(_) => return Err(protocol("a record instead of handshake message 2")),
        Err(e) => {
            defmt::error!("handshake failed: {}", e);
            return Err(Exit::Lost);
        }
    }
    if link.session.poll_event() != Some(Event::Established) {
        return Err(protocol("handshake did not complete"));
    }
    let got = link.session.remote_static().map(fingerprint);
    match got {
        // A fingerprint is public: no need for a constant-time comparison.
        Some(fp) if fp.as_str() == config.key => Ok(()),
        Some(fp) => {
            defmt::error!(
                "server key mismatch: the server has {=str}, key= pins {=str}; not trusting it",
                fp.as_str(),
                config.key
            );
            Err(Exit::KeyMismatch)
        }
        None => Err(protocol("no server key after the handshake")),
    }
}

/// Waits for the answer to Login (other records before it are skipped) and logs who the
/// server says we are, `since` the login began.
fn login(link: &mut Link, rx: &mut [u8], since: u64) -> Result<(), Exit> {
    loop {
        let Some(len) = link.read_frame(rx, since.saturating_add(LOGIN_MS))? else {
            defmt::error!("no answer to Login within {=u64} ms", LOGIN_MS);
            return Err(Exit::Lost);
        };
        match decode(link.record(&mut rx[..len])?)? {
            ServerMsg::LoginOk { user, .. } => {
                defmt::println!(
                    "logged in as {=str} in {=u64} ms",
                    user,
                    link.clock.now_ms().saturating_sub(since)
                );
                return Ok(());
            }
            ServerMsg::Error { code, text } => {
                defmt::error!(
                    "login refused: {=str} ({=str})",
                    ErrorCode::from_u16(code).map_or("unknown", ErrorCode::name),
                    text
                );
                return Err(Exit::Refused);
            }
            ServerMsg::Bye { reason } => {
                defmt::error!("login refused: server said Bye ({=str})", reason);
                return Err(Exit::Refused);
            }
            _ => {}
        }
    }
}

/// The chat: answers commands, keeps the session alive, ends on `!bye` (Ok) or an error.
fn chat(link: &mut Link, config: &Config<'_>, rx: &mut [u8]) -> Result<(), Exit> {
    let interval = u64::from(config.ping_secs) * 1000;
    let mut next_ping = link.clock.now_ms().saturating_add(interval);
    // The outstanding Ping: token, when it was sent.
    let mut outstanding: Option<(u64, u64)> = None;
    let mut token = 0u64;
    let mut scratch = [0u8; STATS_LEN];
    loop {
        // Timers first, every time round: a steady stream of records must not delay the Ping.
        let now = link.clock.now_ms();
        let pong_due = outstanding.map_or(u64::MAX, |(_, sent)| {
            sent.saturating_add(interval + PONG_GRACE_MS)
        });
        if now >= pong_due {
            defmt::error!(
                "no Pong within {=u64} ms: connection lost",
                interval + PONG_GRACE_MS
            );
            return Err(Exit::Lost);
        }
        if now >= next_ping {
            if outstanding.is_none() {
                token += 1;
                link.send(&ClientMsg::Ping { token })?;
                outstanding = Some((token, now));
            }
            next_ping = now.saturating_add(interval);
        }
        let Some(len) = link.read_frame(rx, next_ping.min(pong_due))? else {
            continue;
        };
        let msg = decode(link.record(&mut rx[..len])?)?;
        match msg {
            ServerMsg::Message(m)
                if m.kind == MessageKind::Say
                    && m.target == config.room
                    && m.from != config.user.as_str() =>
            {
                let (sent, received) = link.session.epochs();
                let stats = Stats {
                    sent,
                    received,
                    stack: stack::peak(),
                };
                match reply(m.text, stats, &mut scratch) {
                    Some(Reply::Say(text)) => {
                        defmt::println!(
                            "{=str} said {=str} ({=usize} bytes); answering with {=usize} bytes",
                            m.from,
                            command_name(m.text),
                            m.text.len(),
                            text.len()
                        );
                        link.send(&ClientMsg::Say {
                            room: config.room,
                            text,
                        })?;
                    }
                    Some(Reply::Bye) => {
                        defmt::println!("{=str} said !bye: sending Bye", m.from);
                        link.send(&ClientMsg::Bye)?;
                        defmt::println!(
                            "records sent={=u64} received={=u64}",
                            link.session.epochs().0,
                            link.session.epochs().1
                        );
                        return Ok(());
                    }
                    None => {}
                }
            }
            ServerMsg::Pong { token: t } => {
                if let Some((expected, sent)) = outstanding
                    && t == expected
                {
                    defmt::println!(
                        "pong {=u64} after {=u64} ms",
                        t,
                        link.clock.now_ms().saturating_sub(sent)
                    );
                    outstanding = None;
                }
            }
            ServerMsg::Error { code, text } => defmt::warn!(
                "server error {=str}: {=str}",
                ErrorCode::from_u16(code).map_or("unknown", ErrorCode::name),
                text
            ),
            ServerMsg::Bye { reason } => {
                defmt::error!("the server said Bye: {=str}", reason);
                return Err(Exit::Lost);
            }
            _ => {}
        }
    }
}

/// The command word of a line, for the log (an `!echo`'s text is not logged).
fn command_name(text: &str) -> &str {
    text.split(' ').next().unwrap_or_default()
}

/// Decodes a server message; anything undecodable breaks the protocol.
fn decode(plaintext: &[u8]) -> Result<ServerMsg<'_>, Exit> {
    ServerMsg::decode(plaintext).map_err(|e| {
        defmt::error!("undecodable server message: {}", e);
        Exit::Lost
    })
}

fn protocol(what: &str) -> Exit {
    defmt::error!("protocol error: {=str}", what);
    Exit::Lost
}

/// The connection: the UART, the session, and the transmit buffer.
struct Link {
    uart: Uart,
    clock: Clock,
    session: Session,
    tx: &'static mut [u8; TX_LEN],
    /// Bytes of the frame being received, kept across timeouts.
    rx_len: usize,
}

impl Link {
    /// Encodes `msg` straight into the record buffer, seals it in place and sends it.
    fn send(&mut self, msg: &ClientMsg<'_>) -> Result<(), Exit> {
        let body = self.tx.get_mut(HEADER_LEN..).unwrap_or_default();
        let Ok(len) = msg.encode(body) else {
            defmt::warn!(
                "{=str} does not fit the transmit buffer; not sent",
                msg.name()
            );
            return Ok(());
        };
        let n = self
            .session
            .seal_in_place(&mut self.tx[..], len)
            .map_err(|e| {
                defmt::error!("seal: {}", e);
                Exit::Lost
            })?;
        self.write_frame(n)
    }

    /// Writes `tx[..n]` to the UART, waiting for each byte to be taken.
    fn write_frame(&mut self, n: usize) -> Result<(), Exit> {
        let deadline = self.clock.now_ms().saturating_add(WRITE_MS);
        for &byte in self.tx.get(..n).unwrap_or_default() {
            while !self.uart.try_write(byte) {
                if self.clock.now_ms() >= deadline {
                    defmt::error!("the UART took no byte for {=u64} ms", WRITE_MS);
                    return Err(Exit::Lost);
                }
                self.uart.wait();
            }
        }
        // Out of the UART before anything else happens (an exit included).
        while !self.uart.tx_idle() {
            if self.clock.now_ms() >= deadline {
                return Err(Exit::Lost);
            }
            self.uart.wait();
        }
        Ok(())
    }

    /// Reads until `rx` starts with a whole frame (`Some(its length)`), or `deadline` (ms)
    /// passes (`None`; what was read so far is kept for the next call). Reads no byte beyond
    /// the frame, so a frame always starts at `rx[0]`.
    fn read_frame(&mut self, rx: &mut [u8], deadline: u64) -> Result<Option<usize>, Exit> {
        loop {
            let needed = match frame::decode(rx.get(..self.rx_len).unwrap_or_default()) {
                Ok(Decoded::Frame(_, len)) => {
                    self.rx_len = 0;
                    return Ok(Some(len));
                }
                Ok(Decoded::Incomplete { needed }) => needed,
                Err(e) => {
                    defmt::error!("bad frame from the server: {}", e);
                    return Err(Exit::Lost);
                }
            };
            for _ in 0..needed {
                let byte = loop {
                    if let Some(b) = self.uart.try_read() {
                        break b;
                    }
                    if self.clock.now_ms() >= deadline {
                        return Ok(None);
                    }
                    self.uart.wait();
                };
                let Some(slot) = rx.get_mut(self.rx_len) else {
                    return Err(protocol("frame larger than the receive buffer"));
                };
                *slot = byte;
                self.rx_len += 1;
            }
        }
    }

    /// Opens the transport record in `frame` (in place) and returns its plaintext.
    fn record<'r>(&mut self, frame: &'r mut [u8]) -> Result<&'r [u8], Exit> {
        match self.session.handle_input(frame) {
            Ok(Input::Record { plaintext, .. }) => Ok(plaintext),
            Ok(_) => Err(protocol("a handshake message after the handshake")),
            Err(e) => {
                defmt::error!("bad record: {}", e);
                Err(Exit::Lost)
            }
        }
    }
}

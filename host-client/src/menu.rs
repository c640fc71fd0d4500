//! The interactive menu of the original ChatBox: `1) Register  2) Login  3) Quit`.

use std::io::{self, BufRead as _, Write as _};

use chatbox_core::proto::ErrorCode;

use crate::account::{register_confirm, register_start_with};
use crate::conn::note_trust;
use crate::error::ClientError;
use crate::failover::{Target, first_login};
use crate::invite::{self, Destination};
use crate::known_servers::Trust;
use crate::otp_source::OtpSource;
use crate::qr_view::{self, QrStyle};
use crate::servers::{ServerList, connect_any};
use crate::tui::{self, Reconnect};

/// Tries allowed for the confirmation code.
const CODE_TRIES: usize = 3;

/// Prints `prompt` and reads one line from stdin; `None` at end of input.
pub fn prompt_line(prompt: &str) -> Result<Option<String>, ClientError> {
    let io_err = |e: io::Error| ClientError::Io(format!("terminal: {e}"));
    let mut out = io::stdout().lock();
    write!(out, "{prompt}")
        .and_then(|()| out.flush())
        .map_err(io_err)?;
    let mut line = String::new();
    let n = io::stdin().lock().read_line(&mut line).map_err(io_err)?;
    Ok((n > 0).then(|| line.trim().to_owned()))
}

/// Reads a password without echo, from `CHATBOX_PASSWORD` if set (scripts).
pub fn read_password(prompt: &str) -> Result<String, ClientError> {
    if let Some(p) = std::env::var_os("CHATBOX_PASSWORD") {
        return p
            .into_string()
            .map_err(|_| ClientError::Usage("CHATBOX_PASSWORD is not valid UTF-8".into()));
    }
    rpassword::prompt_password(prompt)
        .map_err(|e| ClientError::Io(format!("cannot read the password: {e}")))
}

fn ask_user() -> Result<Option<String>, ClientError> {
    loop {
        let Some(name) = prompt_line("Username: ")? else {
            return Ok(None);
        };
        match chatbox_core::username::normalize(&name) {
            Ok(n) => return Ok(Some(n.as_str().to_owned())),
            Err(e) => println!("{e}."),
        }
    }
}

/// Asks for a new password twice, without echo, until it meets the policy and both agree.
pub fn ask_new_password() -> Result<String, ClientError> {
    loop {
        let first = read_password("Password (8 to 128 bytes, not shown): ")?;
        if let Err(e) = chatbox_core::password::check_password_policy(first.as_bytes()) {
            println!("{e}.");
            continue;
        }
        let second = read_password("Password again: ")?;
        if first == second {
            return Ok(first);
        }
        println!("The passwords differ; try again.");
    }
}

/// The menu loop.
pub fn run(
    servers: &ServerList,
    trust: &Trust,
    style: QrStyle,
    secret: Option<OtpSource>,
) -> Result<(), ClientError> {
    loop {
        println!();
        println!("ChatBox — {servers}");
        println!("  1) Register");
        println!("  2) Login");
        println!("  3) Quit");
        let Some(choice) = prompt_line("Choice: ")? else {
            return Ok(());
        };
        match choice.as_str() {
            "1" => register(
                Destination {
                    servers: servers.clone(),
                    trust: trust.clone(),
                    invite: None,
                },
                style,
            )?,
            "2" => return login_and_chat(servers, trust, None, None, secret),
            "3" | "q" | "quit" => return Ok(()),
            _ => println!("Please type 1, 2 or 3."),
        }
    }
}

/// Shows the enrolment screen for `uri`.
pub fn show_enrolment(uri: &str, style: QrStyle) {
    println!();
    println!(
        "Scan this QR code with your authenticator app (Google Authenticator, Aegis, FreeOTP…):"
    );
    println!();
    match qr_view::render_text(uri, style) {
        Ok(lines) => {
            let width = lines
                .first()
                .map_or(0, |l| l.chars().filter(|c| " ▀▄█".contains(*c)).count());
            if let Ok((cols, _)) = crossterm::terminal::size()
                && usize::from(cols) < width
            {
                println!(
                    "(The terminal is {cols} columns wide; the code needs {width}: widen it.)"
                );
            }
            for line in lines {
                println!("{line}");
            }
        }
        Err(e) => println!("(cannot draw the QR code: {e})"),
    }
    println!();
    if let Some(secret) = qr_view::otpauth_secret(uri) {
        let grouped = qr_view::grouped_secret(secret).unwrap_or_else(|| secret.to_owned());
        println!("Or add it by hand (time-based, SHA1, 6 digits, 30 s):  {grouped}");
    }
    println!("URI: {uri}");
    println!();
}

/// Shows the scratch codes, once.
pub fn show_scratch_codes(codes: &[String]) {
    println!();
    println!("Registration complete. Your scratch codes:");
    println!();
    for pair in codes.chunks(2) {
        println!("    {}", pair.join("    "));
    }
    println!();
    println!("Each works once in place of a one-time code if you lose your phone.");
    println!(
        "Store them somewhere safe now (a password manager, or on paper): they are not shown again."
    );
}

/// `chatbox-client join LINK`: the registration of the menu on the link's server (with its
/// invite, its key pinned), then the menu for that server.
pub fn join(
    dest: &Destination,
    style: QrStyle,
    secret: Option<OtpSource>,
) -> Result<(), ClientError> {
    println!("Invite for {}.", dest.servers);
    register(dest.clone(), style)?;
    run(&dest.servers, &dest.trust, style, secret)
}

/// Asks for an invite (a link or its code) until one parses, for `servers`; `None` to go back.
fn ask_invite(servers: &ServerList, trust: &Trust) -> Result<Option<Destination>, ClientError> {
    println!("{servers} registers by invite only.");
    loop {
        let Some(text) = prompt_line("Invite (the link or its code; empty to go back): ")? else {
            return Ok(None);
        };
        if text.is_empty() {
            return Ok(None);
        }
        match invite::for_invite(&text, servers, false, trust) {
            Ok(dest)
                if dest
                    .servers
                    .addrs()
                    .iter()
                    .all(|a| !servers.addrs().contains(a)) =>
            {
                println!(
                    "That invite is for {}, not {servers}: run chatbox-client join with the link.",
                    dest.servers
                );
            }
            Ok(dest) => return Ok(Some(dest)),
            Err(e) => println!("{e}."),
        }
    }
}

fn register(dest: Destination, style: QrStyle) -> Result<(), ClientError> {
    let mut dest = dest;
    if dest.invite.is_none() {
        let required = smol::block_on(invite::probe_policy(&dest.servers, &dest.trust))?;
        if required {
            match ask_invite(&dest.servers, &dest.trust)? {
                Some(d) => dest = d,
                None => return Ok(()),
            }
        }
    }
    let Some(user) = ask_user()? else {
        return Ok(());
    };
    let password = ask_new_password()?;
    smol::block_on(async {
        let (mut conn, _) = connect_any(&dest.servers, &dest.trust).await?;
        note_trust(&conn);
        let uri =
            match register_start_with(&mut conn, &user, &password, dest.invite.as_deref()).await {
                Ok(uri) => uri,
                Err(e) if e.is_refusal(ErrorCode::AlreadyRegistered) => return Err(e),
                Err(e) if e.is_refusal(ErrorCode::InviteInvalid) => {
                    println!(
                        "Registration refused: the invite is not valid (unknown, expired, used up \
                     or revoked). Ask for a new one."
                    );
                    return Ok(());
                }
                Err(e @ ClientError::Refused { .. }) => {
                    println!("Registration refused: {e}");
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
        show_enrolment(&uri, style);
        for attempt in 1..=CODE_TRIES {
            let Some(code) = prompt_line("Code shown by the app: ")? else {
                return Err(ClientError::Usage("input ended before the code".into()));
            };
            match register_confirm(&mut conn, &code).await {
                Ok(codes) => {
                    show_scratch_codes(&codes);
                    let _ = conn.send(&chatbox_core::proto::ClientMsg::Bye).await;
                    println!("You can now log in (choice 2).");
                    return Ok(());
                }
                Err(e) if e.is_refusal(ErrorCode::InvalidCode) && attempt < CODE_TRIES => {
                    println!("That code was not accepted; wait for the next one and try again.");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
}

/// Asks for what is missing, logs in, and opens the chat screen. With `secret`
/// (`CHATBOX_TOTP_SECRET`) no code is asked for: it is computed, now and after a reconnect.
pub fn login_and_chat(
    servers: &ServerList,
    trust: &Trust,
    user: Option<&str>,
    otp: Option<&str>,
    mut secret: Option<OtpSource>,
) -> Result<(), ClientError> {
    let user = match user {
        Some(u) => u.to_owned(),
        None => match ask_user()? {
            Some(u) => u,
            None => return Ok(()),
        },
    };
    let password = read_password("Password: ")?;
    let otp = match (otp, &secret) {
        (Some(o), _) => Some(o.to_owned()),
        (None, Some(_)) => None,
        (None, None) => Some(
            prompt_line("One-time code (or a scratch code): ")?
                .ok_or_else(|| ClientError::Usage("input ended before the code".into()))?,
        ),
    };
    let target = Target {
        servers: servers.clone(),
        trust: trust.clone(),
        user,
        password,
    };
    let (logged_in, at) = smol::block_on(first_login(&target, otp.as_deref(), secret.as_mut()))?;
    note_trust(&logged_in.conn);
    tui::run(logged_in, Reconnect { target, secret, at })
}

//! Registration and login exchanges, shared by the menu, the plain mode and the chat screen's
//! reconnect.

use core::time::Duration;

use chatbox_core::proto::ClientMsg;

use crate::conn::{Conn, timeout};
use crate::error::ClientError;
use crate::event::ServerEvent;
use crate::known_servers::Trust;

/// How long to wait for the server to answer a registration or login (the server hashes the
/// password with PBKDF2, possibly behind a queue).
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits for the first event `pick` accepts; `Error` events fail, `Bye` ends. Events `pick`
/// declines are returned alongside (e.g. presence that arrived before `LoginOk`).
async fn wait_for<T>(
    conn: &mut Conn,
    what: &str,
    mut pick: impl FnMut(&ServerEvent) -> Option<T>,
) -> Result<(T, Vec<ServerEvent>), ClientError> {
    let what = what.to_owned();
    timeout(
        AUTH_TIMEOUT,
        || ClientError::ConnectionLost(format!("no answer from the server ({what})")),
        async {
            let mut others = Vec::new();
            loop {
                let event = conn.recv().await?;
                if let Some(v) = pick(&event) {
                    return Ok((v, others));
                }
                match event {
                    ServerEvent::Error { code, text } => {
                        return Err(ClientError::Refused { code, text });
                    }
                    ServerEvent::Bye { reason } => {
                        return Err(ClientError::ConnectionLost(format!(
                            "the server closed the connection: {reason}"
                        )));
                    }
                    // The answer itself is broken (e.g. `LoginOk` with an invalid name).
                    ServerEvent::Invalid {
                        tag: 0x81..=0x83,
                        what,
                    } => {
                        return Err(ClientError::ConnectionLost(format!(
                            "the server sent an invalid {what}"
                        )));
                    }
                    other => others.push(other),
                }
            }
        },
    )
    .await
}

/// Sends `Register` and returns the otpauth URI to enrol.
pub async fn register_start(
    conn: &mut Conn,
    user: &str,
    password: &str,
) -> Result<String, ClientError> {
    register_start_with(conn, user, password, None).await
}

/// Sends `Register`, or `RegisterInvite` with `invite` (a token's text form), and returns the
/// otpauth URI to enrol. A refused invite is `Refused` with `invite_invalid` (exit 4).
pub async fn register_start_with(
    conn: &mut Conn,
    user: &str,
    password: &str,
    invite: Option<&str>,
) -> Result<String, ClientError> {
    match invite {
        Some(invite) => {
            conn.send(&ClientMsg::RegisterInvite {
                user,
                password,
                invite,
            })
            .await?;
        }
        None => conn.send(&ClientMsg::Register { user, password }).await?,
    }
    let (uri, _) = wait_for(conn, "registration", |e| match e {
        ServerEvent::RegisterStarted { uri } => Some(uri.clone()),
        _ => None,
    })
    .await?;
    Ok(uri)
}

/// Sends `ConfirmTotp` and returns the scratch codes.
pub async fn register_confirm(conn: &mut Conn, code: &str) -> Result<Vec<String>, ClientError> {
    conn.send(&ClientMsg::ConfirmTotp { code }).await?;
    let (codes, _) = wait_for(conn, "confirmation", |e| match e {
        ServerEvent::Registered { scratch_codes } => Some(scratch_codes.clone()),
        _ => None,
    })
    .await?;
    Ok(codes)
}

/// A successful login.
#[derive(Debug)]
pub struct LoggedIn {
    /// The connection, now logged in.
    pub conn: Conn,
    /// Canonical user name.
    pub user: String,
    /// Message of the day.
    pub motd: String,
    /// Events that arrived with the login answer (in order, `LoginOk` excluded).
    pub early: Vec<ServerEvent>,
}

/// Connects and logs in.
pub async fn login(
    server: &str,
    trust: &Trust,
    user: &str,
    password: &str,
    otp: &str,
) -> Result<LoggedIn, ClientError> {
    let conn = Conn::connect(server, trust).await?;
    login_on(conn, user, password, otp).await
}

/// Logs in on an established connection.
pub async fn login_on(
    mut conn: Conn,
    user: &str,
    password: &str,
    otp: &str,
) -> Result<LoggedIn, ClientError> {
    conn.send(&ClientMsg::Login {
        user,
        password,
        otp: otp.trim(),
    })
    .await?;
    let ((user, motd), early) = wait_for(&mut conn, "login", |e| match e {
        ServerEvent::LoginOk { user, motd } => Some((user.clone(), motd.clone())),
        _ => None,
    })
    .await?;
    Ok(LoggedIn {
        conn,
        user,
        motd,
        early,
    })
}

/// Sends `ChangePassword` and waits for `PasswordChanged`: how many other sessions were closed.
pub async fn change_password(
    conn: &mut Conn,
    password: &str,
    otp: &str,
    new_password: &str,
) -> Result<u32, ClientError> {
    conn.send(&ClientMsg::ChangePassword {
        password,
        otp: otp.trim(),
        new_password,
    })
    .await?;
    let (closed, _) = wait_for(conn, "password change", |e| match e {
        ServerEvent::PasswordChanged { closed } => Some(*closed),
        _ => None,
    })
    .await?;
    Ok(closed)
}

//! `chatbox-client passwd --user U`: a password change for scripts.
//!
//! The current password comes from `CHATBOX_PASSWORD`, the new one from `CHATBOX_NEW_PASSWORD`
//! (else both are asked without echo, the new one twice). One one-time code is enough: `--otp`
//! or computed from `CHATBOX_TOTP_SECRET`; it logs in, and the server accepts the step the login
//! spent once more to confirm the change on that same session (any other spent step is refused).
//! A second `--otp` (e.g. a scratch code) confirms the change instead. On success it prints
//! `passwd N` (the number of the user's other sessions the server closed) and exits 0; a
//! refusal exits 4.

use chatbox_core::proto::ClientMsg;

use crate::account::change_password;
use crate::conn::note_trust;
use crate::error::ClientError;
use crate::failover::{Target, first_login};
use crate::menu::{ask_new_password, read_password};
use crate::otp_source::{OtpSource, Plan, SECRET_ENV, unix_ms};
use crate::plain::out_line;

/// Where the new password comes from in scripts.
pub const NEW_PASSWORD_ENV: &str = "CHATBOX_NEW_PASSWORD";

/// The new password: `CHATBOX_NEW_PASSWORD`, else asked twice without echo. Checked against
/// the password policy before anything is sent.
pub fn new_password() -> Result<String, ClientError> {
    if std::env::var_os(NEW_PASSWORD_ENV).is_none() {
        return ask_new_password();
    }
    new_password_from_env()
}

/// `CHATBOX_NEW_PASSWORD`, checked against the password policy (an error if it is not set).
pub fn new_password_from_env() -> Result<String, ClientError> {
    let pw = std::env::var_os(NEW_PASSWORD_ENV)
        .ok_or_else(|| ClientError::Usage(format!("{NEW_PASSWORD_ENV} is not set")))?
        .into_string()
        .map_err(|_| ClientError::Usage(format!("{NEW_PASSWORD_ENV} is not valid UTF-8")))?;
    chatbox_core::password::check_password_policy(pw.as_bytes())
        .map_err(|e| ClientError::Usage(format!("{NEW_PASSWORD_ENV}: {e}")))?;
    Ok(pw)
}

/// The next code from `secret`, waiting for a usable step if it must; the step counts as spent.
pub async fn computed_code(secret: &mut OtpSource) -> Result<String, ClientError> {
    loop {
        match secret.plan(unix_ms())? {
            Plan::Use { step, code } => {
                secret.mark_sent(step);
                return Ok(code);
            }
            Plan::Wait(d) => {
                smol::Timer::after(d).await;
            }
        }
    }
}

/// Runs `passwd`. `target.password` is filled here.
pub fn run(
    mut target: Target,
    otp: &[String],
    mut secret: Option<OtpSource>,
) -> Result<(), ClientError> {
    if otp.len() > 2 {
        return Err(ClientError::Usage(
            "passwd takes --otp at most twice (the login's code, then the change's)".into(),
        ));
    }
    if otp.is_empty() && secret.is_none() {
        return Err(ClientError::Usage(format!(
            "passwd needs one-time codes: --otp LOGIN_CODE --otp CHANGE_CODE, or {SECRET_ENV}"
        )));
    }
    target.password = read_password("Current password (not shown): ")?;
    let new = new_password()?;
    if new == target.password {
        return Err(ClientError::Usage(
            "the new password is the current one".into(),
        ));
    }
    smol::block_on(async {
        let first = otp.first().map(String::as_str);
        let (mut logged_in, _) = first_login(&target, first, secret.as_mut()).await?;
        note_trust(&logged_in.conn);
        // The login's own code again (accepted on this session), unless a second one was given.
        let code = match (
            otp.get(1),
            first,
            secret.as_ref().and_then(OtpSource::last_code),
        ) {
            (Some(c), _, _) => c.clone(),
            (None, Some(c), _) => c.to_owned(),
            (None, None, Some(c)) => c,
            (None, None, None) => unreachable_code()?,
        };
        let closed = change_password(&mut logged_in.conn, &target.password, &code, &new).await?;
        let _ = logged_in.conn.send(&ClientMsg::Bye).await;
        eprintln!(
            "Password changed for {}; {closed} other session(s) closed.",
            logged_in.user
        );
        out_line(&format!("passwd {closed}"))
    })
}

/// Never reached (checked above); an error rather than a panic all the same.
fn unreachable_code() -> Result<String, ClientError> {
    Err(ClientError::Usage("no one-time code for the change".into()))
}

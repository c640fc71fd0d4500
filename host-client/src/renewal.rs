//! Credentials changed during a session: after `/passwd` the next login (a reconnect) needs the
//! new password, after a confirmed re-enrolment the codes computed from `CHATBOX_TOTP_SECRET`
//! come from the new secret. Both drivers (plain mode, the chat screen) follow the server's
//! answers with one [`Renewal`].

use crate::event::ServerEvent;
use crate::otp_source::OtpSource;
use crate::qr_view;

/// What a `/passwd` or `/reenrol` sent will change once the server confirms it.
#[derive(Debug, Default)]
pub struct Renewal {
    /// The new password of a `ChangePassword` sent.
    password: Option<String>,
    /// The new TOTP secret of a re-enrolment started.
    secret: Option<OtpSource>,
}

impl Renewal {
    /// A `ChangePassword` with `new` went out.
    pub fn password_sent(&mut self, new: String) {
        self.password = Some(new);
    }

    /// Follows a server event: `PasswordChanged` puts the new password in `password`,
    /// `ReenrolStarted` notes the secret of its URI, `Reenrolled` makes it `secret` — when
    /// codes are computed (`secret` is set), or always with `adopt` (plain mode, which then
    /// can log in again by itself). The step of the last code sent stays spent.
    pub fn on_event(
        &mut self,
        event: &ServerEvent,
        password: &mut String,
        secret: &mut Option<OtpSource>,
        adopt: bool,
    ) {
        match event {
            ServerEvent::PasswordChanged { .. } => {
                if let Some(p) = self.password.take() {
                    *password = p;
                }
            }
            ServerEvent::ReenrolStarted { uri } => {
                self.secret =
                    qr_view::otpauth_secret(uri).and_then(|b32| OtpSource::from_base32(b32).ok());
            }
            ServerEvent::Reenrolled { .. } => {
                if let Some(mut new) = self.secret.take()
                    && (adopt || secret.is_some())
                {
                    if let Some(step) = secret.as_ref().and_then(OtpSource::last_step) {
                        new.mark_sent(step);
                    }
                    *secret = Some(new);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/ChatBox:alice?secret=JBSWY3DPEHPK3PXP&issuer=ChatBox";

    #[test]
    fn confirmed_changes_replace_the_credentials() {
        let mut r = Renewal::default();
        let (mut password, mut secret) = ("old".to_owned(), None);
        r.on_event(
            &ServerEvent::PasswordChanged { closed: 0 },
            &mut password,
            &mut secret,
            false,
        );
        assert_eq!(password, "old", "nothing was sent");
        r.password_sent("new".into());
        r.on_event(
            &ServerEvent::PasswordChanged { closed: 1 },
            &mut password,
            &mut secret,
            false,
        );
        assert_eq!(password, "new");
        let started = ServerEvent::ReenrolStarted { uri: URI.into() };
        let done = ServerEvent::Reenrolled {
            closed: 0,
            scratch_codes: Vec::new(),
        };
        // Codes typed by the user (no secret): the screen keeps asking for codes.
        r.on_event(&started, &mut password, &mut secret, false);
        r.on_event(&done, &mut password, &mut secret, false);
        assert!(secret.is_none());
        // Plain mode adopts it.
        r.on_event(&started, &mut password, &mut secret, true);
        r.on_event(&done, &mut password, &mut secret, true);
        assert!(secret.is_some());
    }
}

//! Account self-service on a logged-in session: password change, second-factor re-enrolment,
//! the user's own sessions (list, close one, close the others). Every change and refusal is a
//! credentials.log line (never a password, code or secret).
//!
//! Re-authentication (password + a current code) is judged like a login: a failure counts
//! against the address (the login throttle) and the account (its failure count and lock), and
//! gets one answer, `invalid_credentials`, with the session kept. A TOTP step already used is
//! refused, except the step this very session's login spent (possession already proven on
//! this connection), so `chatbox-client passwd --otp CODE` can log in and change with one code.

use core::net::IpAddr;
use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use chatbox_core::otp::{Algorithm, SECRET_LEN, Totp, otpauth_uri};
use chatbox_core::password::{
    MAX_PHC_LEN, SALT_LEN, check_password_policy, hash_password, verify_password,
};
use chatbox_core::proto::{ErrorCode, ServerMsg};
use zeroize::Zeroizing;

use super::Refusal;
use super::pool::PoolError;
use super::register::SCRATCH_CODES;
use crate::bus::Effect;
use crate::chat::{ConnId, SessionInfo, records};
use crate::keys::random;
use crate::server::Shared;
use crate::store::Account;
use crate::time::{now_ms, now_secs};

/// A re-enrolment must be confirmed within this long.
pub const REENROL_TIMEOUT: Duration = Duration::from_secs(600);
/// The `Bye` other sessions get after a password change or re-enrolment.
pub const BYE_CREDENTIALS: &str = "credentials changed in another session";
/// The `Bye` a session revoked by its owner gets.
pub const BYE_REVOKED: &str = "session closed by its owner";

/// A re-enrolment waiting for a code from the new secret.
#[derive(Debug)]
pub struct Reenrol {
    secret: Zeroizing<Vec<u8>>,
    started: Instant,
    tries: u32,
}

/// This session, for the checks.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// User.
    pub user: &'a str,
    /// This connection.
    pub conn: ConnId,
    /// Client address.
    pub ip: IpAddr,
    /// Client `ip:port`.
    pub ip_port: &'a str,
    /// The TOTP step this session's login used.
    pub login_step: Option<u64>,
}

/// The hashing pool's view of this session's address (fair share with logins; not reserved).
fn source(shared: &Shared, ip: IpAddr) -> super::pool::Source {
    super::pool::Source {
        origin: super::source::Origin::of(ip, &shared.config),
        reserved: false,
    }
}

fn wrong() -> Refusal {
    Refusal::keep(ErrorCode::InvalidCredentials, "wrong password or code")
}

/// Password + code check for `what` (`password change`, `re-enrolment`).
async fn reauth(
    shared: &Shared,
    who: Who<'_>,
    password: &str,
    otp: &str,
    what: &str,
) -> Result<Account, Refusal> {
    let addr = super::source::Origin::of(who.ip, &shared.config).addr.ip();
    let Some(attempt) = shared.ip_throttle.begin(addr).await else {
        shared.logs.credentials(format!(
            "{what} refused user={} from={} reason=too many failures from this address",
            who.user, who.ip_port
        ));
        return Err(wrong());
    };
    let r = check(shared, who, password, otp, what).await;
    if !matches!(&r, Err(e) if e.code == ErrorCode::InvalidCredentials) {
        shared.ip_throttle.refund(attempt).await;
    }
    r
}

async fn check(
    shared: &Shared,
    who: Who<'_>,
    password: &str,
    otp: &str,
    what: &str,
) -> Result<Account, Refusal> {
    let user = who.user;
    let acc = match shared.store.account(user).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return Err(Refusal::close(
                ErrorCode::InvalidCredentials,
                "account gone",
            ));
        }
        Err(e) => {
            shared.logs.info(format!("{what}: {e}"));
            return Err(Refusal::internal());
        }
    };
    if acc.locked_until > now_ms() {
        // Locked (too many failures, or by an administrator): no change, and this session goes.
        shared.logs.credentials(format!(
            "{what} refused user={user} from={} reason=account locked",
            who.ip_port
        ));
        return Err(Refusal::close(
            ErrorCode::InvalidCredentials,
            "wrong password or code; account locked",
        ));
    }
    let fail = |reason: &'static str| {
        let acc = acc.clone();
        async move {
            let lock_until = now_ms().saturating_add(
                u64::try_from(shared.config.lock_duration.as_millis()).unwrap_or(u64::MAX),
            );
            let failures = shared
                .store
                .login_failure(&acc.user, shared.config.lock_after, lock_until)
                .await
                .unwrap_or(0);
            let locked = failures >= shared.config.lock_after;
            shared.logs.credentials(format!(
                "{what} refused user={} from={} reason={reason} failures={failures}{}",
                acc.user,
                who.ip_port,
                if locked { " (account now locked)" } else { "" }
            ));
            if locked {
                Refusal::close(
                    ErrorCode::InvalidCredentials,
                    "wrong password or code; account locked",
                )
            } else {
                wrong()
            }
        }
    };
    let pw = Zeroizing::new(password.as_bytes().to_vec());
    let phc = acc.password.clone();
    let ok = match shared
        .pool
        .run(source(shared, who.ip), move || verify_password(&pw, &phc))
        .await
    {
        Ok(Ok(ok)) => ok,
        Ok(Err(_)) => false,
        Err(PoolError::Busy) => return Err(Refusal::busy()),
        Err(PoolError::Closed) => return Err(Refusal::internal()),
    };
    if !ok {
        return Err(fail("wrong password").await);
    }
    if otp.len() == 8 && otp.bytes().all(|b| b.is_ascii_digit()) {
        let hash = shared.keys.scratch_hash(user, otp);
        return match shared.store.use_scratch(user, hash).await {
            Ok(true) => Ok(acc),
            Ok(false) => Err(fail("wrong or used scratch code").await),
            Err(_) => Err(Refusal::internal()),
        };
    }
    let Some(secret) = shared.keys.unseal_totp(user, &acc.totp_sealed) else {
        return Err(fail("sealed secret unreadable").await);
    };
    let totp = Totp::sha1_default(&secret).map_err(|_| Refusal::internal())?;
    let now = now_secs();
    if let Some(step) = totp.verify(otp, now, acc.totp_last_step) {
        // Record the step (atomically: a racing use of the same code elsewhere loses).
        return match shared
            .store
            .login_success(user, Some(step), who.ip_port)
            .await
        {
            Ok(true) => Ok(acc),
            Ok(false) => Err(fail("wrong or reused TOTP code").await),
            Err(_) => Err(Refusal::internal()),
        };
    }
    // The step this session's own login spent.
    if let Some(s) = who.login_step
        && totp.verify(otp, now, s.checked_sub(1)) == Some(s)
    {
        return Ok(acc);
    }
    Err(fail("wrong or reused TOTP code").await)
}

/// Closes every other session of `user` (all nodes); returns how many there were.
fn close_others(shared: &Shared, who: Who<'_>, reason: &str) -> u32 {
    let others = shared
        .chat
        .sessions(who.user)
        .into_iter()
        .filter(|s| !(s.node == shared.node && s.conn == who.conn))
        .count();
    if others > 0 {
        shared.chat.publish(vec![Effect::CloseSessions {
            user: who.user.to_owned(),
            only: None,
            except: Some((shared.node.clone(), who.conn)),
            rec: records::shared(&ServerMsg::Bye { reason }),
        }]);
    }
    u32::try_from(others).unwrap_or(u32::MAX)
}

/// `ChangePassword`: returns how many other sessions were closed.
pub async fn change_password(
    shared: &Arc<Shared>,
    who: Who<'_>,
    password: &str,
    otp: &str,
    new_password: &str,
) -> Result<u32, Refusal> {
    if let Err(e) = check_password_policy(new_password.as_bytes()) {
        return Err(Refusal::keep(ErrorCode::InvalidPassword, e.to_string()));
    }
    reauth(shared, who, password, otp, "password change").await?;
    let salt = random::<SALT_LEN>().map_err(|_| Refusal::internal())?;
    let pw = Zeroizing::new(new_password.as_bytes().to_vec());
    let iterations = shared.config.pbkdf2_iterations;
    let phc = match shared
        .pool
        .run(source(shared, who.ip), move || {
            let mut out = [0u8; MAX_PHC_LEN];
            hash_password(&pw, &salt, iterations, &mut out).map(str::to_owned)
        })
        .await
    {
        Ok(Ok(p)) => p,
        Err(PoolError::Busy) => return Err(Refusal::busy()),
        Ok(Err(_)) | Err(PoolError::Closed) => return Err(Refusal::internal()),
    };
    match shared.store.set_password(who.user, phc).await {
        Ok(true) => {}
        Ok(false) | Err(_) => return Err(Refusal::internal()),
    }
    let closed = close_others(shared, who, BYE_CREDENTIALS);
    shared.logs.credentials(format!(
        "password changed user={} from={} other sessions closed={closed}",
        who.user, who.ip_port
    ));
    Ok(closed)
}

/// `Reenrol`: the new secret's otpauth URI (shown, never logged) and the pending state.
pub async fn reenrol_start(
    shared: &Arc<Shared>,
    who: Who<'_>,
    password: &str,
    otp: &str,
) -> Result<(Zeroizing<String>, Reenrol), Refusal> {
    reauth(shared, who, password, otp, "re-enrolment").await?;
    let secret = Zeroizing::new(
        random::<SECRET_LEN>()
            .map_err(|_| Refusal::internal())?
            .to_vec(),
    );
    let mut buf = Zeroizing::new([0u8; 512]);
    let uri = otpauth_uri(
        &mut buf[..],
        &shared.config.issuer,
        who.user,
        &secret,
        Algorithm::Sha1,
        6,
        30,
    )
    .map(|s| Zeroizing::new(s.to_owned()))
    .map_err(|_| Refusal::internal())?;
    shared.logs.credentials(format!(
        "re-enrolment started user={} from={} (old secret valid until confirmed)",
        who.user, who.ip_port
    ));
    Ok((
        uri,
        Reenrol {
            secret,
            started: Instant::now(),
            tries: 0,
        },
    ))
}

/// `ConfirmReenrol`: `Ok((closed, scratch codes))` once the new secret replaced the old.
/// `Err` with `close` false: try again; the caller drops the re-enrolment when `drop` is set.
pub async fn reenrol_confirm(
    shared: &Arc<Shared>,
    who: Who<'_>,
    r: &mut Reenrol,
    code: &str,
) -> Result<(u32, Vec<Zeroizing<String>>), (Refusal, bool)> {
    if r.started.elapsed() > REENROL_TIMEOUT {
        shared.logs.credentials(format!(
            "re-enrolment expired user={} from={} (old secret kept)",
            who.user, who.ip_port
        ));
        return Err((
            Refusal::keep(ErrorCode::BadState, "re-enrolment expired; start again"),
            true,
        ));
    }
    let totp = Totp::sha1_default(&r.secret).map_err(|_| (Refusal::internal(), true))?;
    let Some(step) = totp.verify(code, now_secs(), None) else {
        r.tries += 1;
        let give_up = r.tries >= shared.config.register_tries;
        shared.logs.credentials(format!(
            "re-enrolment code wrong user={} from={} try={}{}",
            who.user,
            who.ip_port,
            r.tries,
            if give_up {
                " (cancelled, old secret kept)"
            } else {
                ""
            }
        ));
        return Err((
            Refusal::keep(
                ErrorCode::InvalidCode,
                if give_up {
                    "wrong code; re-enrolment cancelled, the old secret stays"
                } else {
                    "wrong code, try again"
                },
            ),
            give_up,
        ));
    };
    let mut codes = Vec::with_capacity(SCRATCH_CODES);
    let mut hashes = Vec::with_capacity(SCRATCH_CODES);
    while codes.len() < SCRATCH_CODES {
        let c = Zeroizing::new(
            super::register::scratch_code().map_err(|_| (Refusal::internal(), true))?,
        );
        let h = shared.keys.scratch_hash(who.user, &c);
        if !hashes.contains(&h) {
            hashes.push(h);
            codes.push(c);
        }
    }
    let sealed = shared
        .keys
        .seal_totp(who.user, &r.secret)
        .map_err(|_| (Refusal::internal(), true))?;
    match shared.store.reenrol(who.user, sealed, step, hashes).await {
        Ok(true) => {}
        Ok(false) | Err(_) => return Err((Refusal::internal(), true)),
    }
    let closed = close_others(shared, who, BYE_CREDENTIALS);
    shared.logs.credentials(format!(
        "second factor re-enrolled user={} from={} new scratch codes={SCRATCH_CODES} other sessions closed={closed}",
        who.user, who.ip_port
    ));
    Ok((closed, codes))
}

/// The session id shown to users: `NODE/CONN`.
#[must_use]
pub fn session_id(s: &SessionInfo) -> String {
    format!("{}/{}", s.node, s.conn)
}

/// `RevokeSession` (`id` Some) or `RevokeOtherSessions`: how many were closed.
pub fn revoke(shared: &Shared, who: Who<'_>, id: Option<&str>) -> Result<u32, Refusal> {
    let Some(id) = id else {
        let n = close_others(shared, who, BYE_REVOKED);
        shared.logs.credentials(format!(
            "sessions revoked by owner user={} from={} which=others count={n}",
            who.user, who.ip_port
        ));
        return Ok(n);
    };
    let target = shared
        .chat
        .sessions(who.user)
        .into_iter()
        .find(|s| session_id(s) == id && !(s.node == shared.node && s.conn == who.conn));
    let Some(t) = target else {
        return Err(Refusal::keep(
            ErrorCode::NoSuchSession,
            "no such session of yours (see /sessions; this session cannot revoke itself)",
        ));
    };
    shared.chat.publish(vec![Effect::CloseSessions {
        user: who.user.to_owned(),
        only: Some((t.node.clone(), t.conn)),
        except: None,
        rec: records::shared(&ServerMsg::Bye {
            reason: BYE_REVOKED,
        }),
    }]);
    shared.logs.credentials(format!(
        "session revoked by owner user={} from={} session={id} (at {})",
        who.user, who.ip_port, t.address
    ));
    Ok(1)
}

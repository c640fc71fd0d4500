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
use std::time::Instant;

use chatbox_core::otp::{Algorithm, SECRET_LEN, Totp, otpauth_uri};
use chatbox_core::password::{
    MAX_PHC_LEN, SALT_LEN, check_password_policy, hash_password, verify_password,
};
use chatbox_core::proto::ErrorCode;
use zeroize::Zeroizing;

use super::Accounts;
use super::Refusal;
use super::pool::PoolError;
use super::register::SCRATCH_CODES;
use crate::keys::random;
use crate::store::Account;
use crate::time::{now_ms, now_secs};

/// A re-enrolment must be confirmed within this long.
pub(crate) const REENROL_TIMEOUT: Duration = Duration::from_secs(600);
/// The `Bye` other sessions get after a password change or re-enrolment.
pub(crate) const BYE_CREDENTIALS: &str = "credentials changed in another session";
/// The `Bye` a session revoked by its owner gets.
pub(crate) const BYE_REVOKED: &str = "session closed by its owner";

/// A re-enrolment waiting for a code from the new secret.
#[derive(Debug)]
pub(crate) struct Reenrol {
    secret: Zeroizing<Vec<u8>>,
    started: Instant,
    tries: u32,
}

/// This session, for the checks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Who<'a> {
    /// User.
    pub(crate) user: &'a str,
    /// This connection.
    pub(crate) conn: u64,
    /// Client address.
    pub(crate) ip: IpAddr,
    /// Client `ip:port`.
    pub(crate) ip_port: &'a str,
    /// The TOTP step this session's login used.
    pub(crate) login_step: Option<u64>,
}

/// The hashing pool's view of this session's address (fair share with logins; not reserved).
fn source(accounts: &Accounts, ip: IpAddr) -> super::pool::Source {
    super::pool::Source {
        origin: super::source::Origin::of(ip, &accounts.config),
        reserved: false,
    }
}

fn wrong() -> Refusal {
    Refusal::keep(ErrorCode::InvalidCredentials, "wrong password or code")
}

/// Password + code check for `what` (`password change`, `re-enrolment`).
async fn reauth(
    accounts: &Accounts,
    who: Who<'_>,
    password: &str,
    otp: &str,
    what: &str,
) -> Result<Account, Refusal> {
    let addr = super::source::Origin::of(who.ip, &accounts.config)
        .addr
        .ip();
    let Some(attempt) = accounts.throttle.begin(addr).await else {
        accounts.logs.credentials(format!(
            "{what} refused user={} from={} reason=too many failures from this address",
            who.user, who.ip_port
        ));
        return Err(wrong());
    };
    let r = check(accounts, who, password, otp, what).await;
    if !matches!(&r, Err(e) if e.code == ErrorCode::InvalidCredentials) {
        accounts.throttle.refund(attempt).await;
    }
    r
}

async fn check(
    accounts: &Accounts,
    who: Who<'_>,
    password: &str,
    otp: &str,
    what: &str,
) -> Result<Account, Refusal> {
    let user = who.user;
    let acc = match accounts.store.account(user).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return Err(Refusal::close(
                ErrorCode::InvalidCredentials,
                "account gone",
            ));
        }
        Err(e) => {
            accounts.logs.info(format!("{what}: {e}"));
            return Err(Refusal::internal());
        }
    };
    if acc.locked_until > now_ms() {
        // Locked (too many failures, or by an administrator): no change, and this session goes.
        accounts.logs.credentials(format!(
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
                u64::try_from(accounts.config.lock_duration.as_millis()).unwrap_or(u64::MAX),
            );
            let failures = accounts
                .store
                .login_failure(&acc.user, accounts.config.lock_after, lock_until)
                .await
                .unwrap_or(0);
            let locked = failures >= accounts.config.lock_after;
            accounts.logs.credentials(format!(
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
    let ok = match accounts
        .pool
        .run(source(accounts, who.ip), move || verify_password(&pw, &phc))
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
        let hash = accounts.keys.scratch_hash(user, otp);
        return match accounts.store.use_scratch(user, hash).await {
            Ok(true) => Ok(acc),
            Ok(false) => Err(fail("wrong or used scratch code").await),
            Err(_) => Err(Refusal::internal()),
        };
    }
    let Some(secret) = accounts.keys.unseal_totp(user, &acc.totp_sealed) else {
        return Err(fail("sealed secret unreadable").await);
    };
    let totp = Totp::sha1_default(&secret).map_err(|_| Refusal::internal())?;
    let now = now_secs();
    if let Some(step) = totp.verify(otp, now, acc.totp_last_step) {
        // Record the step (atomically: a racing use of the same code elsewhere loses).
        return match accounts
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

/// `ChangePassword`: returns how many other sessions were closed (by `close_others`, given
/// the `Bye` reason, once the new password is stored).
pub(crate) async fn change_password(
    accounts: &Accounts,
    who: Who<'_>,
    password: &str,
    otp: &str,
    new_password: &str,
    close_others: impl FnOnce(&str) -> u32,
) -> Result<u32, Refusal> {
    if let Err(e) = check_password_policy(new_password.as_bytes()) {
        return Err(Refusal::keep(ErrorCode::InvalidPassword, e.to_string()));
    }
    reauth(accounts, who, password, otp, "password change").await?;
    let salt = random::<SALT_LEN>().map_err(|_| Refusal::internal())?;
    let pw = Zeroizing::new(new_password.as_bytes().to_vec());
    let iterations = accounts.config.pbkdf2_iterations;
    let phc = match accounts
        .pool
        .run(source(accounts, who.ip), move || {
            let mut out = [0u8; MAX_PHC_LEN];
            hash_password(&pw, &salt, iterations, &mut out).map(str::to_owned)
        })
        .await
    {
        Ok(Ok(p)) => p,
        Err(PoolError::Busy) => return Err(Refusal::busy()),
        Ok(Err(_)) | Err(PoolError::Closed) => return Err(Refusal::internal()),
    };
    match accounts.store.set_password(who.user, phc).await {
        Ok(true) => {}
        Ok(false) | Err(_) => return Err(Refusal::internal()),
    }
    let closed = close_others(BYE_CREDENTIALS);
    accounts.logs.credentials(format!(
        "password changed user={} from={} other sessions closed={closed}",
        who.user, who.ip_port
    ));
    Ok(closed)
}

/// `Reenrol`: the new secret's otpauth URI (shown, never logged) and the pending state.
pub(crate) async fn reenrol_start(
    accounts: &Accounts,
    who: Who<'_>,
    password: &str,
    otp: &str,
) -> Result<(Zeroizing<String>, Reenrol), Refusal> {
    reauth(accounts, who, password, otp, "re-enrolment").await?;
    let secret = Zeroizing::new(
        random::<SECRET_LEN>()
            .map_err(|_| Refusal::internal())?
            .to_vec(),
    );
    let mut buf = Zeroizing::new([0u8; 512]);
    let uri = otpauth_uri(
        &mut buf[..],
        &accounts.config.issuer,
        who.user,
        &secret,
        Algorithm::Sha1,
        6,
        30,
    )
    .map(|s| Zeroizing::new(s.to_owned()))
    .map_err(|_| Refusal::internal())?;
    accounts.logs.credentials(format!(
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

/// A refused re-enrolment code.
#[derive(Debug)]
pub(crate) struct ReenrolRefused {
    /// What to answer.
    pub(crate) refusal: Refusal,
    /// The re-enrolment is over (expired, too many wrong codes, or failed): the caller drops
    /// it. Otherwise the user may try another code.
    pub(crate) over: bool,
}

impl ReenrolRefused {
    fn over(refusal: Refusal) -> ReenrolRefused {
        ReenrolRefused {
            refusal,
            over: true,
        }
    }
}

/// `ConfirmReenrol`: `Ok((closed, scratch codes))` once the new secret replaced the old.
pub(crate) async fn reenrol_confirm(
    accounts: &Accounts,
    who: Who<'_>,
    r: &mut Reenrol,
    code: &str,
    close_others: impl FnOnce(&str) -> u32,
) -> Result<(u32, Vec<Zeroizing<String>>), ReenrolRefused> {
    if r.started.elapsed() > REENROL_TIMEOUT {
        accounts.logs.credentials(format!(
            "re-enrolment expired user={} from={} (old secret kept)",
            who.user, who.ip_port
        ));
        return Err(ReenrolRefused::over(Refusal::keep(
            ErrorCode::BadState,
            "re-enrolment expired; start again",
        )));
    }
    let totp =
        Totp::sha1_default(&r.secret).map_err(|_| ReenrolRefused::over(Refusal::internal()))?;
    let Some(step) = totp.verify(code, now_secs(), None) else {
        r.tries += 1;
        let give_up = r.tries >= accounts.config.register_tries;
        accounts.logs.credentials(format!(
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
        return Err(ReenrolRefused {
            refusal: Refusal::keep(
                ErrorCode::InvalidCode,
                if give_up {
                    "wrong code; re-enrolment cancelled, the old secret stays"
                } else {
                    "wrong code, try again"
                },
            ),
            over: give_up,
        });
    };
    let mut codes = Vec::with_capacity(SCRATCH_CODES);
    let mut hashes = Vec::with_capacity(SCRATCH_CODES);
    while codes.len() < SCRATCH_CODES {
        let c = Zeroizing::new(
            super::register::scratch_code()
                .map_err(|_| ReenrolRefused::over(Refusal::internal()))?,
        );
        let h = accounts.keys.scratch_hash(who.user, &c);
        if !hashes.contains(&h) {
            hashes.push(h);
            codes.push(c);
        }
    }
    let sealed = accounts
        .keys
        .seal_totp(who.user, &r.secret)
        .map_err(|_| ReenrolRefused::over(Refusal::internal()))?;
    match accounts.store.reenrol(who.user, sealed, step, hashes).await {
        Ok(true) => {}
        Ok(false) | Err(_) => return Err(ReenrolRefused::over(Refusal::internal())),
    }
    let closed = close_others(BYE_CREDENTIALS);
    accounts.logs.credentials(format!(
        "second factor re-enrolled user={} from={} new scratch codes={SCRATCH_CODES} other sessions closed={closed}",
        who.user, who.ip_port
    ));
    Ok((closed, codes))
}

//! Login{user, password, otp}: everything checked, one generic answer on any failure.

use core::net::IpAddr;
use core::time::Duration;

use chatbox_core::otp::Totp;
use chatbox_core::password::{dummy_verify, verify_password};
use chatbox_core::proto::ErrorCode;
use chatbox_core::username;
use zeroize::Zeroizing;

use super::Refusal;
use super::pool::PoolError;
use crate::server::Shared;
use crate::store::{Account, Sanction};
use crate::time::{now_ms, now_secs};

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    /// Normalised name.
    pub user: String,
    /// `user` or `op`.
    pub role: String,
}

const GENERIC: &str = "invalid credentials";

fn generic() -> Refusal {
    Refusal::close(ErrorCode::InvalidCredentials, GENERIC)
}

/// The address part of `ip:port` (`[v6]:port` keeps its brackets): what coalesced log lines
/// are counted by.
fn host_of(ip_port: &str) -> &str {
    ip_port.rsplit_once(':').map_or(ip_port, |(h, _)| h)
}

/// Spends a password verification's work without an account.
async fn dummy(shared: &Shared, password: &str) -> Result<(), Refusal> {
    let pw = Zeroizing::new(password.as_bytes().to_vec());
    let it = shared.config.pbkdf2_iterations;
    match shared.pool.run(move || dummy_verify(&pw, it)).await {
        Ok(()) => Ok(()),
        Err(PoolError::Busy) => Err(Refusal::busy()),
        Err(PoolError::Closed) => Err(Refusal::internal()),
    }
}

/// Logs the real reason, counts the failure per account (the attempt already counts for its
/// IP), waits the growing delay, and returns the generic refusal.
async fn fail(
    shared: &Shared,
    ip_port: &str,
    user: &str,
    account: Option<&Account>,
    reason: &str,
) -> Refusal {
    let mut failures = 0;
    if let Some(acc) = account {
        let lock_until = now_ms().saturating_add(
            u64::try_from(shared.config.lock_duration.as_millis()).unwrap_or(u64::MAX),
        );
        failures = shared
            .store
            .login_failure(&acc.user, shared.config.lock_after, lock_until)
            .await
            .unwrap_or(0);
    }
    let locked = account.is_some() && failures >= shared.config.lock_after;
    let line = format!(
        "login failed user={user} from={ip_port} reason={reason} failures={failures}{}",
        if locked { " (account now locked)" } else { "" }
    );
    if locked {
        shared.logs.credentials(line);
    } else {
        // What an attacker repeats at will: one line per kind and 10 s, with a count.
        let kind = format!(
            "login failed user={user} from={} reason={reason}",
            host_of(ip_port)
        );
        shared.logs.credentials_coalesced(&kind, line);
    }
    if failures > 0 && !shared.config.failure_delay.is_zero() {
        let factor = 1u32 << (failures - 1).min(5);
        let delay = shared
            .config
            .failure_delay
            .saturating_mul(factor)
            .min(Duration::from_secs(2));
        smol::Timer::after(delay).await;
    }
    generic()
}

/// Checks a login. Any credential failure is `InvalidCredentials` with `close`; `Busy` keeps
/// the connection. Every attempt counts against its IP address from the moment it begins; a
/// success (or an attempt the server could not judge: busy, internal error) is given back.
pub async fn login(
    shared: &Shared,
    raw_user: &str,
    password: &str,
    otp: &str,
    ip: IpAddr,
    ip_port: &str,
) -> Result<LoggedIn, Refusal> {
    let Some(attempt) = shared.ip_throttle.begin(ip).await else {
        let user = printable(raw_user);
        shared.logs.credentials_coalesced(
            &format!("login refused user={user} from={ip} reason=too many failures"),
            format!(
                "login refused user={user} from={ip_port} reason=too many failures from this address"
            ),
        );
        return Err(generic());
    };
    let r = check(shared, raw_user, password, otp, ip_port).await;
    let judged = matches!(&r, Err(e) if !matches!(e.code, ErrorCode::Busy | ErrorCode::Internal));
    if !judged {
        shared.ip_throttle.refund(attempt).await;
    }
    r
}

/// The user name as it may appear in a log line (the raw name may be anything).
fn printable(raw_user: &str) -> String {
    raw_user
        .chars()
        .take(40)
        .map(|c| {
            if c.is_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

async fn check(
    shared: &Shared,
    raw_user: &str,
    password: &str,
    otp: &str,
    ip_port: &str,
) -> Result<LoggedIn, Refusal> {
    let shown = printable(raw_user);
    let user = match username::normalize(raw_user) {
        Ok(u) => u.as_str().to_owned(),
        Err(_) => {
            dummy(shared, password).await?;
            return Err(fail(shared, ip_port, &shown, None, "invalid user name").await);
        }
    };
    let account = match shared.store.account(&user).await {
        Ok(a) => a,
        Err(e) => {
            shared.logs.info(format!("login: {e}"));
            return Err(Refusal::internal());
        }
    };
    let Some(acc) = account else {
        dummy(shared, password).await?;
        return Err(fail(shared, ip_port, &user, None, "unknown user").await);
    };
    let now = now_ms();
    if acc.locked_until > now {
        dummy(shared, password).await?;
        shared.logs.credentials_coalesced(
            &format!(
                "login failed user={user} from={} reason=account locked",
                host_of(ip_port)
            ),
            format!("login failed user={user} from={ip_port} reason=account locked"),
        );
        return Err(generic());
    }
    let pw = Zeroizing::new(password.as_bytes().to_vec());
    let phc = acc.password.clone();
    let ok = match shared.pool.run(move || verify_password(&pw, &phc)).await {
        Ok(Ok(ok)) => ok,
        Ok(Err(_)) => false,
        Err(PoolError::Busy) => return Err(Refusal::busy()),
        Err(PoolError::Closed) => return Err(Refusal::internal()),
    };
    if !ok {
        return Err(fail(shared, ip_port, &user, Some(&acc), "wrong password").await);
    }
    if acc.pending_reg {
        return Err(fail(
            shared,
            ip_port,
            &user,
            Some(&acc),
            "registration not confirmed",
        )
        .await);
    }
    let mut step = None;
    if otp.len() == 8 && otp.bytes().all(|b| b.is_ascii_digit()) {
        let hash = shared.keys.scratch_hash(&user, otp);
        match shared.store.use_scratch(&user, hash).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(fail(
                    shared,
                    ip_port,
                    &user,
                    Some(&acc),
                    "wrong or used scratch code",
                )
                .await);
            }
            Err(_) => return Err(Refusal::internal()),
        }
    } else {
        let Some(secret) = shared.keys.unseal_totp(&user, &acc.totp_sealed) else {
            shared.logs.info(format!(
                "TOTP secret of {user} does not open (tampered row?)"
            ));
            return Err(fail(
                shared,
                ip_port,
                &user,
                Some(&acc),
                "sealed secret unreadable",
            )
            .await);
        };
        let totp = Totp::sha1_default(&secret).map_err(|_| Refusal::internal())?;
        match totp.verify(otp, now_secs(), acc.totp_last_step) {
            Some(s) => step = Some(s),
            None => {
                return Err(fail(
                    shared,
                    ip_port,
                    &user,
                    Some(&acc),
                    "wrong or reused TOTP code",
                )
                .await);
            }
        }
    }
    match shared
        .store
        .active_sanction(Sanction::Ban, &user, now)
        .await
    {
        Ok(Some((until, reason))) => {
            shared.logs.credentials(format!(
                "login refused user={user} from={ip_port} reason=banned until_ms={until}"
            ));
            let text = if until == 0 {
                format!("you are banned: {reason}")
            } else {
                format!(
                    "you are banned until {}: {reason}",
                    crate::time::fmt_utc(until)
                )
            };
            return Err(Refusal::close(ErrorCode::Banned, text));
        }
        Ok(None) => {}
        Err(_) => return Err(Refusal::internal()),
    }
    match shared.store.login_success(&user, step, ip_port).await {
        Ok(true) => {}
        Ok(false) => {
            // A concurrent login used the same TOTP step first.
            return Err(fail(
                shared,
                ip_port,
                &user,
                Some(&acc),
                "wrong or reused TOTP code",
            )
            .await);
        }
        Err(e) => {
            shared.logs.info(format!("login: {e}"));
            return Err(Refusal::internal());
        }
    }
    shared.logs.credentials(format!(
        "login established user={user} from={ip_port} with={}",
        if step.is_some() {
            "totp"
        } else {
            "scratch code"
        }
    ));
    Ok(LoggedIn {
        user,
        role: acc.role,
    })
}

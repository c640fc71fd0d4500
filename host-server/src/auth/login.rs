//! Login{user, password, otp}: everything checked, one generic answer on any failure.
//!
//! Every attempt takes the same way whatever the reason it fails: one password hash (the
//! account's, or the same work against nothing), then one failure path ([`fail`]) whose delay
//! comes from what the client sent and where from, never from the account, and which answers
//! at the same time after the hash whatever was looked up or written in between.

use core::net::IpAddr;
use std::time::Instant;

use chatbox_core::otp::Totp;
use chatbox_core::password::{dummy_verify, verify_password};
use chatbox_core::proto::ErrorCode;
use chatbox_core::username;
use zeroize::Zeroizing;

use super::Accounts;
use super::Refusal;
use super::failures::delay;
use super::pool::{PoolError, Source};
use super::source::Origin;
use crate::store::{Account, Sanction};
use crate::time::{now_ms, now_secs};

/// A logged-in user.
#[derive(Debug, Clone)]
pub(crate) struct LoggedIn {
    /// Normalised name.
    pub(crate) user: String,
    /// The TOTP step this login used (None: a scratch code).
    pub(crate) step: Option<u64>,
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

/// Why a login failed: logged, never told. Every kind is answered the same way after the same
/// work (one password hash) and the same delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    InvalidName,
    UnknownUser,
    Locked,
    WrongPassword,
    Pending,
    WrongScratch,
    WrongTotp,
    SecretUnreadable,
}

impl Failure {
    fn reason(self) -> &'static str {
        match self {
            Failure::InvalidName => "invalid user name",
            Failure::UnknownUser => "unknown user",
            Failure::Locked => "account locked",
            Failure::WrongPassword => "wrong password",
            Failure::Pending => "registration not confirmed",
            Failure::WrongScratch => "wrong or used scratch code",
            Failure::WrongTotp => "wrong or reused TOTP code",
            Failure::SecretUnreadable => "sealed secret unreadable",
        }
    }

    /// Only a wrong code after the right password counts toward the account's lock: that is
    /// the TOTP brute force the lock exists to stop, and it needs the password. A wrong
    /// password, which anyone can send, only slows its sender (see [`fail`]).
    fn counts_toward_lock(self) -> bool {
        matches!(self, Failure::WrongScratch | Failure::WrongTotp)
    }
}

/// What judging an attempt after its password hash gave.
enum Outcome {
    In(LoggedIn),
    Failed(Failure),
    Refused(Refusal),
}

/// The one failure path: counts the failure toward the lock if it is a code failure, counts it
/// for its address, (name, address) and name, logs the real reason, and answers the generic
/// refusal at `since` + the delay those counts give (never earlier, whatever work came before
/// it: the delay covers the database work a code failure does and a wrong password does not).
async fn fail(
    accounts: &Accounts,
    name: &str,
    origin: &Origin,
    ip_port: &str,
    account: Option<&Account>,
    failure: Failure,
    since: Instant,
) -> Refusal {
    let mut lock = String::new();
    if failure.counts_toward_lock()
        && let Some(acc) = account
    {
        let lock_until = now_ms().saturating_add(
            u64::try_from(accounts.config.lock_duration.as_millis()).unwrap_or(u64::MAX),
        );
        let n = accounts
            .store
            .login_failure(&acc.user, accounts.config.lock_after, lock_until)
            .await
            .unwrap_or(0);
        lock = format!(
            " code_failures={n}{}",
            if n >= accounts.config.lock_after {
                " (account now locked)"
            } else {
                ""
            }
        );
    }
    let level = accounts.attempts.fail(name, origin.addr);
    let wait = delay(accounts.config.failure_delay, level);
    let line = format!(
        "login failed user={name} from={ip_port} reason={} level={level}{lock}",
        failure.reason()
    );
    if lock.ends_with("(account now locked)") {
        accounts.logs.credentials(line);
    } else {
        // What an attacker repeats at will: one line per kind and 10 s, with a count.
        let kind = format!(
            "login failed user={name} from={} reason={}",
            host_of(ip_port),
            failure.reason()
        );
        accounts.logs.credentials_coalesced(&kind, line);
    }
    wait_until(since + wait).await;
    generic()
}

async fn wait_until(t: Instant) {
    let left = t.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        smol::Timer::after(left).await;
    }
}

/// Checks a login. Any credential failure is `InvalidCredentials` with `close`; `Busy` keeps
/// the connection. Every attempt counts against its address from the moment it begins, and
/// keeps counting when the answer is `Busy` (a flood must spend its budget even when it only
/// fills the queue); only a success or an internal error is given back.
pub(crate) async fn login(
    accounts: &Accounts,
    raw_user: &str,
    password: &str,
    otp: &str,
    ip: IpAddr,
    ip_port: &str,
) -> Result<LoggedIn, Refusal> {
    let origin = Origin::of(ip, &accounts.config);
    let user = username::normalize(raw_user)
        .ok()
        .map(|u| u.as_str().to_owned());
    let name = user.clone().unwrap_or_else(|| printable(raw_user));
    let Some(attempt) = accounts.throttle.begin(origin.addr.ip()).await else {
        accounts.logs.credentials_coalesced(
            &format!(
                "login refused user={name} from={} reason=too many failures",
                host_of(ip_port)
            ),
            format!(
                "login refused user={name} from={ip_port} reason=too many failures from this address"
            ),
        );
        // No password work, but the same delay as a judged failure.
        let level = accounts.attempts.level_now(&name, origin.addr);
        wait_until(Instant::now() + delay(accounts.config.failure_delay, level)).await;
        return Err(generic());
    };
    let r = check(
        accounts,
        user.as_deref(),
        &name,
        password,
        otp,
        &origin,
        ip_port,
    )
    .await;
    let give_back = match &r {
        Ok(_) => true,
        Err(e) => e.code == ErrorCode::Internal,
    };
    if give_back {
        accounts.throttle.refund(attempt).await;
    }
    r
}

/// The user name as it may appear in a log line (the raw name may be anything).
pub(crate) fn printable(raw_user: &str) -> String {
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

/// Whether `acc` logged in from this address before: remembered on this node, or the
/// address of its last login (or registration) in the database, on any node.
fn known(accounts: &Accounts, acc: &Account, origin: &Origin) -> bool {
    accounts.attempts.known(&acc.user, origin.addr)
        || acc
            .ip_port_last
            .parse::<core::net::SocketAddr>()
            .is_ok_and(|a| Origin::of(a.ip(), &accounts.config).addr == origin.addr)
}

async fn check(
    accounts: &Accounts,
    user: Option<&str>,
    name: &str,
    password: &str,
    otp: &str,
    origin: &Origin,
    ip_port: &str,
) -> Result<LoggedIn, Refusal> {
    let account = match user {
        Some(u) => match accounts.store.account(u).await {
            Ok(a) => a,
            Err(e) => {
                accounts.logs.info(format!("login: {e}"));
                return Err(Refusal::internal());
            }
        },
        None => None,
    };
    // The one password hash every attempt pays for: the account's, or the same work against
    // nothing when there is no account (or no valid name).
    let src = Source {
        origin: *origin,
        reserved: account.as_ref().is_some_and(|a| known(accounts, a, origin)),
    };
    let pw = Zeroizing::new(password.as_bytes().to_vec());
    let phc = account.as_ref().map(|a| a.password.clone());
    let iterations = accounts.config.pbkdf2_iterations;
    let password_ok = accounts
        .pool
        .run(src, move || match phc {
            Some(phc) => verify_password(&pw, &phc).unwrap_or(false),
            None => {
                dummy_verify(&pw, iterations);
                false
            }
        })
        .await;
    let password_ok = match password_ok {
        Ok(ok) => ok,
        Err(PoolError::Busy) => return Err(Refusal::busy()),
        Err(PoolError::Closed) => return Err(Refusal::internal()),
    };
    let hashed = Instant::now();
    let outcome = match (&account, user) {
        (Some(acc), _) => judge(accounts, acc, password_ok, otp, ip_port).await,
        (None, Some(_)) => Outcome::Failed(Failure::UnknownUser),
        (None, None) => Outcome::Failed(Failure::InvalidName),
    };
    match outcome {
        Outcome::In(li) => {
            accounts.attempts.succeeded(&li.user, origin.addr);
            Ok(li)
        }
        Outcome::Failed(f) => {
            Err(fail(accounts, name, origin, ip_port, account.as_ref(), f, hashed).await)
        }
        Outcome::Refused(r) => Err(r),
    }
}

/// Judges an attempt on an existing account once its password was hashed.
async fn judge(
    accounts: &Accounts,
    acc: &Account,
    password_ok: bool,
    otp: &str,
    ip_port: &str,
) -> Outcome {
    let user = acc.user.as_str();
    let now = now_ms();
    if acc.locked_until > now {
        return Outcome::Failed(Failure::Locked);
    }
    if !password_ok {
        return Outcome::Failed(Failure::WrongPassword);
    }
    if acc.pending_reg {
        return Outcome::Failed(Failure::Pending);
    }
    let mut step = None;
    if otp.len() == 8 && otp.bytes().all(|b| b.is_ascii_digit()) {
        let hash = accounts.keys.scratch_hash(user, otp);
        match accounts.store.use_scratch(user, hash).await {
            Ok(true) => {}
            Ok(false) => return Outcome::Failed(Failure::WrongScratch),
            Err(_) => return Outcome::Refused(Refusal::internal()),
        }
    } else {
        let Some(secret) = accounts.keys.unseal_totp(user, &acc.totp_sealed) else {
            accounts.logs.info(format!(
                "TOTP secret of {user} does not open (tampered row?)"
            ));
            return Outcome::Failed(Failure::SecretUnreadable);
        };
        let Ok(totp) = Totp::sha1_default(&secret) else {
            return Outcome::Refused(Refusal::internal());
        };
        match totp.verify(otp, now_secs(), acc.totp_last_step) {
            Some(s) => step = Some(s),
            None => return Outcome::Failed(Failure::WrongTotp),
        }
    }
    match accounts
        .store
        .active_sanction(Sanction::Ban, user, now)
        .await
    {
        Ok(Some((until, reason))) => {
            accounts.logs.credentials(format!(
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
            return Outcome::Refused(Refusal::close(ErrorCode::Banned, text));
        }
        Ok(None) => {}
        Err(_) => return Outcome::Refused(Refusal::internal()),
    }
    match accounts.store.login_success(user, step, ip_port).await {
        Ok(true) => {}
        // A concurrent login used the same TOTP step first.
        Ok(false) => return Outcome::Failed(Failure::WrongTotp),
        Err(e) => {
            accounts.logs.info(format!("login: {e}"));
            return Outcome::Refused(Refusal::internal());
        }
    }
    accounts.logs.credentials(format!(
        "login established user={user} from={ip_port} with={}",
        if step.is_some() {
            "totp"
        } else {
            "scratch code"
        }
    ));
    Outcome::In(LoggedIn {
        user: user.to_owned(),
        step,
    })
}
/// After a login succeeded: whether an administrator's lock, delete or TOTP reset raced it
/// (written while its password was being checked, so the poller may have looked before the
/// session was registered). Called once the session is in the hub, so a change committed later
/// is the poller's. The login's own update keeps a lock still in force (LOGIN_SUCCESS clears
/// only an expired one); a raced lock is written again all the same, for nodes of an older
/// version sharing the database, whose update cleared it. `began_ms`: when the login started.
/// Returns the `Bye` reason to close with.
pub(crate) async fn admin_raced_login(
    accounts: &Accounts,
    user: &str,
    began_ms: u64,
) -> Option<&'static str> {
    const LOCKED: &str = "account locked by an administrator";
    const DELETED: &str = "account deleted by an administrator";
    const RESET: &str = "second factor reset by an administrator; log in with the new code";
    let now = now_ms();
    let locked = match accounts.store.account(user).await {
        Ok(None) => return Some(DELETED),
        // Locked meanwhile, by an administrator or by failures (LOGIN_SUCCESS keeps a lock in
        // force): said below unless an administrator's change explains it.
        Ok(Some(a)) => a.locked_until > now,
        Err(e) => {
            accounts.logs.info(format!("database error: {e}"));
            return None;
        }
    };
    let fallback = locked.then_some("account locked");
    // Only changes written after the login began: one written before it was read by the
    // login itself (a lock refuses it, a new secret is what it was checked against).
    let rows = match accounts.store.admin_events(began_ms).await {
        Ok(rows) => rows,
        Err(e) => {
            accounts.logs.info(format!("database error: {e}"));
            return fallback;
        }
    };
    let Some(last) = rows.iter().rfind(|ev| {
        ev.user == user
            && ev.time_ms >= began_ms
            && matches!(ev.action.as_str(), "lock" | "unlock" | "reset-otp")
    }) else {
        return fallback;
    };
    match last.action.as_str() {
        "lock" => {
            let until = now.saturating_add(100 * 365 * 86_400_000);
            if let Err(e) = accounts.store.set_lock(user, until).await {
                accounts.logs.info(format!("database error: {e}"));
            }
            accounts.logs.info(format!(
                "admin: lock {user} raced a login; lock written again, session closed"
            ));
            Some(LOCKED)
        }
        "reset-otp" => {
            accounts.logs.info(format!(
                "admin: reset-otp {user} raced a login; session closed"
            ));
            Some(RESET)
        }
        _ => fallback,
    }
}

//! Register → RegisterStarted{otpauth URI} → ConfirmTotp → Registered{scratch codes}.

use chatbox_core::otp::{Algorithm, SECRET_LEN, Totp, otpauth_uri};
use chatbox_core::password::{MAX_PHC_LEN, SALT_LEN, check_password_policy, hash_password};
use chatbox_core::proto::ErrorCode;
use chatbox_core::username;
use zeroize::Zeroizing;

use core::net::IpAddr;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::Accounts;
use super::Refusal;
use super::pool::PoolError;
use super::source::{Net, Prefixes};
use crate::keys::random;
use crate::store::PendingInvite;
use crate::time::{now_ms, now_secs};

/// Scratch codes handed out at registration.
pub(crate) const SCRATCH_CODES: usize = 10;

/// Unconfirmed registrations per address (`--max-pending-per-ip`; the address masked like
/// every per-address limit, [`Prefixes`]).
#[derive(Debug)]
pub(crate) struct PendingLimit {
    max: usize,
    prefixes: Prefixes,
    counts: Mutex<HashMap<Net, usize>>,
}

/// One unconfirmed registration counted against its address; released when dropped.
#[derive(Debug)]
pub(crate) struct PendingSlot {
    limit: Arc<PendingLimit>,
    key: Net,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.limit.counts.lock()
            && let Some(n) = m.get_mut(&self.key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

impl PendingLimit {
    pub(crate) fn new(max: usize, prefixes: Prefixes) -> PendingLimit {
        PendingLimit {
            max,
            prefixes,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves one unconfirmed registration for the address of `ip`; `None` if it already
    /// holds the most allowed.
    pub(crate) fn reserve(this: &Arc<PendingLimit>, ip: IpAddr) -> Option<PendingSlot> {
        let key = this.prefixes.origin(ip).addr;
        let mut m = this.counts.lock().ok()?;
        let n = m.entry(key).or_insert(0);
        if *n >= this.max {
            if *n == 0 {
                m.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(PendingSlot {
            limit: this.clone(),
            key,
        })
    }

    /// Whether the address of `ip` may start another registration now.
    pub(crate) fn room(&self, ip: IpAddr) -> bool {
        let key = self.prefixes.origin(ip).addr;
        self.counts
            .lock()
            .is_ok_and(|m| m.get(&key).copied().unwrap_or(0) < self.max)
    }
}

/// A registration waiting for its confirmation code on this connection.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The normalised user name.
    pub(crate) user: String,
    secret: Zeroizing<Vec<u8>>,
    tries: u32,
    /// When `RegisterStarted` was sent: the code must come within `register_timeout`.
    pub(crate) started: Instant,
    /// Counts against the address's unconfirmed registrations until dropped.
    _slot: PendingSlot,
    /// The invite whose use this registration holds (given back if it is never confirmed).
    pub(crate) invite_id: Option<i64>,
}

impl Pending {
    /// A registration of `user` started at `started`, holding a slot of `limit` for `ip`
    /// (`None`: the address is at its limit). For in-process tests of the connection state.
    #[cfg(test)]
    pub(crate) fn for_tests(
        user: &str,
        started: Instant,
        limit: &Arc<PendingLimit>,
        ip: IpAddr,
    ) -> Option<Pending> {
        Some(Pending {
            user: user.to_owned(),
            secret: Zeroizing::new(vec![0; SECRET_LEN]),
            tries: 0,
            started,
            _slot: PendingLimit::reserve(limit, ip)?,
            invite_id: None,
        })
    }
}

/// Starts a registration; on success returns the otpauth URI (secret inside: never log it).
pub(crate) async fn start(
    accounts: &Accounts,
    raw_user: &str,
    password: &str,
    ip: IpAddr,
    ip_port: &str,
    admit: Option<&super::invite::Admit>,
) -> Result<(Zeroizing<String>, Pending), Refusal> {
    let user = match username::normalize(raw_user) {
        Ok(u) => u.as_str().to_owned(),
        Err(e) => return Err(Refusal::keep(ErrorCode::InvalidUsername, e.to_string())),
    };
    if let Err(e) = check_password_policy(password.as_bytes()) {
        return Err(Refusal::keep(ErrorCode::InvalidPassword, e.to_string()));
    }
    let too_many = || {
        accounts.logs.credentials(format!(
            "register refused: too many unconfirmed registrations from this address user={user} from={ip_port}"
        ));
        Refusal::keep(
            ErrorCode::RateLimited,
            "too many unconfirmed registrations from this address; confirm one or wait",
        )
    };
    // Cheap check first (no hashing for an address at its limit); the slot itself is taken
    // only once the name is reserved, so racers for one name still get `already_registered`.
    if !accounts.pending.room(ip) {
        return Err(too_many());
    }
    let taken = || {
        accounts.logs.credentials(format!(
            "register refused: already registered user={user} from={ip_port}"
        ));
        Refusal::close(
            ErrorCode::AlreadyRegistered,
            "this user name is already registered",
        )
    };
    match accounts.store.account(&user).await {
        Ok(Some(_)) => return Err(taken()),
        Ok(None) => {}
        Err(e) => {
            accounts.logs.info(format!("register: {e}"));
            return Err(Refusal::internal());
        }
    }
    let salt = random::<SALT_LEN>().map_err(|_| Refusal::internal())?;
    let pw = Zeroizing::new(password.as_bytes().to_vec());
    let iterations = accounts.config.pbkdf2_iterations;
    // Hashing shares the pool fairly with logins from everywhere (see auth::pool).
    let src = super::pool::Source {
        origin: super::source::Origin::of(ip, &accounts.config),
        reserved: false,
    };
    let phc = accounts
        .pool
        .run(src, move || {
            let mut out = [0u8; MAX_PHC_LEN];
            hash_password(&pw, &salt, iterations, &mut out).map(str::to_owned)
        })
        .await;
    let phc = match phc {
        Ok(Ok(p)) => p,
        Err(PoolError::Busy) => return Err(Refusal::busy()),
        Ok(Err(_)) | Err(PoolError::Closed) => return Err(Refusal::internal()),
    };
    let secret = Zeroizing::new(
        random::<SECRET_LEN>()
            .map_err(|_| Refusal::internal())?
            .to_vec(),
    );
    let sealed = accounts
        .keys
        .seal_totp(&user, &secret)
        .map_err(|_| Refusal::internal())?;
    let mut invite_id = None;
    if let Some(a) = admit {
        match accounts
            .store
            .insert_pending_invite(&user, phc, sealed, ip_port, now_ms(), a.hash)
            .await
        {
            Ok(PendingInvite::Started { id }) => {
                invite_id = Some(id);
                accounts.logs.credentials(format!(
                    "invite used user={user} from={ip_port} invite={id} (one use held until confirmed)"
                ));
            }
            Ok(PendingInvite::Refused) => {
                accounts.logs.credentials(format!(
                    "invite refused user={user} from={ip_port} reason=no use left (taken by a concurrent registration) invite={}",
                    a.id
                ));
                return Err(super::invite::invalid());
            }
            Ok(PendingInvite::NameTaken) => return Err(taken()),
            Err(e) => {
                accounts.logs.info(format!("register: {e}"));
                return Err(Refusal::internal());
            }
        }
    } else {
        match accounts
            .store
            .insert_pending(&user, phc, sealed, ip_port, now_ms())
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(taken()),
            Err(e) => {
                accounts.logs.info(format!("register: {e}"));
                return Err(Refusal::internal());
            }
        }
    }
    let release = |r: Refusal| async {
        if let Err(e) = accounts.store.delete_pending(&user).await {
            accounts.logs.info(format!("register: {e}"));
        }
        r
    };
    let Some(slot) = PendingLimit::reserve(&accounts.pending, ip) else {
        // Several registrations from this address passed the first check at once.
        return Err(release(too_many()).await);
    };
    let mut buf = Zeroizing::new([0u8; 512]);
    let uri = otpauth_uri(
        &mut buf[..],
        &accounts.config.issuer,
        &user,
        &secret,
        Algorithm::Sha1,
        6,
        30,
    )
    .map(|s| Zeroizing::new(s.to_owned()));
    let Ok(uri) = uri else {
        return Err(release(Refusal::internal()).await);
    };
    accounts.logs.credentials(format!(
        "registration started user={user} from={ip_port} (pending TOTP confirmation)"
    ));
    Ok((
        uri,
        Pending {
            user,
            secret,
            tries: 0,
            started: Instant::now(),
            _slot: slot,
            invite_id,
        },
    ))
}

/// A random 8-digit code, uniformly drawn (rejection sampling).
pub(crate) fn scratch_code() -> std::io::Result<String> {
    loop {
        let v = u32::from_be_bytes(random::<4>()?);
        // 4_200_000_000 is the largest multiple of 10^8 below 2^32.
        if v < 4_200_000_000 {
            return Ok(format!("{:08}", v % 100_000_000));
        }
    }
}

/// Checks the confirmation code. `Ok(codes)` once registered; `Err` with `close` set when
/// too many wrong codes were tried (the registration is then discarded by the caller).
pub(crate) async fn confirm(
    accounts: &Accounts,
    pending: &mut Pending,
    code: &str,
    ip_port: &str,
) -> Result<Vec<Zeroizing<String>>, Refusal> {
    let totp = Totp::sha1_default(&pending.secret).map_err(|_| Refusal::internal())?;
    let Some(step) = totp.verify(code, now_secs(), None) else {
        pending.tries += 1;
        accounts.logs.credentials(format!(
            "registration code wrong user={} from={ip_port} try={}",
            pending.user, pending.tries
        ));
        return Err(if pending.tries >= accounts.config.register_tries {
            Refusal::close(ErrorCode::InvalidCode, "wrong code; registration cancelled")
        } else {
            Refusal::keep(ErrorCode::InvalidCode, "wrong code, try again")
        });
    };
    let mut codes = Vec::with_capacity(SCRATCH_CODES);
    let mut hashes = Vec::with_capacity(SCRATCH_CODES);
    while codes.len() < SCRATCH_CODES {
        let c = Zeroizing::new(scratch_code().map_err(|_| Refusal::internal())?);
        let h = accounts.keys.scratch_hash(&pending.user, &c);
        if !hashes.contains(&h) {
            hashes.push(h);
            codes.push(c);
        }
    }
    match accounts
        .store
        .confirm_registration(&pending.user, step, hashes)
        .await
    {
        Ok(true) => {
            accounts.logs.credentials(format!(
                "registered user={} from={ip_port}{}",
                pending.user,
                pending
                    .invite_id
                    .map(|id| format!(" invite={id} (use spent)"))
                    .unwrap_or_default()
            ));
            Ok(codes)
        }
        Ok(false) | Err(_) => Err(Refusal::internal()),
    }
}

/// The connection ended before `pending` was confirmed: the name (and the invite's use) is
/// given back.
pub(crate) async fn discard(accounts: &Accounts, pending: &Pending, ip_port: &str) {
    match accounts.store.delete_pending(&pending.user).await {
        Ok(true) => accounts.logs.credentials(format!(
            "registration discarded (not confirmed) user={} from={ip_port}{}",
            pending.user,
            pending
                .invite_id
                .map(|i| format!(" invite={i} (use given back)"))
                .unwrap_or_default()
        )),
        Ok(false) => {}
        Err(e) => accounts.logs.info(format!("database error: {e}")),
    }
}

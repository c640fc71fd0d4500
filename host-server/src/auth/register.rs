//! Register → RegisterStarted{otpauth URI} → ConfirmTotp → Registered{scratch codes}.

use chatbox_core::otp::{Algorithm, SECRET_LEN, Totp, otpauth_uri};
use chatbox_core::password::{MAX_PHC_LEN, SALT_LEN, check_password_policy, hash_password};
use chatbox_core::proto::ErrorCode;
use chatbox_core::username;
use zeroize::Zeroizing;

use core::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::Refusal;
use super::pool::PoolError;
use crate::keys::random;
use crate::server::{PendingSlot, Shared};
use crate::store::PendingInvite;
use crate::time::{now_ms, now_secs};

/// Scratch codes handed out at registration.
pub const SCRATCH_CODES: usize = 10;

/// A registration waiting for its confirmation code on this connection.
#[derive(Debug)]
pub struct Pending {
    /// The normalised user name.
    pub user: String,
    secret: Zeroizing<Vec<u8>>,
    tries: u32,
    /// When `RegisterStarted` was sent: the code must come within `register_timeout`.
    pub started: Instant,
    /// Counts against the address's unconfirmed registrations until dropped.
    _slot: PendingSlot,
    /// The invite whose use this registration holds (given back if it is never confirmed).
    pub invite_id: Option<i64>,
}

/// Starts a registration; on success returns the otpauth URI (secret inside: never log it).
pub async fn start(
    shared: &Arc<Shared>,
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
        shared.logs.credentials(format!(
            "register refused: too many unconfirmed registrations from this address user={user} from={ip_port}"
        ));
        Refusal::keep(
            ErrorCode::RateLimited,
            "too many unconfirmed registrations from this address; confirm one or wait",
        )
    };
    // Cheap check first (no hashing for an address at its limit); the slot itself is taken
    // only once the name is reserved, so racers for one name still get `already_registered`.
    if !shared.pending_room(ip) {
        return Err(too_many());
    }
    let taken = || {
        shared.logs.credentials(format!(
            "register refused: already registered user={user} from={ip_port}"
        ));
        Refusal::close(
            ErrorCode::AlreadyRegistered,
            "this user name is already registered",
        )
    };
    match shared.store.account(&user).await {
        Ok(Some(_)) => return Err(taken()),
        Ok(None) => {}
        Err(e) => {
            shared.logs.info(format!("register: {e}"));
            return Err(Refusal::internal());
        }
    }
    let salt = random::<SALT_LEN>().map_err(|_| Refusal::internal())?;
    let pw = Zeroizing::new(password.as_bytes().to_vec());
    let iterations = shared.config.pbkdf2_iterations;
    // Hashing shares the pool fairly with logins from everywhere (see auth::pool).
    let src = super::pool::Source {
        origin: super::source::Origin::of(ip, &shared.config),
        reserved: false,
    };
    let phc = shared
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
    let sealed = shared
        .keys
        .seal_totp(&user, &secret)
        .map_err(|_| Refusal::internal())?;
    let mut invite_id = None;
    if let Some(a) = admit {
        match shared
            .store
            .insert_pending_invite(&user, phc, sealed, ip_port, now_ms(), a.hash)
            .await
        {
            Ok(PendingInvite::Started { id }) => {
                invite_id = Some(id);
                shared.logs.credentials(format!(
                    "invite used user={user} from={ip_port} invite={id} (one use held until confirmed)"
                ));
            }
            Ok(PendingInvite::Refused) => {
                shared.logs.credentials(format!(
                    "invite refused user={user} from={ip_port} reason=no use left (taken by a concurrent registration) invite={}",
                    a.id
                ));
                return Err(super::invite::invalid());
            }
            Ok(PendingInvite::NameTaken) => return Err(taken()),
            Err(e) => {
                shared.logs.info(format!("register: {e}"));
                return Err(Refusal::internal());
            }
        }
    } else {
        match shared
            .store
            .insert_pending(&user, phc, sealed, ip_port, now_ms())
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(taken()),
            Err(e) => {
                shared.logs.info(format!("register: {e}"));
                return Err(Refusal::internal());
            }
        }
    }
    let release = |r: Refusal| async {
        if let Err(e) = shared.store.delete_pending(&user).await {
            shared.logs.info(format!("register: {e}"));
        }
        r
    };
    let Some(slot) = shared.reserve_pending(ip) else {
        // Several registrations from this address passed the first check at once.
        return Err(release(too_many()).await);
    };
    let mut buf = Zeroizing::new([0u8; 512]);
    let uri = otpauth_uri(
        &mut buf[..],
        &shared.config.issuer,
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
    shared.logs.credentials(format!(
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
pub async fn confirm(
    shared: &Shared,
    pending: &mut Pending,
    code: &str,
    ip_port: &str,
) -> Result<Vec<Zeroizing<String>>, Refusal> {
    let totp = Totp::sha1_default(&pending.secret).map_err(|_| Refusal::internal())?;
    let Some(step) = totp.verify(code, now_secs(), None) else {
        pending.tries += 1;
        shared.logs.credentials(format!(
            "registration code wrong user={} from={ip_port} try={}",
            pending.user, pending.tries
        ));
        return Err(if pending.tries >= shared.config.register_tries {
            Refusal::close(ErrorCode::InvalidCode, "wrong code; registration cancelled")
        } else {
            Refusal::keep(ErrorCode::InvalidCode, "wrong code, try again")
        });
    };
    let mut codes = Vec::with_capacity(SCRATCH_CODES);
    let mut hashes = Vec::with_capacity(SCRATCH_CODES);
    while codes.len() < SCRATCH_CODES {
        let c = Zeroizing::new(scratch_code().map_err(|_| Refusal::internal())?);
        let h = shared.keys.scratch_hash(&pending.user, &c);
        if !hashes.contains(&h) {
            hashes.push(h);
            codes.push(c);
        }
    }
    match shared
        .store
        .confirm_registration(&pending.user, step, hashes)
        .await
    {
        Ok(true) => {
            shared.logs.credentials(format!(
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

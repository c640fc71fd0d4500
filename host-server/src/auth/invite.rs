//! Admission by invite: the registration policy applied, the token checked, refusals counted
//! against the address's failure budget (the login throttle) and answered with one generic
//! `invite_invalid`. The use itself is taken atomically with the pending row
//! ([`Store::insert_pending_invite`](crate::store::Store::insert_pending_invite)).

use core::net::IpAddr;

use chatbox_core::link::InviteToken;
use chatbox_core::proto::ErrorCode;

use super::Accounts;
use super::Refusal;
use crate::invite::Registration;
use crate::store::InviteState;
use crate::time::now_ms;

/// The one answer to every refused invite.
pub(crate) const INVITE_INVALID: &str =
    "invite invalid: missing, unknown, expired, used up or revoked";

/// The refusal for any invite problem (closes the connection).
#[must_use]
pub(crate) fn invalid() -> Refusal {
    Refusal::close(ErrorCode::InviteInvalid, INVITE_INVALID)
}

/// A checked invite: the hash its use is taken under.
#[derive(Debug, Clone)]
pub(crate) struct Admit {
    /// Keyed hash of the token.
    pub(crate) hash: [u8; 32],
    /// The invite's id (for log lines).
    pub(crate) id: i64,
}

/// Applies the policy to a registration carrying `invite` (None: plain `Register`).
/// `Ok(None)`: open server, no invite. `Ok(Some)`: a currently valid invite.
pub(crate) async fn admit(
    accounts: &Accounts,
    invite: Option<&str>,
    user: &str,
    ip: IpAddr,
    ip_port: &str,
) -> Result<Option<Admit>, Refusal> {
    if invite.is_none() && accounts.config.registration == Registration::Open {
        return Ok(None);
    }
    let shown = super::login::printable(user);
    // The same address key as the login throttle (a prefix when so configured).
    let addr = super::source::Origin::of(ip, &accounts.config).addr.ip();
    let Some(attempt) = accounts.throttle.begin(addr).await else {
        accounts.logs.credentials(format!(
            "invite refused user={shown} from={ip_port} reason=too many failures from this address"
        ));
        return Err(invalid());
    };
    // Every refusal costs the same: a keyed hash and one lookup (a dummy token when the text
    // does not parse or is missing).
    let parsed = invite.map(InviteToken::parse);
    let token = match &parsed {
        Some(Ok(t)) => t.clone(),
        _ => InviteToken::from_bytes([0u8; 32]),
    };
    let hash = accounts.keys.invite_hash(token.as_bytes());
    let state = match accounts.store.invite_state(hash, now_ms()).await {
        Ok(s) => s,
        Err(e) => {
            accounts.logs.info(format!("invite: {e}"));
            accounts.throttle.refund(attempt).await;
            return Err(Refusal::internal());
        }
    };
    let reason = match (&parsed, state) {
        (None, _) => "missing (invite-only server)".to_owned(),
        (Some(Err(_)), _) => "garbled token".to_owned(),
        (Some(Ok(_)), InviteState::Unknown) => "unknown token".to_owned(),
        (Some(Ok(_)), InviteState::Expired(id)) => format!("expired invite={id}"),
        (Some(Ok(_)), InviteState::Revoked(id)) => format!("revoked invite={id}"),
        (Some(Ok(_)), InviteState::UsedUp(id)) => format!("used up invite={id}"),
        (Some(Ok(_)), InviteState::Valid(id)) => {
            accounts.throttle.refund(attempt).await;
            return Ok(Some(Admit { hash, id }));
        }
    };
    accounts.logs.credentials(format!(
        "invite refused user={shown} from={ip_port} reason={reason}"
    ));
    Err(invalid())
}

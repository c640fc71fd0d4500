//! Invites on the client side: `chatbox://` links and bare tokens (parsed by
//! `chatbox_core::link`), where they send the client, which key they pin, and asking a server
//! whether it registers by invite only.
//!
//! A link `chatbox://HOST:PORT/?key=SHA256:…&invite=TOKEN` names one server, the key it must
//! answer with ([`Trust::Link`]: checked as soon as the server's handshake message is read, so
//! an impostor never sees the registration, the token or the password, even on first contact)
//! and the invite. A bare token (43 characters of `[A-Za-z0-9_-]`) goes to the `--server`
//! addresses with the usual trust.

use chatbox_core::link::{InviteToken, Link, SCHEME};
use chatbox_core::proto::ClientMsg;

use crate::conn::{Conn, timeout};
use crate::error::ClientError;
use crate::event::ServerEvent;
use crate::known_servers::Trust;
use crate::servers::{ServerList, connect_any};

/// Whether `s` is meant as a `chatbox://` link (scheme compared without case).
#[must_use]
pub fn is_link(s: &str) -> bool {
    s.trim()
        .get(..SCHEME.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(SCHEME))
}

/// Where to connect, how to check the key, and the invite token to send (if any).
#[derive(Debug, Clone)]
pub struct Destination {
    /// The addresses.
    pub servers: ServerList,
    /// How the server key is checked.
    pub trust: Trust,
    /// The invite token's text form (the secret: never printed).
    pub invite: Option<String>,
}

/// The trust a link's key gives, combined with `--server-key` (which must then agree) and the
/// usual `known_servers` file.
fn link_trust(link: &Link, pinned: &Trust) -> Result<Trust, ClientError> {
    let Some(key) = link.key_fingerprint() else {
        return Ok(pinned.clone());
    };
    let key = key.as_str().to_owned();
    match pinned {
        Trust::Pinned(p) if *p == key => Ok(Trust::Pinned(key)),
        Trust::Pinned(p) => Err(ClientError::Usage(format!(
            "the link pins the server key {key} but --server-key says {p}"
        ))),
        Trust::File(file) | Trust::Link { file, .. } => Ok(Trust::Link {
            key,
            file: file.clone(),
        }),
    }
}

/// A parsed link as a destination (its one server, its key, its invite).
pub fn from_link(link: &Link, trust: &Trust) -> Result<Destination, ClientError> {
    Ok(Destination {
        servers: ServerList::parse(&[link.server().as_str()])?,
        trust: link_trust(link, trust)?,
        invite: link.invite().map(|t| t.to_text().as_str().to_owned()),
    })
}

/// `--server` items, of which one may be a `chatbox://` link (then it must be the only one).
/// A link that does not parse is a usage error naming what is wrong with it.
pub fn resolve_servers<S: AsRef<str>>(
    items: &[S],
    trust: &Trust,
) -> Result<Destination, ClientError> {
    let links: Vec<&str> = items
        .iter()
        .map(AsRef::as_ref)
        .filter(|s| is_link(s))
        .collect();
    match links.as_slice() {
        [] => Ok(Destination {
            servers: ServerList::parse(items)?,
            trust: trust.clone(),
            invite: None,
        }),
        [one] if items.len() == 1 => {
            let link =
                Link::parse(one).map_err(|e| ClientError::Usage(format!("--server: {e}")))?;
            from_link(&link, trust)
        }
        _ => Err(ClientError::Usage(
            "a chatbox:// link names one server: give it alone in --server".into(),
        )),
    }
}

/// The destination for `register --invite ARG`: a link (its server, which must be among the
/// explicit `--server` addresses if any were given, and its key), or a bare token for
/// `servers`. A garbled invite is [`ClientError::BadInvite`] (exit 4), found before anything
/// is asked or sent.
pub fn for_invite(
    arg: &str,
    servers: &ServerList,
    explicit_server: bool,
    trust: &Trust,
) -> Result<Destination, ClientError> {
    if is_link(arg) {
        let link = Link::parse(arg)
            .map_err(|e| ClientError::BadInvite(format!("the invite link is garbled: {e}")))?;
        if link.invite().is_none() {
            return Err(ClientError::BadInvite(
                "the link carries no invite (no invite=…)".into(),
            ));
        }
        let dest = from_link(&link, trust)?;
        let server = dest.servers.get(0);
        if explicit_server && !servers.addrs().iter().any(|a| a == server) {
            return Err(ClientError::Usage(format!(
                "the invite is for {server}, not for --server {servers}: leave --server (and \
                 CHATBOX_SERVER) out \
                 (the link says where to go)"
            )));
        }
        return Ok(dest);
    }
    let token = InviteToken::parse(arg.trim())
        .map_err(|e| ClientError::BadInvite(format!("the invite is garbled: {e}")))?;
    Ok(Destination {
        servers: servers.clone(),
        trust: trust.clone(),
        invite: Some(token.to_text().as_str().to_owned()),
    })
}

/// Asks `conn`'s server whether registering needs an invite. A server that predates invites
/// answers with an error (unknown message): that counts as open registration.
pub async fn ask_policy(conn: &mut Conn) -> Result<bool, ClientError> {
    conn.send(&ClientMsg::AskPolicy).await?;
    timeout(
        crate::account::AUTH_TIMEOUT,
        || ClientError::ConnectionLost("no answer from the server (registration policy)".into()),
        async {
            loop {
                match conn.recv().await? {
                    ServerEvent::RegistrationPolicy { invite_required } => {
                        return Ok(invite_required);
                    }
                    ServerEvent::Error { .. } => return Ok(false),
                    ServerEvent::Bye { reason } => {
                        return Err(ClientError::ConnectionLost(format!(
                            "the server closed the connection: {reason}"
                        )));
                    }
                    _ => {}
                }
            }
        },
    )
    .await
}

/// Connects (first address that answers), asks the policy and says goodbye. Used before
/// prompting, so a person is not kept typing on an idle connection the server would close.
pub async fn probe_policy(servers: &ServerList, trust: &Trust) -> Result<bool, ClientError> {
    let (mut conn, _) = connect_any(servers, trust).await?;
    crate::conn::note_trust(&conn);
    let required = ask_policy(&mut conn).await?;
    let _ = conn.send(&ClientMsg::Bye).await;
    Ok(required)
}

/// The error for a registration without an invite on an invite-only server (exit 4).
#[must_use]
pub fn invite_needed(servers: &ServerList) -> ClientError {
    ClientError::BadInvite(format!(
        "{servers} registers by invite only: ask an operator for an invite link, then run \
         chatbox-client register --invite LINK --user NAME (or chatbox-client join LINK)"
    ))
}

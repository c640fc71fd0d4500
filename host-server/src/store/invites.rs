//! Invites on both backends: created and listed by the admin CLI, a use taken atomically with
//! the pending registration it admits, given back by a trigger whenever that registration is
//! deleted unconfirmed (connection closed, deadline, node start, node reaped), the invite's role
//! applied at confirmation. Only a keyed hash of each token is stored.

use rusqlite::{Connection, OptionalExtension, params};
use sqlx::Row;

use super::model::{Pending, i64_of, u32_of, u64_of};
use super::{Backend, Store, StoreError, sql};

/// One invite as `invite list` shows it (no token: it is not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// Its id (what `invite revoke` takes and credentials.log names).
    pub id: i64,
    /// Uses left (a use held by an unconfirmed registration is not counted here).
    pub uses_left: u32,
    /// Uses it was created with.
    pub uses_total: u32,
    /// Expiry, Unix ms.
    pub expires_ms: u64,
    /// `user` or `op`.
    pub role: String,
    /// The administrator's note.
    pub note: String,
    /// Creation time, Unix ms.
    pub created_ms: u64,
    /// Whether revoked.
    pub revoked: bool,
}

/// What a token hash is, for credentials.log (the answer to the client is the same for all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteState {
    /// No invite has this token.
    Unknown,
    /// Usable now (id).
    Valid(i64),
    /// Expired (id).
    Expired(i64),
    /// Revoked (id).
    Revoked(i64),
    /// No use left (id); some may come back if registrations holding them are not confirmed.
    UsedUp(i64),
}

/// The outcome of starting a registration with an invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingInvite {
    /// The pending row exists and holds one use of invite `id`.
    Started {
        /// The invite.
        id: i64,
    },
    /// The invite had no use to give (or is expired, revoked, unknown); nothing was changed.
    Refused,
    /// The name is taken; the use was given back.
    NameTaken,
}

fn lite(s: &str) -> String {
    s.replace('$', "?")
}

/// The new invite's fields.
#[derive(Debug, Clone)]
pub struct NewInvite {
    /// Keyed hash of the token.
    pub hash: [u8; 32],
    /// Uses (at least 1).
    pub uses: u32,
    /// Expiry, Unix ms.
    pub expires_ms: u64,
    /// `user` or `op`.
    pub role: String,
    /// Note.
    pub note: String,
    /// Now, Unix ms.
    pub created_ms: u64,
}

impl Store {
    /// Stores a new invite; returns its id.
    pub async fn invite_add(&self, n: NewInvite) -> Result<i64, StoreError> {
        let what = format!(
            "INSERT INVITES uses={} role={} expires_ms={}",
            n.uses, n.role, n.expires_ms
        );
        let r = match &self.backend {
            Backend::Sqlite(b) => {
                let n = n.clone();
                b.call(move |c| {
                    c.prepare_cached(&lite(sql::INVITE_ADD))?.query_row(
                        params![
                            &n.hash[..],
                            i64::from(n.uses),
                            i64_of(n.expires_ms),
                            n.role,
                            n.note,
                            i64_of(n.created_ms)
                        ],
                        |r| r.get::<_, i64>(0),
                    )
                })
                .await
            }
            Backend::Postgres(p) => sqlx::query(sql::INVITE_ADD)
                .bind(&n.hash[..])
                .bind(i64::from(n.uses))
                .bind(i64_of(n.expires_ms))
                .bind(&n.role)
                .bind(&n.note)
                .bind(i64_of(n.created_ms))
                .fetch_one(p.pool())
                .await
                .and_then(|r| r.try_get::<i64, _>(0))
                .map_err(StoreError::from),
        };
        self.logged(what, r)
    }

    /// Every invite, by id.
    pub async fn invites(&self) -> Result<Vec<Invite>, StoreError> {
        let r = match &self.backend {
            Backend::Sqlite(b) => {
                b.call(|c| {
                    c.prepare_cached(&lite(sql::INVITES_LIST))?
                        .query_map([], |r| {
                            Ok(Invite {
                                id: r.get(0)?,
                                uses_left: u32_of(r.get(1)?),
                                uses_total: u32_of(r.get(2)?),
                                expires_ms: u64_of(r.get(3)?),
                                role: r.get(4)?,
                                note: r.get(5)?,
                                created_ms: u64_of(r.get(6)?),
                                revoked: r.get::<_, i64>(7)? != 0,
                            })
                        })?
                        .collect()
                })
                .await
            }
            Backend::Postgres(p) => async {
                let rows = sqlx::query(sql::INVITES_LIST).fetch_all(p.pool()).await?;
                rows.iter()
                    .map(|r| {
                        Ok(Invite {
                            id: r.try_get(0)?,
                            uses_left: u32_of(r.try_get(1)?),
                            uses_total: u32_of(r.try_get(2)?),
                            expires_ms: u64_of(r.try_get(3)?),
                            role: r.try_get(4)?,
                            note: r.try_get(5)?,
                            created_ms: u64_of(r.try_get(6)?),
                            revoked: r.try_get::<i64, _>(7)? != 0,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            }
            .await
            .map_err(StoreError::from),
        };
        self.logged("SELECT INVITES (all)".to_owned(), r)
    }

    /// Revokes an invite; `false` if unknown or already revoked.
    pub async fn invite_revoke(&self, id: i64) -> Result<bool, StoreError> {
        let r = match &self.backend {
            Backend::Sqlite(b) => {
                b.call(move |c| {
                    Ok(c.prepare_cached(&lite(sql::INVITE_REVOKE))?
                        .execute(params![id])?
                        > 0)
                })
                .await
            }
            Backend::Postgres(p) => sqlx::query(sql::INVITE_REVOKE)
                .bind(id)
                .execute(p.pool())
                .await
                .map(|r| r.rows_affected() > 0)
                .map_err(StoreError::from),
        };
        self.logged(format!("UPDATE INVITES id={id} revoked"), r)
    }

    /// What the token hash `hash` is at `now_ms` (for the log line of a refusal).
    pub async fn invite_state(
        &self,
        hash: [u8; 32],
        now_ms: u64,
    ) -> Result<InviteState, StoreError> {
        let r: Result<Option<(i64, i64, i64, i64)>, StoreError> = match &self.backend {
            Backend::Sqlite(b) => {
                b.call(move |c| {
                    c.prepare_cached(&lite(sql::INVITE_LOOKUP))?
                        .query_row(params![&hash[..]], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                        })
                        .optional()
                })
                .await
            }
            Backend::Postgres(p) => sqlx::query(sql::INVITE_LOOKUP)
                .bind(&hash[..])
                .fetch_optional(p.pool())
                .await
                .and_then(|o| {
                    o.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                        .transpose()
                })
                .map_err(StoreError::from),
        };
        let r = r.map(|row| match row {
            None => InviteState::Unknown,
            Some((id, _, _, revoked)) if revoked != 0 => InviteState::Revoked(id),
            Some((id, _, expires, _)) if u64_of(expires) <= now_ms => InviteState::Expired(id),
            Some((id, left, _, _)) if left <= 0 => InviteState::UsedUp(id),
            Some((id, _, _, _)) => InviteState::Valid(id),
        });
        self.logged("SELECT INVITES by token hash".to_owned(), r)
    }

    /// Creates a pending registration holding one use of the invite whose token hashes to
    /// `hash`, in one transaction: the use is taken (if one is left, the invite unexpired and
    /// not revoked), then the name reserved; a taken name gives the use back.
    pub async fn insert_pending_invite(
        &self,
        user: &str,
        phc: String,
        sealed: Vec<u8>,
        ip_port: &str,
        now_ms: u64,
        hash: [u8; 32],
    ) -> Result<PendingInvite, StoreError> {
        let p = Pending {
            user: user.to_owned(),
            phc,
            sealed,
            ip_port: ip_port.to_owned(),
            now_ms,
            node: self.node.to_string(),
        };
        let what = format!(
            "UPDATE INVITES take one use; INSERT REGISTERED user={} statut=ko ip_port={} (invite)",
            p.user, p.ip_port
        );
        let now = p.now_ms;
        let r = match &self.backend {
            Backend::Sqlite(b) => {
                b.call(move |c: &Connection| {
                    let Some(id) = c
                        .prepare_cached(&lite(sql::INVITE_TAKE))?
                        .query_row(params![&hash[..], i64_of(now)], |r| r.get::<_, i64>(0))
                        .optional()?
                    else {
                        return Ok(PendingInvite::Refused);
                    };
                    let n = c
                        .prepare_cached(&lite(sql::INSERT_PENDING_INVITE))?
                        .execute(params![
                            p.user,
                            p.phc,
                            p.ip_port,
                            p.sealed,
                            i64_of(p.now_ms),
                            p.node,
                            id
                        ])?;
                    if n == 1 {
                        Ok(PendingInvite::Started { id })
                    } else {
                        c.prepare_cached(&lite(sql::INVITE_GIVE_BACK))?
                            .execute(params![id])?;
                        Ok(PendingInvite::NameTaken)
                    }
                })
                .await
            }
            Backend::Postgres(pg) => Box::pin(async {
                let mut tx = pg.pool().begin().await?;
                let Some(row) = sqlx::query(sql::INVITE_TAKE)
                    .bind(&hash[..])
                    .bind(i64_of(now))
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    tx.rollback().await?;
                    return Ok(PendingInvite::Refused);
                };
                let id: i64 = row.try_get(0)?;
                let n = sqlx::query(sql::INSERT_PENDING_INVITE)
                    .bind(&p.user)
                    .bind(&p.phc)
                    .bind(&p.ip_port)
                    .bind(&p.sealed)
                    .bind(i64_of(p.now_ms))
                    .bind(&p.node)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 1 {
                    tx.commit().await?;
                    Ok(PendingInvite::Started { id })
                } else {
                    tx.rollback().await?;
                    Ok(PendingInvite::NameTaken)
                }
            })
            .await
            .map_err(|e: sqlx::Error| StoreError::from(e)),
        };
        self.logged(what, r)
    }

    /// How many confirmed accounts exist (0: a first-run op invite is due).
    pub async fn confirmed_accounts(&self) -> Result<u64, StoreError> {
        let r = match &self.backend {
            Backend::Sqlite(b) => {
                b.call(|c| {
                    c.prepare_cached(&lite(sql::CONFIRMED_COUNT))?
                        .query_row([], |r| r.get::<_, i64>(0))
                })
                .await
            }
            Backend::Postgres(p) => sqlx::query(sql::CONFIRMED_COUNT)
                .fetch_one(p.pool())
                .await
                .and_then(|r| r.try_get::<i64, _>(0))
                .map_err(StoreError::from),
        };
        self.logged(
            "SELECT COUNT REGISTERED confirmed".to_owned(),
            r.map(u64_of),
        )
    }

    /// Replaces the password hash (self-service); `false` if the account is gone.
    pub async fn set_password(&self, user: &str, phc: String) -> Result<bool, StoreError> {
        let what = format!("UPDATE REGISTERED user={user} password");
        let r = match &self.backend {
            Backend::Sqlite(b) => {
                let u = user.to_owned();
                b.call(move |c| {
                    Ok(c.prepare_cached(&lite(sql::SET_PASSWORD))?
                        .execute(params![u, phc])?
                        == 1)
                })
                .await
            }
            Backend::Postgres(p) => sqlx::query(sql::SET_PASSWORD)
                .bind(user)
                .bind(&phc)
                .execute(p.pool())
                .await
                .map(|r| r.rows_affected() == 1)
                .map_err(StoreError::from),
        };
        self.logged(what, r)
    }

    /// A re-enrolled second factor: new sealed secret, its step used, new scratch codes (the
    /// old ones gone), in one transaction; `false` if the account is gone.
    pub async fn reenrol(
        &self,
        user: &str,
        sealed: Vec<u8>,
        step: u64,
        scratch: Vec<[u8; 32]>,
    ) -> Result<bool, StoreError> {
        let what = format!(
            "UPDATE REGISTERED user={user} totp; DELETE+INSERT SCRATCH user={user} count={}",
            scratch.len()
        );
        let r = match &self.backend {
            Backend::Sqlite(b) => {
                let u = user.to_owned();
                b.call(move |c| {
                    if c.prepare_cached(&lite(sql::REENROL))?.execute(params![
                        u,
                        sealed,
                        i64_of(step)
                    ])? != 1
                    {
                        return Ok(false);
                    }
                    c.prepare_cached(&lite(sql::SCRATCH_CLEAR))?
                        .execute(params![u])?;
                    for h in &scratch {
                        c.prepare_cached(&lite(sql::SCRATCH_ADD))?
                            .execute(params![u, &h[..]])?;
                    }
                    Ok(true)
                })
                .await
            }
            Backend::Postgres(p) => Box::pin(async {
                let mut tx = p.pool().begin().await?;
                let n = sqlx::query(sql::REENROL)
                    .bind(user)
                    .bind(&sealed)
                    .bind(i64_of(step))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(sql::SCRATCH_CLEAR)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
                for h in &scratch {
                    sqlx::query(sql::SCRATCH_ADD)
                        .bind(user)
                        .bind(&h[..])
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            })
            .await
            .map_err(|e: sqlx::Error| StoreError::from(e)),
        };
        self.logged(what, r)
    }
}

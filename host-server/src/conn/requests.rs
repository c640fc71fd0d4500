//! What each request does, once decoded: the rate limit and the route come from the sans-IO
//! state ([`ConnState`](super::state::ConnState)); accounts answer `Register`,
//! `RegisterInvite`, `ConfirmTotp`, `Login` and self-service, chat everything a logged-in
//! user sends. The answers go out through the driver. See docs/DESIGN.md, "Server:
//! connections and runtime".

use std::time::Instant;

use chatbox_core::proto::{
    ClientMsg, ErrorCode, ServerMsg, SessionEntry, SessionEntryList, StrList,
};

use super::close::CloseReason;
use super::driver::{Conn, Flow};
use super::sessions;
use super::state::{self, Rate, Route};
use crate::auth::{Refusal, account, invite, login, register};
use crate::chat::{Me, Replies};
use crate::metrics::LoginResult;

impl Conn {
    /// One decoded message: the rate limit, then where its phase sends it.
    pub(super) async fn dispatch(&mut self, msg: &ClientMsg<'_>) -> Result<Flow, CloseReason> {
        match self.state.rate(msg, Instant::now()) {
            Rate::Pass => {}
            Rate::Warn => {
                self.send(&ServerMsg::error(
                    ErrorCode::RateLimited,
                    "too many messages, slow down",
                ))
                .await?;
                return Ok(Flow::Continue);
            }
            Rate::Close => {
                let _ = self
                    .send(&ServerMsg::Bye {
                        reason: "rate limit exceeded",
                    })
                    .await;
                return Ok(Flow::Close(CloseReason::RateLimit));
            }
        }
        match (self.state.route(msg), *msg) {
            (Route::Refuse(r), _) => self.refuse(r).await,
            (Route::Pong, ClientMsg::Ping { token }) => {
                self.send(&ServerMsg::Pong { token }).await?;
                Ok(Flow::Continue)
            }
            (Route::Bye, _) => Ok(Flow::Close(CloseReason::ClientBye)),
            (Route::Policy, _) => {
                let invite_required = self.env.registration == crate::invite::Registration::Invite;
                self.send(&ServerMsg::RegistrationPolicy { invite_required })
                    .await?;
                Ok(Flow::Continue)
            }
            (Route::Register, ClientMsg::Register { user, password }) => {
                Box::pin(self.register(user, password, None)).await
            }
            (
                Route::Register,
                ClientMsg::RegisterInvite {
                    user,
                    password,
                    invite,
                },
            ) => Box::pin(self.register(user, password, Some(invite))).await,
            (Route::Confirm, ClientMsg::ConfirmTotp { code }) => Box::pin(self.confirm(code)).await,
            (
                Route::Login,
                ClientMsg::Login {
                    user,
                    password,
                    otp,
                },
            ) => Box::pin(self.login(user, password, otp)).await,
            (Route::SelfService, _) => Box::pin(self.self_service(msg)).await,
            (Route::Chat, _) => {
                let Some(me) = self.state.session().map(|s| s.me.clone()) else {
                    return Ok(Flow::Continue);
                };
                let chat = self.env.chat.clone();
                let mut out = Replies::default();
                chat.handle(&me, msg, &mut out).await;
                self.send_replies(out).await
            }
            // A route is only ever given for its own messages.
            _ => Ok(Flow::Continue),
        }
    }

    /// `ConfirmTotp` during a registration.
    async fn confirm(&mut self, code: &str) -> Result<Flow, CloseReason> {
        let env = self.env.clone();
        let Some(pending) = self.state.pending_mut() else {
            return Ok(Flow::Continue);
        };
        match register::confirm(&env.accounts, pending, code, &self.ip_port).await {
            Ok(codes) => {
                env.metrics.registration();
                // The same connection may log in next: a fresh anonymous period.
                self.state.registered(Instant::now());
                let list: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
                self.send(&ServerMsg::Registered {
                    scratch_codes: StrList::Items(&list),
                })
                .await?;
                Ok(Flow::Continue)
            }
            Err(r) => self.refuse(r).await,
        }
    }

    /// `Login` from an anonymous connection.
    async fn login(&mut self, user: &str, password: &str, otp: &str) -> Result<Flow, CloseReason> {
        let env = self.env.clone();
        let chat = &env.chat;
        let began = crate::time::now_ms();
        match login::login(
            &env.accounts,
            user,
            password,
            otp,
            self.peer.ip(),
            &self.ip_port,
        )
        .await
        {
            Ok(li) => {
                env.metrics.login(LoginResult::Ok);
                env.metrics.conn_authenticated();
                let since_ms = crate::time::now_ms();
                let me = Me {
                    id: self.id,
                    user: li.user,
                    ip_port: self.ip_port.clone(),
                };
                chat.sign_in(&me, since_ms);
                self.guard.logged_in();
                // An administrator's change that raced this login (see there).
                if let Some(reason) = login::admin_raced_login(&env.accounts, &me.user, began).await
                {
                    let _ = self.send(&ServerMsg::Bye { reason }).await;
                    return Ok(Flow::Close(CloseReason::RacedLogin(reason)));
                }
                let mut out = Replies::default();
                chat.enter(&me, &mut out).await;
                self.state.logged_in(state::Session {
                    me,
                    login_step: li.step,
                    reenrol: None,
                });
                self.send_replies(out).await
            }
            Err(r) => {
                env.metrics.login(if r.code == ErrorCode::Busy {
                    LoginResult::Busy
                } else {
                    LoginResult::Failed
                });
                self.refuse(r).await
            }
        }
    }

    /// `Register` (`invite` None) or `RegisterInvite`: the policy and the invite first (so a
    /// refused invite reveals nothing about names), then the registration.
    async fn register(
        &mut self,
        user: &str,
        password: &str,
        invite: Option<&str>,
    ) -> Result<Flow, CloseReason> {
        let env = self.env.clone();
        let admit =
            match invite::admit(&env.accounts, invite, user, self.peer.ip(), &self.ip_port).await {
                Ok(a) => a,
                Err(r) => return self.refuse(r).await,
            };
        match register::start(
            &env.accounts,
            user,
            password,
            self.peer.ip(),
            &self.ip_port,
            admit.as_ref(),
        )
        .await
        {
            Ok((uri, pending)) => {
                self.state.registering(pending);
                self.send(&ServerMsg::RegisterStarted { uri: &uri }).await?;
                Ok(Flow::Continue)
            }
            Err(r) => self.refuse(r).await,
        }
    }

    /// Account self-service (logged in).
    async fn self_service(&mut self, msg: &ClientMsg<'_>) -> Result<Flow, CloseReason> {
        let env = self.env.clone();
        let chat = &env.chat;
        let accounts = &env.accounts;
        let Some(session) = self.state.session() else {
            return Ok(Flow::Continue);
        };
        let me = session.me.clone();
        let who = account::Who {
            user: &me.user,
            conn: self.id,
            ip: self.peer.ip(),
            ip_port: &self.ip_port,
            login_step: session.login_step,
        };
        let close_others = |reason: &str| sessions::close_others(&env, who, reason);
        match *msg {
            ClientMsg::ChangePassword {
                password,
                otp,
                new_password,
            } => match account::change_password(
                accounts,
                who,
                password,
                otp,
                new_password,
                close_others,
            )
            .await
            {
                Ok(closed) => {
                    self.send(&ServerMsg::PasswordChanged { closed }).await?;
                    Ok(Flow::Continue)
                }
                Err(r) => self.refuse(r).await,
            },
            ClientMsg::Reenrol { password, otp } => {
                match account::reenrol_start(accounts, who, password, otp).await {
                    Ok((uri, r)) => {
                        if let Some(s) = self.state.session_mut() {
                            s.reenrol = Some(r);
                        }
                        self.send(&ServerMsg::ReenrolStarted { uri: &uri }).await?;
                        Ok(Flow::Continue)
                    }
                    Err(r) => self.refuse(r).await,
                }
            }
            ClientMsg::ConfirmReenrol { code } => {
                let Some(mut r) = self.state.session_mut().and_then(|s| s.reenrol.take()) else {
                    return self
                        .refuse(Refusal::keep(
                            ErrorCode::BadState,
                            "no re-enrolment in progress",
                        ))
                        .await;
                };
                match account::reenrol_confirm(accounts, who, &mut r, code, close_others).await {
                    Ok((closed, codes)) => {
                        let list: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
                        self.send(&ServerMsg::Reenrolled {
                            closed,
                            scratch_codes: StrList::Items(&list),
                        })
                        .await?;
                        Ok(Flow::Continue)
                    }
                    Err(e) => {
                        if !e.over
                            && let Some(s) = self.state.session_mut()
                        {
                            s.reenrol = Some(r);
                        }
                        self.refuse(e.refusal).await
                    }
                }
            }
            ClientMsg::Sessions => {
                let all = chat.sessions(&me.user);
                let ids: Vec<String> = all.iter().map(sessions::session_id).collect();
                let entries: Vec<SessionEntry<'_>> = all
                    .iter()
                    .zip(&ids)
                    .map(|(s, id)| SessionEntry {
                        id,
                        node: &s.node,
                        address: &s.address,
                        since_ms: s.since_ms,
                        current: s.node == env.node && s.conn == self.id,
                    })
                    .collect();
                let mut chunks = entries.chunks(64).peekable();
                if chunks.peek().is_none() {
                    self.queue_msg(&ServerMsg::SessionList {
                        done: true,
                        sessions: SessionEntryList::Items(&[]),
                    })?;
                }
                while let Some(c) = chunks.next() {
                    self.queue_msg(&ServerMsg::SessionList {
                        done: chunks.peek().is_none(),
                        sessions: SessionEntryList::Items(c),
                    })?;
                }
                self.flush().await?;
                Ok(Flow::Continue)
            }
            ClientMsg::RevokeSession { id } => match sessions::revoke(&env, who, Some(id)) {
                Ok(count) => {
                    self.send(&ServerMsg::SessionsRevoked { count }).await?;
                    Ok(Flow::Continue)
                }
                Err(r) => self.refuse(r).await,
            },
            ClientMsg::RevokeOtherSessions => match sessions::revoke(&env, who, None) {
                Ok(count) => {
                    self.send(&ServerMsg::SessionsRevoked { count }).await?;
                    Ok(Flow::Continue)
                }
                Err(r) => self.refuse(r).await,
            },
            _ => Ok(Flow::Continue),
        }
    }
}

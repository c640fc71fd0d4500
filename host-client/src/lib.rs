//! # chatbox-client
//!
//! The ChatBox terminal client. Everything protocol is `chatbox-core`; this crate moves bytes,
//! keeps time, talks to the person at the terminal and to scripts.
//!
//! | module | what it holds |
//! |---|---|
//! | [`conn`] | TCP + `core::session`: handshake, server key check, send and receive messages |
//! | [`servers`] | the list of server addresses; connecting to the first that answers |
//! | [`failover`] | logging in at the first usable address, and again after a lost connection |
//! | [`invite`] | `chatbox://` links and invite tokens: where they lead, the key they pin, the policy |
//! | [`otp_source`] | one-time codes computed from `CHATBOX_TOTP_SECRET` for logging in again |
//! | [`link`] | the chat session, sans-IO: outbox, pace, rooms, acknowledgements, keepalive, resume |
//! | [`passwd`] | `passwd --user U`: the scriptable password change |
//! | [`known_servers`] | trust on first use of server keys (`$CHATBOX_HOME/known_servers`) |
//! | [`account`] | register / confirm / login exchanges |
//! | [`event`] | owned, sanitised copies of server messages |
//! | [`sanitize`] | stripping escapes and control characters from untrusted text |
//! | [`commands`] | `/commands` and plain lines → `ClientMsg`; which room is current |
//! | [`renewal`] | the new password or TOTP secret of a `/passwd` or `/reenrol`, once confirmed |
//! | [`qr_view`] | QR codes as terminal half blocks |
//! | [`menu`] | the interactive menu: register and login prompts |
//! | [`plain`] | the scriptable mode: registration, event lines |
//! | [`plain_chat`] | the scriptable chat session: a driver over [`link`], with reconnects |
//! | [`tui`] | the chat screen: state, rendering, input; a driver over [`link`] |
//! | [`error`] | errors and exit codes |

pub mod account;
pub mod commands;
pub mod conn;
pub mod error;
pub mod event;
pub mod failover;
pub mod invite;
pub mod known_servers;
pub mod link;
pub mod menu;
pub mod otp_source;
pub mod passwd;
pub mod plain;
pub mod plain_chat;
pub mod qr_view;
pub mod renewal;
pub mod sanitize;
pub mod servers;
pub mod tui;

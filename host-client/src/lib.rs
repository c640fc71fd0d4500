//! # chatbox-client
//!
//! The ChatBox terminal client. Everything protocol is `chatbox-core`; this crate moves bytes,
//! keeps time, talks to the person at the terminal and to scripts.
//!
//! | module | what it holds |
//! |---|---|
//! | [`conn`] | TCP + `core::session`: handshake, server key check, send and receive messages |
//! | [`known_servers`] | trust on first use of server keys (`$CHATBOX_HOME/known_servers`) |
//! | [`account`] | register / confirm / login exchanges |
//! | [`event`] | owned, sanitised copies of server messages |
//! | [`sanitize`] | stripping escapes and control characters from untrusted text |
//! | [`commands`] | `/commands` and plain lines → `ClientMsg`; which room is current |
//! | [`qr_view`] | QR codes as terminal half blocks |
//! | [`menu`] | the interactive menu: register and login prompts |
//! | [`plain`] | the scriptable mode |
//! | [`tui`] | the chat screen: state, rendering, input |
//! | [`error`] | errors and exit codes |

pub mod account;
pub mod commands;
pub mod conn;
pub mod error;
pub mod event;
pub mod known_servers;
pub mod menu;
pub mod plain;
pub mod qr_view;
pub mod sanitize;
pub mod tui;

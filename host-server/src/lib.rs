//! # chatbox-server
//!
//! The ChatBox server: a Noise `NX` handshake with the server's static key, accounts with
//! password + TOTP, rooms and private messages stored in SQLite, four log files (the chat log
//! chained with HMACs). Every protocol step is `chatbox-core`'s; this crate moves bytes, keeps
//! time and state, and talks to the disk.
//!
//! One message's way: socket → [`conn`] → `Session::handle_input` → `ClientMsg::decode` →
//! [`auth`] or [`chat`] → [`store`] writer (committed) → `bus` → chat state → each recipient's
//! connection → `Session::seal_in_place` → socket.
//!
//! ```no_run
//! let dir = std::path::Path::new("/tmp/chatbox-example");
//! let server = chatbox_server::start(chatbox_server::Config::for_tests(dir))?;
//! println!("{} {}", server.local_addr(), server.fingerprint());
//! server.shutdown();
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod admin;
pub mod auth;
pub mod backup;
mod bus;
pub mod chat;
pub mod config;
mod conn;
pub mod invite;
pub mod keys;
pub mod logs;
pub mod metrics;
pub mod private;
mod server;
pub mod settings;
pub mod store;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod time;

pub use config::Config;
pub use server::{ServerHandle, Shared, start};

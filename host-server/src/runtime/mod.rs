//! The runtime: what runs the server around its connections. [`accept`] takes sockets,
//! [`admission`] decides which it keeps (limits per IP, the anonymous share and its eviction,
//! [`admission::ConnGuard`]), [`cluster`] holds the bus, the lease and restore, [`admin`]
//! applies administrators' changes to live sessions, [`shutdown`] stops it all in order and
//! [`setup`] prepares the disk. `lib.rs`'s `start` wires these to the services. See
//! docs/DESIGN.md, "Server: connections and runtime".

pub(crate) mod accept;
pub(crate) mod admin;
pub(crate) mod admission;
pub(crate) mod cluster;
pub(crate) mod exec;
pub(crate) mod setup;
pub(crate) mod shutdown;

//! The rows the storage API hands out, the same for every backend.

/// An account row.
#[derive(Debug, Clone)]
pub struct Account {
    /// Normalised user name.
    pub user: String,
    /// PHC password hash.
    pub password: String,
    /// Last address a login came from.
    pub ip_port_last: String,
    /// `ok` (active) or `ko` (pending).
    pub statut: String,
    /// `ok` while logged in.
    pub online: String,
    /// Sealed TOTP secret.
    pub totp_sealed: Vec<u8>,
    /// Last accepted TOTP step.
    pub totp_last_step: Option<u64>,
    /// `user` or `op`.
    pub role: String,
    /// Consecutive wrong codes after the right password (what the lock counts).
    pub failures: u32,
    /// Locked until this Unix time in ms (0 = not locked).
    pub locked_until: u64,
    /// Creation time, Unix ms.
    pub created: u64,
    /// A registration not yet confirmed on its connection.
    pub pending_reg: bool,
}

/// A stored chat message.
#[derive(Debug, Clone)]
pub struct StoredMsg {
    /// Row id.
    pub id: u64,
    /// Unix ms.
    pub time_ms: u64,
    /// Room, or recipient user for private messages.
    pub target: String,
    /// Sender.
    pub sender: String,
    /// `MessageKind` as a number.
    pub kind: u8,
    /// Sanitised text.
    pub text: String,
}

/// A room topic.
#[derive(Debug, Clone)]
pub struct TopicRow {
    /// Room.
    pub room: String,
    /// Topic text.
    pub topic: String,
    /// Who set it.
    pub set_by: String,
    /// When, Unix ms.
    pub time_ms: u64,
}

/// A row of `ONLINE`: one connection on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineRow {
    /// The node holding the connection.
    pub node: String,
    /// `ClientN` while anonymous, the user name once logged in.
    pub client_id: String,
    /// The peer's address.
    pub ip_port: String,
    /// `anonyme` or `online`.
    pub statut: String,
}

/// A registration to store, pending its confirmation on its connection.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) user: String,
    /// PHC password hash.
    pub(crate) phc: String,
    /// Sealed TOTP secret.
    pub(crate) sealed: Vec<u8>,
    pub(crate) ip_port: String,
    pub(crate) now_ms: u64,
    /// The node holding the connection.
    pub(crate) node: String,
}

/// A ban or mute to store.
#[derive(Debug)]
pub(crate) struct SanctionSet {
    pub(crate) kind: Sanction,
    pub(crate) user: String,
    /// 0 = until lifted.
    pub(crate) until_ms: u64,
    pub(crate) reason: String,
    pub(crate) by: String,
    pub(crate) now_ms: u64,
}

/// Which moderation table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sanction {
    /// `BANS`: refused at login.
    Ban,
    /// `MUTES`: may not speak.
    Mute,
}

impl Sanction {
    /// Table name, for logs.
    #[must_use]
    pub fn table(self) -> &'static str {
        match self {
            Sanction::Ban => "BANS",
            Sanction::Mute => "MUTES",
        }
    }
}

/// Typed access to the columns of a result row, implemented by each backend's row type, so a
/// row maps to the API's structs in one place.
pub(crate) trait Cols {
    /// The driver's error.
    type Error;
    /// A `TEXT` column.
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    /// An integer column (`INTEGER` / `BIGINT`), possibly `NULL`.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    /// A `BLOB` / `BYTEA` column, possibly `NULL`.
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, Self::Error>;
    /// An integer column that is never `NULL` (0 if it is).
    fn int(&self, i: usize) -> Result<i64, Self::Error> {
        self.opt_int(i).map(Option::unwrap_or_default)
    }
}

impl Account {
    /// From the columns of `sql::ACCOUNT`.
    pub(crate) fn from_cols<C: Cols>(r: &C) -> Result<Account, C::Error> {
        Ok(Account {
            user: r.text(0)?,
            password: r.text(1)?,
            ip_port_last: r.text(2)?,
            statut: r.text(3)?,
            online: r.text(4)?,
            totp_sealed: r.opt_bytes(5)?.unwrap_or_default(),
            totp_last_step: r.opt_int(6)?.map(u64_of),
            role: r.text(7)?,
            failures: u32_of(r.int(8)?),
            locked_until: u64_of(r.int(9)?),
            created: u64_of(r.int(10)?),
            pending_reg: r.int(11)? != 0,
        })
    }
}

impl StoredMsg {
    /// From the columns of `sql::ROOM_HISTORY` / `sql::PRIVATE_HISTORY`.
    pub(crate) fn from_cols<C: Cols>(r: &C) -> Result<StoredMsg, C::Error> {
        Ok(StoredMsg {
            id: u64_of(r.int(0)?),
            time_ms: u64_of(r.int(1)?),
            target: r.text(2)?,
            sender: r.text(3)?,
            kind: u8::try_from(r.int(4)?).unwrap_or(0),
            text: r.text(5)?,
        })
    }
}

impl TopicRow {
    /// From the columns of `sql::TOPICS`.
    pub(crate) fn from_cols<C: Cols>(r: &C) -> Result<TopicRow, C::Error> {
        Ok(TopicRow {
            room: r.text(0)?,
            topic: r.text(1)?,
            set_by: r.text(2)?,
            time_ms: u64_of(r.int(3)?),
        })
    }
}

impl OnlineRow {
    /// From the columns of `sql::ONLINE_ROWS`.
    pub(crate) fn from_cols<C: Cols>(r: &C) -> Result<OnlineRow, C::Error> {
        Ok(OnlineRow {
            node: r.text(0)?,
            client_id: r.text(1)?,
            ip_port: r.text(2)?,
            statut: r.text(3)?,
        })
    }
}

/// A stored integer as the unsigned value the API uses (negative values never get stored).
pub(crate) fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// An unsigned value as the signed 64-bit integer both databases store.
pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored counter as `u32` (saturating).
pub(crate) fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(if v < 0 { 0 } else { u32::MAX })
}

/// The exclusive upper bound on message ids for a history request (`before_id` 0 = newest).
pub(crate) fn id_bound(before_id: u64) -> i64 {
    if before_id == 0 {
        i64::MAX
    } else {
        i64_of(before_id)
    }
}

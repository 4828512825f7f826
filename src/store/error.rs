//! The etcd v2 error table: every code with its fixed message and HTTP status, in one place.
//!
//! The store produces 100, 101, 102, 104, 105, 107, 108 and 401; the HTTP layer produces the
//! request-validation codes (2xx) and raft failures (300) from the same table, so the JSON error
//! body (`errorCode`, `message`, `cause`, `index`) is always built from [`ErrorCode::code`] and
//! [`ErrorCode::message`].

use std::fmt;

/// One row of etcd's v2 error table (`etcdserver/api/v2error`). Codes marked "never in 3.4" exist
/// so that clients mapping them see the same numbers and texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    KeyNotFound,
    TestFailed,
    NotFile,
    NoMorePeer,
    NotDir,
    NodeExist,
    KeyIsPreserved,
    RootReadOnly,
    DirNotEmpty,
    ExistingPeerAddr,
    Unauthorized,
    ValueRequired,
    PrevValueRequired,
    TtlNaN,
    IndexNaN,
    ValueOrTtlRequired,
    TimeoutNaN,
    NameRequired,
    IndexOrValueRequired,
    IndexValueMutex,
    InvalidField,
    InvalidForm,
    RefreshValue,
    RefreshTtlRequired,
    RaftInternal,
    LeaderElect,
    WatcherCleared,
    EventIndexCleared,
    StandbyInternal,
    InvalidActiveSize,
    InvalidRemoveDelay,
    ClientInternal,
}

impl ErrorCode {
    /// Every code, in numeric order (used by tests and by anyone mapping numbers back).
    pub const ALL: [ErrorCode; 32] = [
        ErrorCode::KeyNotFound,
        ErrorCode::TestFailed,
        ErrorCode::NotFile,
        ErrorCode::NoMorePeer,
        ErrorCode::NotDir,
        ErrorCode::NodeExist,
        ErrorCode::KeyIsPreserved,
        ErrorCode::RootReadOnly,
        ErrorCode::DirNotEmpty,
        ErrorCode::ExistingPeerAddr,
        ErrorCode::Unauthorized,
        ErrorCode::ValueRequired,
        ErrorCode::PrevValueRequired,
        ErrorCode::TtlNaN,
        ErrorCode::IndexNaN,
        ErrorCode::ValueOrTtlRequired,
        ErrorCode::TimeoutNaN,
        ErrorCode::NameRequired,
        ErrorCode::IndexOrValueRequired,
        ErrorCode::IndexValueMutex,
        ErrorCode::InvalidField,
        ErrorCode::InvalidForm,
        ErrorCode::RefreshValue,
        ErrorCode::RefreshTtlRequired,
        ErrorCode::RaftInternal,
        ErrorCode::LeaderElect,
        ErrorCode::WatcherCleared,
        ErrorCode::EventIndexCleared,
        ErrorCode::StandbyInternal,
        ErrorCode::InvalidActiveSize,
        ErrorCode::InvalidRemoveDelay,
        ErrorCode::ClientInternal,
    ];

    /// The table itself: (numeric code, exact message, HTTP status).
    fn row(self) -> (u16, &'static str, u16) {
        use ErrorCode::*;
        match self {
            KeyNotFound => (100, "Key not found", 404),
            TestFailed => (101, "Compare failed", 412),
            NotFile => (102, "Not a file", 403),
            NoMorePeer => (103, "Reached the max number of peers in the cluster", 400),
            NotDir => (104, "Not a directory", 400),
            NodeExist => (105, "Key already exists", 412),
            KeyIsPreserved => (106, "The prefix of given key is a keyword in etcd", 400),
            RootReadOnly => (107, "Root is read only", 400),
            DirNotEmpty => (108, "Directory not empty", 403),
            ExistingPeerAddr => (109, "Peer address has existed", 400),
            Unauthorized => (110, "The request requires user authentication", 401),
            ValueRequired => (200, "Value is Required in POST form", 400),
            PrevValueRequired => (201, "PrevValue is Required in POST form", 400),
            TtlNaN => (202, "The given TTL in POST form is not a number", 400),
            IndexNaN => (203, "The given index in POST form is not a number", 400),
            ValueOrTtlRequired => (204, "Value or TTL is required in POST form", 400),
            TimeoutNaN => (205, "The given timeout in POST form is not a number", 400),
            NameRequired => (206, "Name is required in POST form", 400),
            IndexOrValueRequired => (207, "Index or value is required", 400),
            IndexValueMutex => (208, "Index and value cannot both be specified", 400),
            InvalidField => (209, "Invalid field", 400),
            InvalidForm => (210, "Invalid POST form", 400),
            RefreshValue => (211, "Value provided on refresh", 400),
            RefreshTtlRequired => (212, "A TTL must be provided on refresh", 400),
            RaftInternal => (300, "Raft Internal Error", 500),
            LeaderElect => (301, "During Leader Election", 500),
            WatcherCleared => (400, "watcher is cleared due to etcd recovery", 400),
            EventIndexCleared => (
                401,
                "The event in requested index is outdated and cleared",
                400,
            ),
            StandbyInternal => (402, "Standby Internal Error", 400),
            InvalidActiveSize => (403, "Invalid active size", 400),
            InvalidRemoveDelay => (404, "Standby remove delay", 400),
            ClientInternal => (500, "Client Internal Error", 400),
        }
    }

    /// The numeric `errorCode` of the JSON body.
    pub fn code(self) -> u16 {
        self.row().0
    }

    /// The fixed `message` text of the JSON body.
    pub fn message(self) -> &'static str {
        self.row().1
    }

    /// The HTTP status etcd answers with (every code not in etcd's status table is 400).
    pub fn http_status(self) -> u16 {
        self.row().2
    }

    /// The code with this number, if it is one of etcd's.
    pub fn from_code(code: u16) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.code() == code)
    }
}

/// A v2 error as sent to clients: code, free-form cause ("" = omitted in JSON) and the etcd index
/// at the time of the failure (the store's current index for store errors, 0 for validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Error {
    pub code: ErrorCode,
    pub cause: String,
    pub index: u64,
}

impl V2Error {
    pub fn new(code: ErrorCode, cause: impl Into<String>, index: u64) -> Self {
        V2Error {
            code,
            cause: cause.into(),
            index,
        }
    }
}

impl fmt::Display for V2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({}) [{}]",
            self.code.code(),
            self.code.message(),
            self.cause,
            self.index
        )
    }
}

impl std::error::Error for V2Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_sorted_and_round_trip() {
        let mut previous = 0;
        for code in ErrorCode::ALL {
            assert!(code.code() > previous, "{code:?} out of order");
            previous = code.code();
            assert_eq!(ErrorCode::from_code(code.code()), Some(code));
            assert!(!code.message().is_empty());
        }
        assert_eq!(ErrorCode::from_code(999), None);
    }

    #[test]
    fn http_statuses_follow_etcds_table() {
        assert_eq!(ErrorCode::KeyNotFound.http_status(), 404);
        assert_eq!(ErrorCode::TestFailed.http_status(), 412);
        assert_eq!(ErrorCode::NodeExist.http_status(), 412);
        assert_eq!(ErrorCode::NotFile.http_status(), 403);
        assert_eq!(ErrorCode::DirNotEmpty.http_status(), 403);
        assert_eq!(ErrorCode::Unauthorized.http_status(), 401);
        assert_eq!(ErrorCode::RaftInternal.http_status(), 500);
        assert_eq!(ErrorCode::LeaderElect.http_status(), 500);
        assert_eq!(ErrorCode::EventIndexCleared.http_status(), 400);
        assert_eq!(ErrorCode::RootReadOnly.http_status(), 400);
        assert_eq!(ErrorCode::NotDir.http_status(), 400);
        let four_hundreds = ErrorCode::ALL
            .iter()
            .filter(|c| c.http_status() == 400)
            .count();
        assert_eq!(four_hundreds, 32 - 8);
    }

    #[test]
    fn display_shows_code_message_cause_and_index() {
        let error = V2Error::new(ErrorCode::KeyNotFound, "/nokey", 6);
        assert_eq!(error.to_string(), "100: Key not found (/nokey) [6]");
    }
}

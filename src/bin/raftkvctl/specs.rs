//! etcdctl v2's flag and command tables: names, kinds, usage texts and defaults, which drive
//! both parsing and the help screens (urfave/cli renders them, so the texts are the
//! interface).

use raftkv::client::args::{CommandSpec, FlagKind, FlagSpec};

pub const VERSION: &str = "3.4.23";
pub const EXIT_BAD_ARGS: i32 = 1;
pub const EXIT_BAD_CONNECTION: i32 = 2;
pub const EXIT_SERVER_ERROR: i32 = 4;
pub const EXIT_CLUSTER_NOT_HEALTHY: i32 = 5;

const fn flag(
    names: &'static [&'static str],
    kind: FlagKind,
    usage: &'static str,
    default_text: &'static str,
) -> FlagSpec {
    FlagSpec {
        names,
        kind,
        usage,
        default_text,
    }
}

pub const B: FlagKind = FlagKind::Bool;
pub const S: FlagKind = FlagKind::Text;
pub const I: FlagKind = FlagKind::Int;
pub const D: FlagKind = FlagKind::Duration;

pub const GLOBAL_FLAGS: &[FlagSpec] = &[
    flag(
        &["debug"],
        B,
        "output cURL commands which can be used to reproduce the request",
        "",
    ),
    flag(
        &["no-sync"],
        B,
        "don't synchronize cluster information before sending request",
        "",
    ),
    flag(
        &["output", "o"],
        S,
        "output response in the given format (`simple`, `extended` or `json`)",
        "simple",
    ),
    flag(
        &["discovery-srv", "D"],
        S,
        "domain name to query for SRV records describing cluster endpoints",
        "",
    ),
    flag(
        &["insecure-discovery"],
        B,
        "accept insecure SRV records describing cluster endpoints",
        "",
    ),
    flag(
        &["peers", "C"],
        S,
        "DEPRECATED - \"--endpoints\" should be used instead",
        "",
    ),
    flag(
        &["endpoint"],
        S,
        "DEPRECATED - \"--endpoints\" should be used instead",
        "",
    ),
    flag(
        &["endpoints"],
        S,
        "a comma-delimited list of machine addresses in the cluster (default: \
         \"http://127.0.0.1:2379,http://127.0.0.1:4001\")",
        "",
    ),
    flag(
        &["cert-file"],
        S,
        "identify HTTPS client using this SSL certificate file",
        "",
    ),
    flag(
        &["key-file"],
        S,
        "identify HTTPS client using this SSL key file",
        "",
    ),
    flag(
        &["ca-file"],
        S,
        "verify certificates of HTTPS-enabled servers using this CA bundle",
        "",
    ),
    flag(
        &["username", "u"],
        S,
        "provide username[:password] and prompt if password is not supplied.",
        "",
    ),
    flag(&["timeout"], D, "connection timeout per request", "2s"),
    flag(
        &["total-timeout"],
        D,
        "timeout for the command execution (except watch)",
        "5s",
    ),
];

pub const TTL: FlagSpec = flag(&["ttl"], I, "key time-to-live in seconds", "0");
pub const SORT: FlagSpec = flag(&["sort"], B, "returns result in sorted order", "");
pub const QUORUM: FlagSpec = flag(&["quorum", "q"], B, "require quorum for get request", "");
pub const AFTER_INDEX: FlagSpec = flag(&["after-index"], I, "watch after the given index", "0");

const fn command(
    name: &'static str,
    usage: &'static str,
    args_usage: &'static str,
    flags: &'static [FlagSpec],
) -> CommandSpec {
    CommandSpec {
        name,
        usage,
        args_usage,
        description: "",
        flags,
    }
}

pub const SET_DESCRIPTION: &str =
    "Set sets the value of a key.\n\n   When <value> begins with '-', \
<value> is interpreted as a flag.\n   Insert '--' for workaround:\n\n   $ set -- <key> <value>";

pub const COMMANDS: &[CommandSpec] = &[
    command(
        "backup",
        "backup an etcd directory",
        " ",
        &[
            flag(&["data-dir"], S, "Path to the etcd data dir", ""),
            flag(&["wal-dir"], S, "Path to the etcd wal dir", ""),
            flag(&["backup-dir"], S, "Path to the backup dir", ""),
            flag(&["backup-wal-dir"], S, "Path to the backup wal dir", ""),
            flag(&["with-v3"], B, "Backup v3 backend data", ""),
        ],
    ),
    command(
        "cluster-health",
        "check the health of the etcd cluster",
        " ",
        &[flag(
            &["forever", "f"],
            B,
            "forever check the health every 10 second until CTRL+C",
            "",
        )],
    ),
    command(
        "mk",
        "make a new key with a given value",
        "<key> <value>",
        &[
            flag(
                &["in-order"],
                B,
                "create in-order key under directory <key>",
                "",
            ),
            TTL,
        ],
    ),
    command("mkdir", "make a new directory", "<key>", &[TTL]),
    command(
        "rm",
        "remove a key or a directory",
        "<key>",
        &[
            flag(
                &["dir"],
                B,
                "removes the key if it is an empty directory or a key-value pair",
                "",
            ),
            flag(
                &["recursive", "r"],
                B,
                "removes the key and all child keys(if it is a directory)",
                "",
            ),
            flag(&["with-value"], S, "previous value", ""),
            flag(&["with-index"], I, "previous index", "0"),
        ],
    ),
    command(
        "rmdir",
        "removes the key if it is an empty directory or a key-value pair",
        "<key>",
        &[],
    ),
    command(
        "get",
        "retrieve the value of a key",
        "<key>",
        &[SORT, QUORUM],
    ),
    command(
        "ls",
        "retrieve a directory",
        "[key]",
        &[
            SORT,
            flag(
                &["recursive", "r"],
                B,
                "returns all key names recursively for the given path",
                "",
            ),
            flag(&["p"], B, "append slash (/) to directories", ""),
            QUORUM,
        ],
    ),
    CommandSpec {
        name: "set",
        usage: "set the value of a key",
        args_usage: "<key> <value>",
        description: SET_DESCRIPTION,
        flags: &[
            TTL,
            flag(&["swap-with-value"], S, "previous value", ""),
            flag(&["swap-with-index"], I, "previous index", "0"),
        ],
    },
    command(
        "setdir",
        "create a new directory or update an existing directory TTL",
        "<key>",
        &[TTL],
    ),
    command(
        "update",
        "update an existing key with a given value",
        "<key> <value>",
        &[TTL],
    ),
    command(
        "updatedir",
        "update an existing directory",
        "<key> <value>",
        &[TTL],
    ),
    command(
        "watch",
        "watch a key for changes",
        "<key>",
        &[
            flag(&["forever", "f"], B, "forever watch a key until CTRL+C", ""),
            AFTER_INDEX,
            flag(
                &["recursive", "r"],
                B,
                "returns all values for key and child keys",
                "",
            ),
        ],
    ),
    command(
        "exec-watch",
        "watch a key for changes and exec an executable",
        "<key> <command> [args...]",
        &[
            AFTER_INDEX,
            flag(
                &["recursive", "r"],
                B,
                "watch all values for key and child keys",
                "",
            ),
        ],
    ),
];

pub const MEMBER_COMMANDS: &[CommandSpec] = &[
    command("list", "enumerate existing cluster members", " ", &[]),
    command(
        "add",
        "add a new member to the etcd cluster",
        "<name> <peerURL>",
        &[],
    ),
    command(
        "remove",
        "remove an existing member from the etcd cluster",
        "<memberID>",
        &[],
    ),
    command(
        "update",
        "update an existing member in the etcd cluster",
        "<memberID> <peerURLs>",
        &[],
    ),
];

pub const ROLES: FlagSpec = flag(
    &["roles"],
    FlagKind::TextList,
    "List of roles to grant or revoke",
    "",
);

pub const USER_COMMANDS: &[CommandSpec] = &[
    command("add", "add a new user for the etcd cluster", "<user>", &[]),
    command("get", "get details for a user", "<user>", &[]),
    command("list", "list all current users", "<user>", &[]),
    command(
        "remove",
        "remove a user for the etcd cluster",
        "<user>",
        &[],
    ),
    command("grant", "grant roles to an etcd user", "<user>", &[ROLES]),
    command(
        "revoke",
        "revoke roles for an etcd user",
        "<user>",
        &[ROLES],
    ),
    command("passwd", "change password for a user", "<user>", &[]),
];

pub const ROLE_COMMANDS: &[CommandSpec] = &[
    command("add", "add a new role for the etcd cluster", "<role> ", &[]),
    command("get", "get details for a role", "<role>", &[]),
    command("list", "list all roles", " ", &[]),
    command(
        "remove",
        "remove a role from the etcd cluster",
        "<role>",
        &[],
    ),
    command(
        "grant",
        "grant path matches to an etcd role",
        "<role>",
        &[
            flag(&["path"], S, "Path granted for the role to access", ""),
            flag(&["read"], B, "Grant read-only access", ""),
            flag(&["write"], B, "Grant write-only access", ""),
            flag(&["readwrite", "rw"], B, "Grant read-write access", ""),
        ],
    ),
    command(
        "revoke",
        "revoke path matches for an etcd role",
        "<role>",
        &[
            flag(&["path"], S, "Path revoked for the role to access", ""),
            flag(&["read"], B, "Revoke read access", ""),
            flag(&["write"], B, "Revoke write access", ""),
            flag(&["readwrite", "rw"], B, "Revoke read-write access", ""),
        ],
    ),
];

pub const AUTH_COMMANDS: &[CommandSpec] = &[
    command("enable", "enable auth access controls", " ", &[]),
    command("disable", "disable auth access controls", " ", &[]),
];

/// A command with sub-commands (`member`, `user`, `role`, `auth`).
pub struct Group {
    pub name: &'static str,
    pub usage: &'static str,
    pub commands: &'static [CommandSpec],
}

pub const GROUPS: &[Group] = &[
    Group {
        name: "member",
        usage: "member add, remove and list subcommands",
        commands: MEMBER_COMMANDS,
    },
    Group {
        name: "user",
        usage: "user add, grant and revoke subcommands",
        commands: USER_COMMANDS,
    },
    Group {
        name: "role",
        usage: "role add, grant and revoke subcommands",
        commands: ROLE_COMMANDS,
    },
    Group {
        name: "auth",
        usage: "overall auth controls",
        commands: AUTH_COMMANDS,
    },
];

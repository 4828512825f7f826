//! `raftkvctl`: a drop-in for `ETCDCTL_API=2 etcdctl` (3.4.23).
//!
//! Same global flags (before the command), command flags, environment variables, stdout,
//! stderr and exit codes as etcdctl v2, so scripts and tutorials written for etcdctl run
//! unchanged against raftkv (or etcd). Exit codes: 0 success, 1 bad arguments or member
//! command failure, 2 cannot reach the cluster during the initial sync, 3 unknown command,
//! 4 server-side key error, 5 cluster not healthy.
//!
//! Not implemented: `backup`, `user`, `role`, `auth`, TLS and DNS SRV discovery; these report
//! that they are unsupported and exit 1.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use raftkv::client::args::{
    command_help, group_help, parse_flags, reorder_args, ArgsError, CommandSpec, FlagKind,
    FlagSpec, Parsed,
};
use raftkv::client::format::{ls_lines, print_response_key, Printed};
use raftkv::client::http::{Deadlines, HttpClient, Request, Url};
use raftkv::client::keys::{go_quote, Action, ClientConfig, ClientError, ClusterClient};
use raftkv::client::members;

const VERSION: &str = "3.4.23";
const EXIT_BAD_ARGS: i32 = 1;
const EXIT_BAD_CONNECTION: i32 = 2;
const EXIT_SERVER_ERROR: i32 = 4;
const EXIT_CLUSTER_NOT_HEALTHY: i32 = 5;

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

const B: FlagKind = FlagKind::Bool;
const S: FlagKind = FlagKind::Text;
const I: FlagKind = FlagKind::Int;
const D: FlagKind = FlagKind::Duration;

const GLOBAL_FLAGS: &[FlagSpec] = &[
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

const TTL: FlagSpec = flag(&["ttl"], I, "key time-to-live in seconds", "0");
const SORT: FlagSpec = flag(&["sort"], B, "returns result in sorted order", "");
const QUORUM: FlagSpec = flag(&["quorum", "q"], B, "require quorum for get request", "");
const AFTER_INDEX: FlagSpec = flag(&["after-index"], I, "watch after the given index", "0");

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

const SET_DESCRIPTION: &str = "Set sets the value of a key.\n\n   When <value> begins with '-', \
<value> is interpreted as a flag.\n   Insert '--' for workaround:\n\n   $ set -- <key> <value>";

const COMMANDS: &[CommandSpec] = &[
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

const GROUPS: &[(&str, &str)] = &[
    ("member", "member add, remove and list subcommands"),
    ("user", "user add, grant and revoke subcommands"),
    ("role", "role add, grant and revoke subcommands"),
    ("auth", "overall auth controls"),
];

const MEMBER_COMMANDS: &[CommandSpec] = &[
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

/// Flushes stdout and exits.
fn exit(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn err(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn show(printed: Printed) {
    out(&printed.stdout);
    err(&printed.stderr);
}

fn app_help() -> String {
    let mut commands: Vec<(&str, &str)> = COMMANDS[..COMMANDS.len()]
        .iter()
        .map(|c| (c.name, c.usage))
        .collect();
    commands.extend_from_slice(GROUPS);
    commands.push((
        "help, h",
        "Shows a list of commands or help for one command",
    ));
    group_help(
        "etcdctl",
        "A simple command line client for etcd.",
        "etcdctl [global options] command [command options] [arguments...]",
        Some(VERSION),
        &commands,
        GLOBAL_FLAGS,
        "GLOBAL OPTIONS",
    )
}

fn member_help() -> String {
    let commands: Vec<(&str, &str)> = MEMBER_COMMANDS.iter().map(|c| (c.name, c.usage)).collect();
    group_help(
        "etcdctl member",
        "member add, remove and list subcommands",
        "etcdctl member command [command options] [arguments...]",
        None,
        &commands,
        &[],
        "OPTIONS",
    )
}

/// Global options and the state every command needs.
struct Ctl {
    globals: Parsed,
    /// Command flags and positional arguments.
    command: Parsed,
}

impl Ctl {
    fn output(&self) -> String {
        self.globals.text("output").unwrap_or("simple").to_string()
    }

    fn debug(&self) -> bool {
        self.globals.bool("debug")
    }

    fn total_timeout(&self) -> Duration {
        self.globals
            .duration("total-timeout")
            .unwrap_or(Duration::from_secs(5))
    }

    fn total_deadline(&self) -> Option<Instant> {
        Some(Instant::now() + self.total_timeout())
    }

    fn args(&self) -> &[String] {
        &self.command.args
    }

    /// etcdctl's `handleError`: `Error:  <err>` plus cluster detail lines, then exit.
    fn fail(&self, code: i32, error: &dyn std::fmt::Display, detail: Option<String>) -> ! {
        err(&format!("Error:  {}\n", error));
        if let Some(detail) = detail {
            err(&format!("{}\n", detail));
        }
        exit(code)
    }

    fn fail_client(&self, code: i32, error: &ClientError) -> ! {
        self.fail(code, error, error.detail())
    }

    fn endpoints(&self) -> Vec<String> {
        let sources = [
            self.globals.text("endpoints").map(str::to_string),
            std::env::var("ETCDCTL_ENDPOINTS").ok(),
            self.globals.text("endpoint").map(str::to_string),
            std::env::var("ETCDCTL_ENDPOINT").ok(),
            self.globals.text("peers").map(str::to_string),
            std::env::var("ETCDCTL_PEERS").ok(),
        ];
        let chosen = sources
            .into_iter()
            .flatten()
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| "http://127.0.0.1:2379,http://127.0.0.1:4001".to_string());
        chosen.split(',').map(str::to_string).collect()
    }

    fn credentials(&self) -> Option<(String, String)> {
        let flag = self
            .globals
            .text("username")
            .map(str::to_string)
            .filter(|s| !s.is_empty())
            .or_else(|| {
                std::env::var("ETCDCTL_USERNAME")
                    .ok()
                    .filter(|s| !s.is_empty())
            })?;
        match flag.split_once(':') {
            Some((user, password)) => Some((user.to_string(), password.to_string())),
            None => {
                err("Password: ");
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                Some((flag, line.trim_end_matches(['\r', '\n']).to_string()))
            }
        }
    }

    fn new_client(&self) -> ClusterClient {
        let unsupported = ["discovery-srv", "cert-file", "key-file", "ca-file"];
        for name in unsupported {
            if self.globals.text(name).is_some_and(|v| !v.is_empty()) {
                err(&format!("--{} is not supported by raftkvctl\n", name));
                exit(EXIT_BAD_ARGS);
            }
        }
        let mut endpoints = self.endpoints();
        for endpoint in endpoints.iter_mut() {
            match Url::parse(endpoint) {
                Ok(mut url) => {
                    if url.scheme.is_empty() {
                        url.scheme = "http".to_string();
                    }
                    *endpoint = url.to_string();
                }
                Err(error) => {
                    err(&format!("{}\n", error));
                    exit(EXIT_BAD_ARGS);
                }
            }
        }
        let total = self.total_timeout();
        let dial_timeout = if !total.is_zero() && total < Duration::from_secs(30) {
            total
        } else {
            Duration::from_secs(30)
        };
        let config = ClientConfig {
            header_timeout: self
                .globals
                .duration("timeout")
                .unwrap_or(Duration::from_secs(2)),
            dial_timeout,
            debug: false,
            credentials: self.credentials(),
        };
        match ClusterClient::new(&endpoints, config) {
            Ok(client) => client,
            Err(error) => {
                err(&format!("{}\n", error));
                exit(EXIT_BAD_ARGS);
            }
        }
    }

    /// etcdctl's `mustNewClient`: build, then sync the endpoint list unless `--no-sync`.
    fn client(&self) -> ClusterClient {
        let mut client = self.new_client();
        let debug = self.debug();
        client.set_debug(debug);
        if !self.globals.bool("no-sync") {
            if debug {
                err(&format!(
                    "start to sync cluster using endpoints({})\n",
                    client.endpoints().join(",")
                ));
            }
            match client.sync(self.total_deadline()) {
                Ok(()) => {}
                Err(ClientError::NoEndpoints) => {
                    err("etcd cluster has no published client endpoints.\n");
                    err(&format!(
                        "Try '--no-sync' if you want to access non-published client \
                         endpoints({}).\n",
                        client.endpoints().join(",")
                    ));
                    self.fail_client(EXIT_SERVER_ERROR, &ClientError::NoEndpoints);
                }
                Err(error) if error.is_connection_error() => {
                    self.fail_client(EXIT_BAD_CONNECTION, &error)
                }
                Err(_) => {}
            }
            if debug {
                err(&format!(
                    "got endpoints({}) after sync\n",
                    client.endpoints().join(",")
                ));
            }
        }
        if debug {
            err(&format!(
                "Cluster-Endpoints: {}\n",
                client.endpoints().join(", ")
            ));
        }
        client
    }

    /// etcdctl's `mustNewClientNoSync`.
    fn client_no_sync(&self) -> ClusterClient {
        let mut client = self.new_client();
        if self.debug() {
            err(&format!(
                "Cluster-Endpoints: {}\n",
                client.endpoints().join(", ")
            ));
            client.set_debug(true);
        }
        client
    }

    fn key_or_fail(&self) -> String {
        match self.args().first() {
            Some(key) => key.clone(),
            None => self.fail(EXIT_BAD_ARGS, &"key required", None),
        }
    }

    /// The value from the second argument or, when absent, all of stdin.
    fn value_or_fail(&self) -> String {
        if let Some(value) = self.args().get(1) {
            return value.clone();
        }
        let mut bytes = Vec::new();
        match std::io::stdin().read_to_end(&mut bytes) {
            Ok(_) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).to_string(),
            _ => self.fail(EXIT_BAD_ARGS, &"value required", None),
        }
    }

    fn ttl_seconds(&self) -> u64 {
        self.command.int("ttl").max(0) as u64
    }

    fn keys_or_fail(
        &self,
        client: &mut ClusterClient,
        action: &Action,
    ) -> raftkv::client::keys::KeysResponse {
        match client.keys(action, self.total_deadline()) {
            Ok(response) => response,
            Err(error) => self.fail_client(EXIT_SERVER_ERROR, &error),
        }
    }
}

fn set_action(key: String, value: String, prev_exist: Option<bool>, ttl: u64, dir: bool) -> Action {
    Action::Set {
        key,
        value,
        prev_value: String::new(),
        prev_index: 0,
        prev_exist,
        ttl_seconds: ttl,
        dir,
    }
}

fn cmd_get(ctl: &Ctl) {
    let mut client = ctl.client();
    let key = ctl.key_or_fail();
    let action = Action::Get {
        key,
        recursive: false,
        sorted: ctl.command.bool("sort"),
        quorum: ctl.command.bool("quorum"),
    };
    let response = ctl.keys_or_fail(&mut client, &action);
    let node = response.node.clone().unwrap_or_default();
    if node.dir {
        err(&format!("{}: is a directory\n", node.key));
        exit(EXIT_BAD_ARGS);
    }
    show(print_response_key(&response, &ctl.output()));
}

fn cmd_ls(ctl: &Ctl) {
    let mut client = ctl.client();
    let key = ctl
        .args()
        .first()
        .cloned()
        .unwrap_or_else(|| "/".to_string());
    let action = Action::Get {
        key,
        recursive: ctl.command.bool("recursive"),
        sorted: ctl.command.bool("sort"),
        quorum: ctl.command.bool("quorum"),
    };
    let response = ctl.keys_or_fail(&mut client, &action);
    if ctl.output() == "simple" {
        out(&ls_lines(&response, ctl.command.bool("p")));
    } else {
        show(print_response_key(&response, &ctl.output()));
    }
}

fn cmd_set(ctl: &Ctl) {
    let mut client = ctl.client();
    let key = ctl.key_or_fail();
    let value = ctl.value_or_fail();
    let action = Action::Set {
        key,
        value,
        prev_value: ctl
            .command
            .text("swap-with-value")
            .unwrap_or("")
            .to_string(),
        prev_index: ctl.command.int("swap-with-index") as u64,
        prev_exist: None,
        ttl_seconds: ctl.ttl_seconds(),
        dir: false,
    };
    let response = ctl.keys_or_fail(&mut client, &action);
    show(print_response_key(&response, &ctl.output()));
}

fn cmd_mk(ctl: &Ctl) {
    let mut client = ctl.client();
    let key = ctl.key_or_fail();
    let value = ctl.value_or_fail();
    let action = if ctl.command.bool("in-order") {
        Action::CreateInOrder {
            dir: key,
            value,
            ttl_seconds: ctl.ttl_seconds(),
        }
    } else {
        set_action(key, value, Some(false), ctl.ttl_seconds(), false)
    };
    let response = ctl.keys_or_fail(&mut client, &action);
    show(print_response_key(&response, &ctl.output()));
}

fn cmd_update(ctl: &Ctl) {
    let mut client = ctl.client();
    let key = ctl.key_or_fail();
    let value = ctl.value_or_fail();
    let action = set_action(key, value, Some(true), ctl.ttl_seconds(), false);
    let response = ctl.keys_or_fail(&mut client, &action);
    show(print_response_key(&response, &ctl.output()));
}

/// `mkdir` (prevExist=false), `setdir` (no prevExist), `updatedir` (prevExist=true).
fn cmd_dir(ctl: &Ctl, prev_exist: Option<bool>) {
    let mut client = ctl.client();
    let key = ctl.key_or_fail();
    let action = set_action(key, String::new(), prev_exist, ctl.ttl_seconds(), true);
    let response = ctl.keys_or_fail(&mut client, &action);
    if ctl.output() != "simple" {
        show(print_response_key(&response, &ctl.output()));
    }
}

fn cmd_rm(ctl: &Ctl, rmdir: bool) {
    let mut client = ctl.client();
    let key = ctl.key_or_fail();
    let action = if rmdir {
        Action::Delete {
            key,
            prev_value: String::new(),
            prev_index: 0,
            dir: true,
            recursive: false,
        }
    } else {
        Action::Delete {
            key,
            prev_value: ctl.command.text("with-value").unwrap_or("").to_string(),
            prev_index: ctl.command.int("with-index") as u64,
            dir: ctl.command.bool("dir"),
            recursive: ctl.command.bool("recursive"),
        }
    };
    let response = ctl.keys_or_fail(&mut client, &action);
    let is_dir = response.node.as_ref().is_some_and(|n| n.dir);
    if !is_dir || ctl.output() != "simple" {
        show(print_response_key(&response, &ctl.output()));
    }
}

extern "C" fn exit_on_interrupt(_signal: libc::c_int) {
    // SAFETY: `_exit` is async-signal-safe; etcdctl exits 0 on Ctrl-C during watches.
    unsafe { libc::_exit(0) }
}

fn exit_zero_on_interrupt() {
    let handler = exit_on_interrupt as extern "C" fn(libc::c_int);
    // SAFETY: installs a handler that only calls `_exit`.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

fn first_wait_index(ctl: &Ctl) -> u64 {
    let after = ctl.command.int("after-index") as u64;
    if after > 0 {
        after.wrapping_add(1)
    } else {
        0
    }
}

fn cmd_watch(ctl: &Ctl) {
    let mut client = ctl.client();
    let key = ctl.key_or_fail();
    let recursive = ctl.command.bool("recursive");
    let forever = ctl.command.bool("forever");
    let mut wait_index = first_wait_index(ctl);
    exit_zero_on_interrupt();
    loop {
        let event = match client.next_event(&key, recursive, &mut wait_index) {
            Ok(event) => event,
            Err(error) => ctl.fail_client(EXIT_SERVER_ERROR, &error),
        };
        let node = event.node.clone().unwrap_or_default();
        if node.dir {
            continue;
        }
        if recursive {
            out(&format!("[{}] {}\n", event.action, node.key));
        }
        show(print_response_key(&event, &ctl.output()));
        if !forever {
            return;
        }
    }
}

fn cmd_exec_watch(ctl: &Ctl) {
    let mut client = ctl.client();
    let args = ctl.args();
    if args.len() < 2 {
        ctl.fail(EXIT_BAD_ARGS, &"key and command to exec required", None);
    }
    let found_separator = args.iter().skip(1).any(|a| a == "--");
    let (key, command_args) = if found_separator {
        (args[0].clone(), args[2..].to_vec())
    } else {
        (
            args[args.len() - 1].clone(),
            args[..args.len() - 1].to_vec(),
        )
    };
    let recursive = ctl.command.bool("recursive");
    let mut wait_index = first_wait_index(ctl);
    exit_zero_on_interrupt();
    loop {
        let event = match client.next_event(&key, recursive, &mut wait_index) {
            Ok(event) => event,
            Err(error) => ctl.fail_client(EXIT_SERVER_ERROR, &error),
        };
        let node = event.node.clone().unwrap_or_default();
        if node.dir {
            err(&format!("Ignored dir {} change\n", node.key));
            continue;
        }
        let Some(program) = command_args.first() else {
            err("exec: no command");
            exit(EXIT_BAD_ARGS);
        };
        let spawned = Command::new(program)
            .args(&command_args[1..])
            .env("ETCD_WATCH_ACTION", &event.action)
            .env("ETCD_WATCH_MODIFIED_INDEX", node.modified_index.to_string())
            .env("ETCD_WATCH_KEY", &node.key)
            .env("ETCD_WATCH_VALUE", &node.value)
            .stdin(Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => {
                std::thread::spawn(move || {
                    let _ = child.wait();
                });
            }
            Err(error) => {
                if error.kind() == std::io::ErrorKind::NotFound && !program.contains('/') {
                    err(&format!(
                        "exec: {}: executable file not found in $PATH",
                        go_quote(program)
                    ));
                } else {
                    err(&format!(
                        "fork/exec {}: {}",
                        program,
                        lower_os_error(&error)
                    ));
                }
                exit(EXIT_BAD_ARGS);
            }
        }
    }
}

fn lower_os_error(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = text.split(" (os error").next().unwrap_or("").to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

fn member_fail(message: String) -> ! {
    err(&message);
    exit(EXIT_BAD_ARGS)
}

fn cmd_member_list(ctl: &Ctl) {
    if !ctl.args().is_empty() {
        member_fail("No arguments accepted\n".into());
    }
    let mut client = ctl.client();
    let deadline = ctl.total_deadline();
    let list =
        members::list(&mut client, deadline).unwrap_or_else(|e| member_fail(format!("{}\n", e)));
    let leader = members::leader(&mut client, deadline)
        .unwrap_or_else(|e| member_fail(format!("Failed to get leader:  {}\n", e)));
    let mut text = String::new();
    for member in list {
        if member.name.is_empty() {
            text.push_str(&format!(
                "{}[unstarted]: peerURLs={}\n",
                member.id,
                member.peer_urls.join(",")
            ));
        } else {
            text.push_str(&format!(
                "{}: name={} peerURLs={} clientURLs={} isLeader={}\n",
                member.id,
                member.name,
                member.peer_urls.join(","),
                member.client_urls.join(","),
                member.id == leader.id
            ));
        }
    }
    out(&text);
}

fn cmd_member_add(ctl: &Ctl) {
    if ctl.args().len() != 2 {
        member_fail("Provide a name and a single member peerURL\n".into());
    }
    let mut client = ctl.client();
    let deadline = ctl.total_deadline();
    let name = &ctl.args()[0];
    let added = members::add(&mut client, &ctl.args()[1], deadline)
        .unwrap_or_else(|e| member_fail(format!("{}\n", e)));
    out(&format!(
        "Added member named {} with ID {} to cluster\n",
        name, added.id
    ));
    let list =
        members::list(&mut client, deadline).unwrap_or_else(|e| member_fail(format!("{}\n", e)));
    let mut conf = Vec::new();
    for member in &list {
        for url in &member.peer_urls {
            let member_name = if member.id == added.id {
                name
            } else {
                &member.name
            };
            conf.push(format!("{}={}", member_name, url));
        }
    }
    out(&format!(
        "\nETCD_NAME={}\nETCD_INITIAL_CLUSTER={}\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
        go_quote(name),
        go_quote(&conf.join(","))
    ));
}

fn cmd_member_remove(ctl: &Ctl) {
    if ctl.args().len() != 1 {
        member_fail("Provide a single member ID\n".into());
    }
    let removal_id = &ctl.args()[0];
    let mut client = ctl.client();
    let deadline = ctl.total_deadline();
    let list = members::list(&mut client, deadline).unwrap_or_else(|e| {
        member_fail(format!(
            "Error while verifying ID against known members: {}\n",
            e
        ))
    });
    let mut found = false;
    for member in &list {
        if &member.id == removal_id {
            found = true;
        }
        if &member.name == removal_id {
            err(&format!(
                "Found a member named {}; if this is correct, please use its ID, eg:\n\tetcdctl \
                 member remove {}\n",
                member.name, member.id
            ));
            err(
                "For more details, read the documentation at https://github.com/etcd-io/etcd/\
                 blob/master/Documentation/runtime-configuration.md#remove-a-member\n\n",
            );
        }
    }
    if !found {
        member_fail(format!(
            "Couldn't find a member in the cluster with an ID of {}.\n",
            removal_id
        ));
    }
    if let Err(error) = members::remove(&mut client, removal_id, deadline) {
        member_fail(format!(
            "Received an error trying to remove member {}: {}",
            removal_id, error
        ));
    }
    out(&format!("Removed member {} from cluster\n", removal_id));
}

fn cmd_member_update(ctl: &Ctl) {
    if ctl.args().len() != 2 {
        member_fail(
            "Provide an ID and a list of comma separated peerURL (0xabcd \
             http://example.com,http://example1.com)\n"
                .into(),
        );
    }
    let mut client = ctl.client();
    let id = &ctl.args()[0];
    let urls: Vec<String> = ctl.args()[1].split(',').map(str::to_string).collect();
    if let Err(error) = members::update(&mut client, id, &urls, ctl.total_deadline()) {
        member_fail(format!("{}\n", error));
    }
    out(&format!("Updated member with ID {} in cluster\n", id));
}

/// One member's `/health` verdict, or the text of why it could not be read.
fn check_health(http: &mut HttpClient, url: &str) -> Result<bool, String> {
    let target = format!("{}/health", url);
    let parsed = Url::parse(&target).map_err(|e| e.to_string())?;
    let request = Request {
        method: "GET".into(),
        url: parsed,
        headers: vec![],
        body: None,
    };
    let response = http
        .send_following_redirects(&request, Deadlines::default())
        .map_err(|e| format!("Get {}: {}", go_quote(&target), e))?;
    let value: serde_json::Value = serde_json::from_slice(&response.body).map_err(|e| {
        if response.body.is_empty() || e.is_eof() {
            "unexpected end of JSON input".to_string()
        } else {
            e.to_string()
        }
    })?;
    let health = value
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("health")))
        .map(|(_, v)| v.clone());
    match health {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::String(text)) => Ok(text == "true"),
        Some(serde_json::Value::Bool(flag)) => Ok(flag),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go struct field .Health of type bool",
            json_kind(&other)
        )),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Number(_) => "number",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
        _ => "value",
    }
}

fn cmd_cluster_health(ctl: &Ctl) {
    let forever = ctl.command.bool("forever");
    if forever {
        exit_zero_on_interrupt();
    }
    let mut client = ctl.client_no_sync();
    let list = match members::list(&mut client, None) {
        Ok(list) => list,
        Err(error) => {
            out("cluster may be unhealthy: failed to list members\n");
            ctl.fail_client(EXIT_SERVER_ERROR, &error);
        }
    };
    let total = ctl.total_timeout();
    let dial = if !total.is_zero() && total < Duration::from_secs(30) {
        total
    } else {
        Duration::from_secs(30)
    };
    let mut http = HttpClient::new(Some(dial));
    loop {
        let mut healthy = 0;
        for member in &list {
            if member.client_urls.is_empty() {
                out(&format!(
                    "member {} is unreachable: no available published client urls\n",
                    member.id
                ));
                continue;
            }
            let mut checked = false;
            for url in &member.client_urls {
                match check_health(&mut http, url) {
                    Err(reason) => out(&format!(
                        "failed to check the health of member {} on {}: {}\n",
                        member.id, url, reason
                    )),
                    Ok(is_healthy) => {
                        checked = true;
                        if is_healthy {
                            out(&format!(
                                "member {} is healthy: got healthy result from {}\n",
                                member.id, url
                            ));
                            healthy += 1;
                        } else {
                            out(&format!(
                                "member {} is unhealthy: got unhealthy result from {}\n",
                                member.id, url
                            ));
                        }
                        break;
                    }
                }
            }
            if !checked {
                out(&format!(
                    "member {} is unreachable: [{}] are all unreachable\n",
                    member.id,
                    member.client_urls.join(" ")
                ));
            }
        }
        if healthy == list.len() {
            out("cluster is healthy\n");
        } else if healthy == 0 {
            out("cluster is unavailable\n");
        } else {
            out("cluster is degraded\n");
        }
        if !forever {
            exit(if healthy == list.len() {
                0
            } else {
                EXIT_CLUSTER_NOT_HEALTHY
            });
        }
        out("\nnext check after 10 second...\n\n");
        std::thread::sleep(Duration::from_secs(10));
    }
}

/// Parses a leaf command's flags, handling `-h` and `Incorrect Usage` like urfave/cli.
fn parse_command(parent: &str, spec: &CommandSpec, args: &[String]) -> Parsed {
    let reordered = reorder_args(spec.flags, args);
    match parse_flags(spec.flags, &reordered) {
        Ok(parsed) => parsed,
        Err(ArgsError::Help) => {
            out(&command_help(parent, spec));
            exit(0);
        }
        Err(error) => {
            out(&format!(
                "Incorrect Usage: {}\n\n{}",
                error,
                command_help(parent, spec)
            ));
            err(&format!("{}\n", error));
            exit(EXIT_BAD_ARGS);
        }
    }
}

fn unsupported(name: &str) -> ! {
    err(&format!(
        "Error:  '{}' is not supported by raftkvctl\n",
        name
    ));
    exit(EXIT_BAD_ARGS)
}

fn run_member(globals: Parsed, args: &[String]) {
    let Some(sub) = args.first() else {
        out(&member_help());
        exit(0);
    };
    if sub == "help" || sub == "h" || sub == "-h" || sub == "--help" {
        match args
            .get(1)
            .and_then(|n| MEMBER_COMMANDS.iter().find(|c| c.name == n))
        {
            Some(spec) => out(&command_help("etcdctl member", spec)),
            None => out(&member_help()),
        }
        exit(0);
    }
    let Some(spec) = MEMBER_COMMANDS.iter().find(|c| c.name == sub) else {
        err(&format!("No help topic for '{}'\n", sub));
        exit(3);
    };
    let command = parse_command("etcdctl member", spec, &args[1..]);
    let ctl = Ctl { globals, command };
    match spec.name {
        "list" => cmd_member_list(&ctl),
        "add" => cmd_member_add(&ctl),
        "remove" => cmd_member_remove(&ctl),
        _ => cmd_member_update(&ctl),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut global_specs = GLOBAL_FLAGS.to_vec();
    global_specs.push(FlagSpec {
        names: &["version", "v"],
        kind: FlagKind::Bool,
        usage: "print the version",
        default_text: "",
    });
    let globals = match parse_flags(&global_specs, &args) {
        Ok(parsed) => parsed,
        Err(ArgsError::Help) => {
            out(&app_help());
            exit(0);
        }
        Err(error) => {
            out(&format!("Incorrect Usage. {}\n\n{}", error, app_help()));
            err(&format!("{}\n", error));
            exit(EXIT_BAD_ARGS);
        }
    };
    if globals.bool("version") {
        out(&format!("etcdctl version: {}\nAPI version: 2\n", VERSION));
        exit(0);
    }
    let rest = globals.args.clone();
    let Some(name) = rest.first() else {
        out(&app_help());
        exit(0);
    };
    if name == "help" || name == "h" {
        match rest.get(1) {
            Some(topic) => match COMMANDS.iter().find(|c| c.name == topic) {
                Some(spec) => out(&command_help("etcdctl", spec)),
                None => match GROUPS.iter().find(|(group, _)| group == topic) {
                    Some((group, usage)) => out(&command_help(
                        "etcdctl",
                        &CommandSpec {
                            name: group,
                            usage,
                            args_usage: "",
                            description: "",
                            flags: &[],
                        },
                    )),
                    None => {
                        err(&format!("No help topic for '{}'\n", topic));
                        exit(3);
                    }
                },
            },
            None => out(&app_help()),
        }
        exit(0);
    }
    if name == "member" {
        run_member(globals, &rest[1..]);
        exit(0);
    }
    if matches!(name.as_str(), "user" | "role" | "auth" | "backup") {
        unsupported(name);
    }
    let Some(spec) = COMMANDS.iter().find(|c| c.name == name) else {
        err(&format!("No help topic for '{}'\n", name));
        exit(3);
    };
    let command = parse_command("etcdctl", spec, &rest[1..]);
    let ctl = Ctl { globals, command };
    match spec.name {
        "cluster-health" => cmd_cluster_health(&ctl),
        "mk" => cmd_mk(&ctl),
        "mkdir" => cmd_dir(&ctl, Some(false)),
        "setdir" => cmd_dir(&ctl, None),
        "updatedir" => cmd_dir(&ctl, Some(true)),
        "rm" => cmd_rm(&ctl, false),
        "rmdir" => cmd_rm(&ctl, true),
        "get" => cmd_get(&ctl),
        "ls" => cmd_ls(&ctl),
        "set" => cmd_set(&ctl),
        "update" => cmd_update(&ctl),
        "watch" => cmd_watch(&ctl),
        "exec-watch" => cmd_exec_watch(&ctl),
        other => unsupported(other),
    }
    exit(0);
}

//! Differential test: `raftkvctl` against the real `ETCDCTL_API=2 etcdctl`.
//!
//! One server is started (etcd 3.4 with `--enable-v2`, or raftkv when
//! `RAFTKV_CTL_TARGET=raftkv`), then every case (a short command sequence) runs twice against
//! it: first with etcdctl, then with raftkvctl, each time under the same fresh key prefix
//! (the prefix is deleted between runs). Stdout, stderr and exit codes must be identical after
//! indexes are made relative to the store index at the start of the run (`Index: 12` and
//! `[12]` become `#3` when the run started at index 9), expiration timestamps are blanked, and
//! the output of unsorted listings is sorted.
//!
//! Skips with a printed `skipped: etcd not found` when etcd or etcdctl is missing.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use raftkv::client::http::{encode_form, Deadlines, HttpClient, Request, Response, Url};

const ETCD: &str = "/usr/bin/etcd";
const ETCDCTL: &str = "/usr/bin/etcdctl";

/// A server process killed (by PID) and cleaned up on drop.
struct Server {
    child: Child,
    client_url: String,
    data_dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_request(method: &str, url: &str, form: Option<&[(&str, String)]>) -> Option<Response> {
    let mut client = HttpClient::new(Some(Duration::from_secs(2)));
    let deadline = Some(Instant::now() + Duration::from_secs(5));
    let mut headers = vec![];
    let body = form.map(|pairs| {
        headers.push((
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ));
        encode_form(pairs).into_bytes()
    });
    let request = Request {
        method: method.to_string(),
        url: Url::parse(url).ok()?,
        headers,
        body,
    };
    client
        .send_following_redirects(
            &request,
            Deadlines {
                headers: deadline,
                body: deadline,
            },
        )
        .ok()
}

fn start_server(target: &str) -> Server {
    let client_port = free_port();
    let peer_port = free_port();
    let data_dir = std::env::temp_dir().join(format!(
        "raftkv-ctl-test-{}-{}",
        std::process::id(),
        client_port
    ));
    let _ = std::fs::remove_dir_all(&data_dir);
    let client_url = format!("http://127.0.0.1:{}", client_port);
    let peer_url = format!("http://127.0.0.1:{}", peer_port);
    let mut command = if target == "raftkv" {
        Command::new(env!("CARGO_BIN_EXE_raftkv"))
    } else {
        let mut etcd = Command::new(ETCD);
        etcd.arg("--enable-v2");
        etcd
    };
    command
        .arg("--name")
        .arg("n1")
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--listen-client-urls")
        .arg(&client_url)
        .arg("--advertise-client-urls")
        .arg(&client_url)
        .arg("--listen-peer-urls")
        .arg(&peer_url)
        .arg("--initial-advertise-peer-urls")
        .arg(&peer_url)
        .arg("--initial-cluster")
        .arg(format!("n1={}", peer_url))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = command.spawn().expect("start server");
    let server = Server {
        child,
        client_url,
        data_dir,
    };
    let started = Instant::now();
    loop {
        let ready = http_request("GET", &format!("{}/v2/keys/", server.client_url), None)
            .map(|response| response.status == 200)
            .unwrap_or(false);
        if ready {
            return server;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} did not serve /v2/keys within 30 s",
            target
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// One step of a case. Arguments may use `{P}` (the case's key prefix), `{EP}` (the server's
/// client URL) and `{I+n}` (the store index at the start of the run plus n).
#[derive(Clone)]
enum Step {
    /// Run the client; compare its output.
    Run {
        args: Vec<&'static str>,
        stdin: &'static str,
        env: Vec<(&'static str, &'static str)>,
        /// Sort stdout lines before comparing (server listing order is a Go map's order).
        sort_stdout: bool,
    },
    /// Start the client in the background (a watch).
    Spawn {
        args: Vec<&'static str>,
    },
    /// Write a key over HTTP (not through either client).
    Put {
        key: &'static str,
        value: &'static str,
    },
    /// Create a directory over HTTP.
    PutDir {
        key: &'static str,
    },
    Sleep {
        millis: u64,
    },
    /// Wait (bounded) for the background client to exit; compare its output.
    Join,
    /// SIGINT the background client, then wait for it; compare its output.
    Interrupt,
}

fn run(args: &[&'static str]) -> Step {
    Step::Run {
        args: args.to_vec(),
        stdin: "",
        env: vec![],
        sort_stdout: false,
    }
}

fn run_stdin(args: &[&'static str], stdin: &'static str) -> Step {
    Step::Run {
        args: args.to_vec(),
        stdin,
        env: vec![],
        sort_stdout: false,
    }
}

fn run_env(args: &[&'static str], env: &[(&'static str, &'static str)]) -> Step {
    Step::Run {
        args: args.to_vec(),
        stdin: "",
        env: env.to_vec(),
        sort_stdout: false,
    }
}

fn run_unsorted(args: &[&'static str]) -> Step {
    Step::Run {
        args: args.to_vec(),
        stdin: "",
        env: vec![],
        sort_stdout: true,
    }
}

fn spawn(args: &[&'static str]) -> Step {
    Step::Spawn {
        args: args.to_vec(),
    }
}

/// Every case: a name and its steps. Most commands target `--endpoints {EP}`.
fn cases() -> Vec<(&'static str, Vec<Step>)> {
    use Step::*;
    let ep = "--endpoints";
    vec![
        ("tutorial set/get", vec![
            run(&[ep, "{EP}", "set", "{P}/message1", "Book1"]),
            run(&[ep, "{EP}", "get", "{P}/message1"]),
            run(&[ep, "{EP}", "set", "{P}/message1", "Book2"]),
            run(&[ep, "{EP}", "-o", "extended", "get", "{P}/message1"]),
        ]),
        ("value from stdin keeps its newline", vec![
            run_stdin(&[ep, "{EP}", "set", "{P}/s"], "hi\n"),
            run(&[ep, "{EP}", "get", "{P}/s"]),
            run_stdin(&[ep, "{EP}", "mk", "{P}/m"], "from stdin"),
            run_stdin(&[ep, "{EP}", "update", "{P}/m"], "again\n"),
        ]),
        ("dash value after --", vec![
            run(&[ep, "{EP}", "set", "--", "{P}/d", "-value"]),
            run(&[ep, "{EP}", "get", "{P}/d"]),
        ]),
        ("flags after positionals are reordered", vec![
            run(&[ep, "{EP}", "set", "{P}/r", "v", "--ttl", "100"]),
            run(&[ep, "{EP}", "-o", "extended", "get", "{P}/r"]),
        ]),
        ("ttl in extended and json", vec![
            run(&[ep, "{EP}", "-o", "extended", "set", "--ttl", "100", "{P}/t", "v"]),
            run(&[ep, "{EP}", "-o", "json", "get", "{P}/t"]),
            run(&[ep, "{EP}", "-o", "json", "update", "{P}/t", "w"]),
        ]),
        ("swap with value", vec![
            run(&[ep, "{EP}", "set", "{P}/c", "one"]),
            run(&[ep, "{EP}", "set", "--swap-with-value", "one", "{P}/c", "two"]),
            run(&[ep, "{EP}", "set", "--swap-with-value", "wrong", "{P}/c", "three"]),
            run(&[ep, "{EP}", "-o", "json", "get", "{P}/c"]),
        ]),
        ("swap with index", vec![
            run(&[ep, "{EP}", "set", "{P}/c", "one"]),
            run(&[ep, "{EP}", "set", "--swap-with-index", "{I+1}", "{P}/c", "two"]),
            run(&[ep, "{EP}", "set", "--swap-with-index", "{I+1}", "{P}/c", "three"]),
        ]),
        ("mk and key exists", vec![
            run(&[ep, "{EP}", "mk", "{P}/k", "v"]),
            run(&[ep, "{EP}", "mk", "{P}/k", "v"]),
            run(&[ep, "{EP}", "-o", "json", "mk", "--ttl", "100", "{P}/k2", "v"]),
        ]),
        ("mk --in-order", vec![
            run(&[ep, "{EP}", "mk", "--in-order", "{P}/q", "job1"]),
            run(&[ep, "{EP}", "-o", "extended", "mk", "--in-order", "{P}/q", "job2"]),
            run(&[ep, "{EP}", "-o", "json", "mk", "--in-order", "{P}/q", "job3"]),
            run(&[ep, "{EP}", "ls", "--sort", "{P}/q"]),
        ]),
        ("mkdir", vec![
            run(&[ep, "{EP}", "mkdir", "{P}/dir"]),
            run(&[ep, "{EP}", "mkdir", "{P}/dir"]),
            run(&[ep, "{EP}", "-o", "json", "mkdir", "{P}/dir2"]),
            run(&[ep, "{EP}", "-o", "extended", "mkdir", "--ttl", "100", "{P}/dir3"]),
        ]),
        ("setdir", vec![
            run(&[ep, "{EP}", "setdir", "{P}/sd"]),
            run(&[ep, "{EP}", "setdir", "{P}/sd"]),
            run(&[ep, "{EP}", "set", "{P}/file", "v"]),
            run(&[ep, "{EP}", "setdir", "{P}/file"]),
            run(&[ep, "{EP}", "-o", "json", "get", "{P}/file"]),
        ]),
        ("update", vec![
            run(&[ep, "{EP}", "update", "{P}/u", "v"]),
            run(&[ep, "{EP}", "set", "{P}/u", "v"]),
            run(&[ep, "{EP}", "update", "{P}/u", "w"]),
            run(&[ep, "{EP}", "-o", "extended", "update", "--ttl", "100", "{P}/u", "x"]),
        ]),
        ("updatedir", vec![
            run(&[ep, "{EP}", "updatedir", "{P}/ud"]),
            run(&[ep, "{EP}", "mkdir", "{P}/ud"]),
            run(&[ep, "{EP}", "updatedir", "--ttl", "100", "{P}/ud"]),
            run(&[ep, "{EP}", "set", "{P}/uf", "v"]),
            run(&[ep, "{EP}", "-o", "json", "updatedir", "{P}/uf"]),
        ]),
        ("rm file and errors", vec![
            run(&[ep, "{EP}", "set", "{P}/f", "v"]),
            run(&[ep, "{EP}", "rm", "{P}/f"]),
            run(&[ep, "{EP}", "rm", "{P}/f"]),
            run(&[ep, "{EP}", "mkdir", "{P}/d"]),
            run(&[ep, "{EP}", "rm", "{P}/d"]),
        ]),
        ("rm directories", vec![
            run(&[ep, "{EP}", "mkdir", "{P}/e"]),
            run(&[ep, "{EP}", "rm", "--dir", "{P}/e"]),
            run(&[ep, "{EP}", "set", "{P}/n/x", "1"]),
            run(&[ep, "{EP}", "rm", "--dir", "{P}/n"]),
            run(&[ep, "{EP}", "rm", "-r", "{P}/n"]),
            run(&[ep, "{EP}", "set", "{P}/n2/x", "1"]),
            run(&[ep, "{EP}", "-o", "extended", "rm", "--recursive", "{P}/n2"]),
        ]),
        ("rm with value and index", vec![
            run(&[ep, "{EP}", "set", "{P}/w", "v"]),
            run(&[ep, "{EP}", "rm", "--with-value", "bad", "{P}/w"]),
            run(&[ep, "{EP}", "rm", "--with-value", "v", "{P}/w"]),
            run(&[ep, "{EP}", "set", "{P}/w", "v"]),
            run(&[ep, "{EP}", "rm", "--with-index", "{I+1}", "{P}/w"]),
            run(&[ep, "{EP}", "-o", "json", "rm", "--with-index", "{I+3}", "{P}/w"]),
        ]),
        ("rmdir", vec![
            run(&[ep, "{EP}", "mkdir", "{P}/e"]),
            run(&[ep, "{EP}", "rmdir", "{P}/e"]),
            run(&[ep, "{EP}", "set", "{P}/n/x", "1"]),
            run(&[ep, "{EP}", "rmdir", "{P}/n"]),
            run(&[ep, "{EP}", "rmdir", "{P}/n/x"]),
            run(&[ep, "{EP}", "rmdir", "{P}/missing"]),
        ]),
        ("ls", vec![
            run(&[ep, "{EP}", "mkdir", "{P}/a/sub"]),
            run(&[ep, "{EP}", "set", "{P}/a/x", "1"]),
            run(&[ep, "{EP}", "set", "{P}/a/sub/y", "2"]),
            run(&[ep, "{EP}", "ls", "--sort", "{P}/a"]),
            run(&[ep, "{EP}", "ls", "--sort", "-r", "{P}/a"]),
            run(&[ep, "{EP}", "ls", "--sort", "-r", "-p", "{P}/a"]),
            run(&[ep, "{EP}", "ls", "-p", "{P}/a/x"]),
            run(&[ep, "{EP}", "ls", "{P}/nothere"]),
            run_unsorted(&[ep, "{EP}", "ls", "--recursive", "{P}"]),
        ]),
        ("ls formats", vec![
            run(&[ep, "{EP}", "set", "{P}/a/x", "1"]),
            run(&[ep, "{EP}", "set", "{P}/a/y", "2"]),
            run(&[ep, "{EP}", "-o", "json", "ls", "--sort", "-r", "{P}"]),
            run(&[ep, "{EP}", "-o", "extended", "ls", "--sort", "{P}/a"]),
            run(&[ep, "{EP}", "ls", "--quorum", "--sort", "{P}/a"]),
            run(&[ep, "{EP}", "mkdir", "{P}/empty"]),
            run(&[ep, "{EP}", "ls", "{P}/empty"]),
        ]),
        ("get on dir and quorum", vec![
            run(&[ep, "{EP}", "mkdir", "{P}/gd"]),
            run(&[ep, "{EP}", "get", "{P}/gd"]),
            run(&[ep, "{EP}", "set", "{P}/gd/k", "v"]),
            run(&[ep, "{EP}", "get", "--sort", "-q", "{P}/gd/k"]),
            run(&[ep, "{EP}", "get", "{P}/gd/k/deeper"]),
        ]),
        ("watch with a concurrent set", vec![
            spawn(&[ep, "{EP}", "watch", "{P}/wk"]),
            Sleep { millis: 400 },
            Put { key: "{P}/wk", value: "v1" },
            Join,
        ]),
        ("watch --recursive with a concurrent set", vec![
            spawn(&[ep, "{EP}", "watch", "--recursive", "{P}/wd"]),
            Sleep { millis: 400 },
            Put { key: "{P}/wd/child", value: "v2" },
            Join,
        ]),
        ("watch skips directory events", vec![
            spawn(&[ep, "{EP}", "-o", "extended", "watch", "-r", "{P}/wd"]),
            Sleep { millis: 400 },
            PutDir { key: "{P}/wd/sub" },
            Put { key: "{P}/wd/sub/k", value: "v3" },
            Join,
        ]),
        ("watch --after-index replays history", vec![
            run(&[ep, "{EP}", "set", "{P}/h", "one"]),
            run(&[ep, "{EP}", "set", "{P}/h", "two"]),
            run(&[ep, "{EP}", "watch", "--after-index", "{I+1}", "{P}/h"]),
            run(&[ep, "{EP}", "-o", "json", "watch", "--after-index", "{I+0}", "{P}/h"]),
        ]),
        ("watch --forever until interrupted", vec![
            spawn(&[ep, "{EP}", "watch", "-f", "{P}/ff"]),
            Sleep { millis: 400 },
            Put { key: "{P}/ff", value: "a" },
            Put { key: "{P}/ff", value: "b" },
            Sleep { millis: 300 },
            Interrupt,
        ]),
        ("watch sees a delete", vec![
            run(&[ep, "{EP}", "set", "{P}/del", "v"]),
            spawn(&[ep, "{EP}", "-o", "json", "watch", "{P}/del"]),
            Sleep { millis: 400 },
            run(&[ep, "{EP}", "rm", "{P}/del"]),
            Join,
        ]),
        ("ttl expiry", vec![
            run(&[ep, "{EP}", "set", "--ttl", "1", "{P}/exp", "v"]),
            Sleep { millis: 2600 },
            run(&[ep, "{EP}", "get", "{P}/exp"]),
        ]),
        ("watch sees an expiry", vec![
            run(&[ep, "{EP}", "set", "--ttl", "1", "{P}/wexp", "v"]),
            spawn(&[ep, "{EP}", "watch", "-r", "{P}/wexp"]),
            Join,
        ]),
        ("exec-watch", vec![
            spawn(&[ep, "{EP}", "exec-watch", "-r", "{P}/ew", "--", "sh", "-c",
                "echo \"$ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE idx=$ETCD_WATCH_MODIFIED_INDEX\""]),
            Sleep { millis: 400 },
            Put { key: "{P}/ew/k", value: "v" },
            Sleep { millis: 400 },
            Interrupt,
        ]),
        ("exec-watch argument errors", vec![
            run(&[ep, "{EP}", "exec-watch", "{P}/ew"]),
            run(&[ep, "{EP}", "exec-watch"]),
        ]),
        ("json output escapes like Go", vec![
            run(&[ep, "{EP}", "-o", "json", "set", "{P}/j", "<a href=\"x\">&amp;</a>\t\u{2028}é"]),
            run(&[ep, "{EP}", "-o", "json", "rm", "{P}/j"]),
        ]),
        ("special characters in keys and values", vec![
            run(&[ep, "{EP}", "set", "{P}/a b/c?d", "x y&z=1%2"]),
            run(&[ep, "{EP}", "get", "{P}/a b/c?d"]),
            run(&[ep, "{EP}", "--debug", "get", "{P}/a b/c?d"]),
            run(&[ep, "{EP}", "set", "{P}/ключ", "значение"]),
            run(&[ep, "{EP}", "ls", "{P}/a b"]),
        ]),
        ("unsupported output format", vec![
            run(&[ep, "{EP}", "-o", "yaml", "set", "{P}/y", "1"]),
            run(&[ep, "{EP}", "-o", "yaml", "ls", "{P}"]),
            run(&[ep, "{EP}", "-o", "yaml", "get", "{P}/y"]),
        ]),
        ("--debug prints curl commands", vec![
            run(&[ep, "{EP}", "--debug", "set", "--ttl", "100", "{P}/dbg", "a b"]),
            run(&[ep, "{EP}", "--debug", "mkdir", "{P}/dd"]),
            run(&[ep, "{EP}", "--debug", "ls", "-r", "--sort", "{P}"]),
            run(&[ep, "{EP}", "--debug", "rm", "--with-index", "{I+1}", "{P}/dbg"]),
            run(&[ep, "{EP}", "--debug", "--no-sync", "mk", "--in-order", "{P}/dd", "x"]),
        ]),
        ("member list and cluster-health", vec![
            run(&[ep, "{EP}", "member", "list"]),
            run(&[ep, "{EP}", "-o", "json", "member", "list"]),
            run(&[ep, "{EP}", "cluster-health"]),
            run(&[ep, "{EP}", "--debug", "cluster-health"]),
        ]),
        ("member command errors", vec![
            run(&[ep, "{EP}", "member", "list", "extra"]),
            run(&[ep, "{EP}", "member", "add", "onlyname"]),
            run(&[ep, "{EP}", "member", "add", "n2", "ftp://127.0.0.1:1"]),
            run(&[ep, "{EP}", "member", "remove", "abc"]),
            run(&[ep, "{EP}", "member", "remove", "n1"]),
            run(&[ep, "{EP}", "member", "update", "1234", "http://127.0.0.1:1"]),
            run(&[ep, "{EP}", "member", "update", "x"]),
            run(&[ep, "{EP}", "member", "nosuch"]),
        ]),
        ("endpoint sources", vec![
            run(&["--no-sync", ep, "{EP}", "set", "{P}/e1", "1"]),
            run_env(&["get", "{P}/e1"], &[("ETCDCTL_ENDPOINTS", "{EP}")]),
            run(&["--peers", "{EP}", "get", "{P}/e1"]),
            run(&["-C", "{EP}", "get", "{P}/e1"]),
            run(&["--endpoint", "{EP}", "get", "{P}/e1"]),
            run_env(&["get", "{P}/e1"], &[("ETCDCTL_PEERS", "{EP}")]),
            run(&[ep, "{EP}", "--timeout", "3s", "--total-timeout", "10s", "get", "{P}/e1"]),
        ]),
        ("unreachable endpoints", vec![
            run(&[ep, "http://127.0.0.1:1", "get", "{P}/x"]),
            run(&["--no-sync", ep, "http://127.0.0.1:1", "get", "{P}/x"]),
            run(&[ep, "http://127.0.0.1:1", "member", "list"]),
            run(&[ep, "http://127.0.0.1:1", "cluster-health"]),
            run(&[ep, "127.0.0.1:1", "get", "{P}/x"]),
            run(&[ep, "localhost:1", "get", "{P}/x"]),
        ]),
        ("usage errors", vec![
            run(&[ep, "{EP}", "nosuchcommand"]),
            run(&[ep, "{EP}", "get", "--nosuchflag", "{P}/x"]),
            run(&[ep, "{EP}", "set", "--ttl", "abc", "{P}/x", "y"]),
            run(&[ep, "{EP}", "--timeout", "3", "get", "{P}/x"]),
            run(&[ep, "{EP}", "set"]),
            run(&[ep, "{EP}", "set", "{P}/x"]),
            run(&[ep, "{EP}", "get"]),
            run(&[ep, "{EP}", "rm"]),
            run(&[ep, "{EP}", "watch"]),
        ]),
        ("help and version", vec![
            run(&["--version"]),
            run(&[]),
            run(&["help"]),
            run(&["help", "set"]),
            run(&["help", "member"]),
            run(&["get", "-h"]),
            run(&["member"]),
            run(&["member", "list", "--help"]),
            run(&["cluster-health", "-h"]),
        ]),
        ("root is read only", vec![
            run(&[ep, "{EP}", "set", "/", "x"]),
            run(&[ep, "{EP}", "rm", "/"]),
            run(&[ep, "{EP}", "mkdir", "/"]),
        ]),
        ("not a directory and not a file", vec![
            run(&[ep, "{EP}", "set", "{P}/file", "v"]),
            run(&[ep, "{EP}", "set", "{P}/file/child", "v"]),
            run(&[ep, "{EP}", "mk", "--in-order", "{P}/file", "v"]),
            run(&[ep, "{EP}", "mkdir", "{P}/dir"]),
            run(&[ep, "{EP}", "set", "{P}/dir", "v"]),
            run(&[ep, "{EP}", "update", "{P}/dir", "v"]),
        ]),
        ("negative and odd numbers in flags", vec![
            run(&[ep, "{EP}", "set", "--ttl=-5", "{P}/neg", "v"]),
            run(&[ep, "{EP}", "-o", "extended", "get", "{P}/neg"]),
            run(&[ep, "{EP}", "set", "--ttl", "0x64", "{P}/hex", "v"]),
            run(&[ep, "{EP}", "-o", "extended", "get", "{P}/hex"]),
            run(&[ep, "{EP}", "--debug", "set", "--swap-with-index", "-1", "{P}/hex", "w"]),
        ]),
        ("extended delete output", vec![
            run(&[ep, "{EP}", "set", "{P}/x", "v"]),
            run(&[ep, "{EP}", "-o", "extended", "rm", "{P}/x"]),
            run(&[ep, "{EP}", "mkdir", "{P}/dx"]),
            run(&[ep, "{EP}", "-o", "json", "rmdir", "{P}/dx"]),
        ]),
    ]
}

/// Replaces `{P}`, `{EP}` and `{I+n}` in an argument.
fn expand(text: &str, prefix: &str, endpoint: &str, base_index: u64) -> String {
    let mut text = text.replace("{P}", prefix).replace("{EP}", endpoint);
    while let Some(start) = text.find("{I+") {
        let end = start + text[start..].find('}').expect("closing brace");
        let offset: u64 = text[start + 3..end].parse().expect("index offset");
        text.replace_range(start..=end, &(base_index + offset).to_string());
    }
    text
}

/// Replaces the number after each `marker` with `#<number - base>`.
fn relativize_after(text: &str, marker: &str, base: u64) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let digits_start = at + marker.len();
        out.push_str(&rest[..digits_start]);
        let digits_len = rest[digits_start..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - digits_start);
        let digits = &rest[digits_start..digits_start + digits_len];
        match digits.parse::<u64>() {
            // Huge values are wrapped negative flags, not indexes: keep them.
            Ok(value) if value < 1 << 40 => {
                out.push_str(&format!("#{}", value as i64 - base as i64))
            }
            _ => out.push_str(digits),
        }
        rest = &rest[digits_start + digits_len..];
    }
    out.push_str(rest);
    out
}

/// Blanks `"expiration":"…"` values.
fn blank_expirations(text: &str) -> String {
    let marker = "\"expiration\":\"";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        out.push_str(&rest[..at + marker.len()]);
        rest = &rest[at + marker.len()..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push_str("<expiration>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// In-order keys are 20 zero-padded digits: make them relative as well.
fn relativize_in_order_keys(text: &str, base: u64) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if run == 20 && (i == 0 || bytes[i - 1] == b'/') {
            let value: u64 = text[i..i + 20].parse().unwrap_or(0);
            out.push_str(&format!("<inorder#{}>", value as i64 - base as i64));
            i += 20;
        } else if run > 0 {
            out.push_str(&text[i..i + run]);
            i += run;
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn normalize(text: &str, base: u64) -> String {
    let mut text = blank_expirations(text);
    for marker in [
        "Index: ",
        "\"createdIndex\":",
        "\"modifiedIndex\":",
        ") [",
        "Not a file [",
        "idx=",
        "prevIndex=",
        "waitIndex=",
        " != ",
        "([",
    ] {
        text = relativize_after(&text, marker, base);
    }
    relativize_in_order_keys(&text, base)
}

fn current_index(endpoint: &str) -> u64 {
    let response =
        http_request("GET", &format!("{}/v2/keys/", endpoint), None).expect("GET /v2/keys/");
    response
        .header("X-Etcd-Index")
        .and_then(|v| v.parse().ok())
        .expect("X-Etcd-Index header")
}

fn key_url(endpoint: &str, key: &str) -> String {
    format!(
        "{}/v2/keys{}",
        endpoint,
        raftkv::client::http::encode_path(key)
    )
}

/// Waits (bounded) for `child` and renders its run; `args` are the unexpanded templates so
/// that absolute indexes in arguments do not make runs differ.
fn transcript_of(
    child: Child,
    args: &[&'static str],
    sort_stdout: bool,
    timeout: Duration,
) -> String {
    let mut child = child;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let out = String::from_utf8_lossy(&out_reader.join().unwrap()).to_string();
    let err = String::from_utf8_lossy(&err_reader.join().unwrap()).to_string();
    let out = if sort_stdout {
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort();
        lines.join("\n")
    } else {
        out
    };
    let code = match status {
        Some(status) => status
            .code()
            .map(|c| c.to_string())
            .unwrap_or("signal".into()),
        None => "timeout".to_string(),
    };
    format!(
        "$ {:?}\n[stdout]\n{}[stderr]\n{}[exit {}]\n",
        args, out, err, code
    )
}

fn command_for(binary: &str, args: &[String], env: &[(String, String)]) -> Command {
    let mut command = Command::new(binary);
    command
        .args(args)
        .env("ETCDCTL_API", "2")
        .env_remove("ETCDCTL_ENDPOINTS")
        .env_remove("ETCDCTL_ENDPOINT")
        .env_remove("ETCDCTL_PEERS")
        .env_remove("ETCDCTL_USERNAME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Runs one case with one client binary; returns the normalised transcript.
fn run_case(binary: &str, steps: &[Step], prefix: &str, endpoint: &str) -> String {
    let _ = http_request(
        "DELETE",
        &format!("{}?recursive=true", key_url(endpoint, prefix)),
        None,
    );
    let base = current_index(endpoint);
    let mut transcript = String::new();
    let mut background: Option<(Child, Vec<&'static str>)> = None;
    for step in steps {
        match step {
            Step::Run {
                args,
                stdin,
                env,
                sort_stdout,
            } => {
                let templates = args.clone();
                let args: Vec<String> = args
                    .iter()
                    .map(|a| expand(a, prefix, endpoint, base))
                    .collect();
                let env: Vec<(String, String)> = env
                    .iter()
                    .map(|(k, v)| (k.to_string(), expand(v, prefix, endpoint, base)))
                    .collect();
                let mut child = command_for(binary, &args, &env)
                    .spawn()
                    .expect("spawn client");
                let mut input = child.stdin.take().unwrap();
                input.write_all(stdin.as_bytes()).unwrap();
                drop(input);
                transcript.push_str(&transcript_of(
                    child,
                    &templates,
                    *sort_stdout,
                    Duration::from_secs(15),
                ));
            }
            Step::Spawn { args: templates } => {
                let args: Vec<String> = templates
                    .iter()
                    .map(|a| expand(a, prefix, endpoint, base))
                    .collect();
                let mut child = command_for(binary, &args, &[])
                    .spawn()
                    .expect("spawn client");
                drop(child.stdin.take());
                background = Some((child, templates.clone()));
            }
            Step::Put { key, value } => {
                let key = expand(key, prefix, endpoint, base);
                let form = [("value", value.to_string())];
                http_request("PUT", &key_url(endpoint, &key), Some(&form)).expect("PUT");
            }
            Step::PutDir { key } => {
                let key = expand(key, prefix, endpoint, base);
                http_request(
                    "PUT",
                    &format!("{}?dir=true", key_url(endpoint, &key)),
                    None,
                )
                .expect("PUT dir");
            }
            Step::Sleep { millis } => thread::sleep(Duration::from_millis(*millis)),
            Step::Join => {
                let (child, args) = background.take().expect("a spawned client");
                transcript.push_str(&transcript_of(child, &args, false, Duration::from_secs(10)));
            }
            Step::Interrupt => {
                let (child, args) = background.take().expect("a spawned client");
                // SAFETY: plain kill(2) on a child we spawned and still own.
                unsafe {
                    libc::kill(child.id() as libc::pid_t, libc::SIGINT);
                }
                transcript.push_str(&transcript_of(child, &args, false, Duration::from_secs(10)));
            }
        }
    }
    if let Some((mut child, _)) = background {
        let _ = child.kill();
        let _ = child.wait();
    }
    normalize(&transcript, base)
}

#[test]
fn raftkvctl_matches_etcdctl() {
    let target = std::env::var("RAFTKV_CTL_TARGET").unwrap_or_else(|_| "etcd".to_string());
    if !Path::new(ETCDCTL).exists() || (target != "raftkv" && !Path::new(ETCD).exists()) {
        println!("skipped: etcd not found");
        return;
    }
    let server = start_server(&target);
    let raftkvctl = env!("CARGO_BIN_EXE_raftkvctl");
    let all_cases = cases();
    assert!(
        all_cases.len() >= 40,
        "the suite must keep at least 40 sequences"
    );
    let only = std::env::var("RAFTKV_CTL_CASE").ok();
    let mut failures = Vec::new();
    for (number, (name, steps)) in all_cases.iter().enumerate() {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let prefix = format!("/ctl{}", number);
        let expected = run_case(ETCDCTL, steps, &prefix, &server.client_url);
        let found = run_case(raftkvctl, steps, &prefix, &server.client_url);
        if expected != found {
            failures.push(format!(
                "=== case {} ({}) differs\n--- etcdctl:\n{}--- raftkvctl:\n{}",
                number, name, expected, found
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ (target {}):\n{}",
        failures.len(),
        all_cases.len(),
        target,
        failures.join("\n")
    );
}

#[test]
fn normalisation_makes_indexes_relative() {
    let text = "Error:  100: Key not found (/a) [12]\nIndex: 11\n{\"createdIndex\":10,\
                \"expiration\":\"2026-01-01T00:00:00.5Z\"}\n/q/00000000000000000012\n";
    assert_eq!(
        normalize(text, 10),
        "Error:  100: Key not found (/a) [#2]\nIndex: #1\n{\"createdIndex\":#0,\
         \"expiration\":\"<expiration>\"}\n/q/<inorder#2>\n"
    );
    assert_eq!(expand("--x={I+2} {P}", "/p", "e", 5), "--x=7 /p");
}

//! Global options and what every command needs from them: endpoints (flags and
//! `ETCDCTL_*` variables), the synced client (`mustNewClient`), deadlines, credentials, and
//! etcdctl's `handleError`.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use raftkv::client::args::Parsed;
use raftkv::client::cluster::{ClientConfig, ClusterClient};
use raftkv::client::http::Url;
use raftkv::client::keys::go_quote;
use raftkv::client::keys::{Action, ClientError, KeysResponse};
use raftkv::client::srv;

use crate::specs::{EXIT_BAD_ARGS, EXIT_BAD_CONNECTION, EXIT_SERVER_ERROR};
use crate::{err, exit, out};

/// Global options and the state every command needs.
pub struct Ctl {
    pub globals: Parsed,
    /// Command flags and positional arguments.
    pub command: Parsed,
}

impl Ctl {
    pub fn output(&self) -> String {
        self.globals.text("output").unwrap_or("simple").to_string()
    }

    pub fn debug(&self) -> bool {
        self.globals.bool("debug")
    }

    pub fn total_timeout(&self) -> Duration {
        self.globals
            .duration("total-timeout")
            .unwrap_or(Duration::from_secs(5))
    }

    pub fn total_deadline(&self) -> Option<Instant> {
        Some(Instant::now() + self.total_timeout())
    }

    pub fn args(&self) -> &[String] {
        &self.command.args
    }

    /// etcdctl's `handleError`: `Error:  <err>` plus cluster detail lines, then exit.
    pub fn fail(&self, code: i32, error: &dyn std::fmt::Display, detail: Option<String>) -> ! {
        err(&format!("Error:  {}\n", error));
        if let Some(detail) = detail {
            err(&format!("{}\n", detail));
        }
        exit(code)
    }

    pub fn fail_client(&self, code: i32, error: &ClientError) -> ! {
        self.fail(code, error, error.detail())
    }

    /// etcdctl's `getEndpoints`: DNS SRV discovery first (`-D`/`ETCDCTL_DISCOVERY_SRV`;
    /// `http://` results dropped unless insecure discovery is on), then the endpoint flags
    /// and variables.
    pub fn endpoints(&self) -> Vec<String> {
        let domain = self
            .globals
            .text("discovery-srv")
            .map(str::to_string)
            .filter(|d| !d.is_empty())
            .or_else(|| std::env::var("ETCDCTL_DISCOVERY_SRV").ok())
            .unwrap_or_default();
        if !domain.is_empty() {
            let insecure = self.globals.bool("insecure-discovery")
                || std::env::var("ETCDCTL_INSECURE_DISCOVERY").is_ok_and(|v| !v.is_empty());
            let service_name = std::env::var("ETCDCTL_DISCOVERY_SRV_NAME").unwrap_or_default();
            let servers = srv::system_nameservers();
            let timeout = Duration::from_secs(5);
            match srv::discover_client_endpoints(&domain, &service_name, &servers, timeout) {
                Err(error) => {
                    err(&format!("{}\n", error));
                    exit(EXIT_BAD_ARGS);
                }
                Ok(found) => {
                    let mut kept = Vec::new();
                    for endpoint in found {
                        if !insecure && endpoint.starts_with("http://") {
                            err(&format!(
                                "ignoring discovered insecure endpoint {}\n",
                                go_quote(&endpoint)
                            ));
                        } else {
                            kept.push(endpoint);
                        }
                    }
                    if !kept.is_empty() {
                        return kept;
                    }
                }
            }
        }
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

    pub fn credentials(&self) -> Option<(String, String)> {
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
            None => Some((flag.clone(), ask_password("Password: "))),
        }
    }

    pub fn new_client(&self) -> ClusterClient {
        let unsupported = ["cert-file", "key-file", "ca-file"];
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
    pub fn client(&self) -> ClusterClient {
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
    pub fn client_no_sync(&self) -> ClusterClient {
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

    pub fn key_or_fail(&self) -> String {
        match self.args().first() {
            Some(key) => key.clone(),
            None => self.fail(EXIT_BAD_ARGS, &"key required", None),
        }
    }

    /// The value from the second argument or, when absent, all of stdin (bytes as read).
    pub fn value_or_fail(&self) -> Vec<u8> {
        if let Some(value) = self.args().get(1) {
            return value.clone().into_bytes();
        }
        let mut bytes = Vec::new();
        match std::io::stdin().read_to_end(&mut bytes) {
            Ok(_) if !bytes.is_empty() => bytes,
            _ => self.fail(EXIT_BAD_ARGS, &"value required", None),
        }
    }

    pub fn ttl_seconds(&self) -> u64 {
        self.command.int("ttl").max(0) as u64
    }

    pub fn keys_or_fail(&self, client: &mut ClusterClient, action: &Action) -> KeysResponse {
        match client.keys(action, self.total_deadline()) {
            Ok(response) => response,
            Err(error) => self.fail_client(EXIT_SERVER_ERROR, &error),
        }
    }
}

/// etcdctl's password prompt (speakeasy): prompt on stdout, `stty -echo` on the terminal,
/// one line from stdin (trimmed), `stty echo`, then a newline on stdout.
pub fn ask_password(prompt: &str) -> String {
    out(prompt);
    let _ = Command::new("/bin/stty").arg0("stty").arg("-echo").status();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    let mut stdin = std::io::stdin().lock();
    while let Ok(1) = stdin.read(&mut byte) {
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    let _ = Command::new("/bin/stty").arg0("stty").arg("echo").status();
    out("\n");
    String::from_utf8_lossy(&line).trim().to_string()
}

//! The server's configuration: etcd's flag names, in Go's forms (`--name x`, `-name x`,
//! `--name=x`, `-name=x`), and the `ETCD_<FLAG>` environment variables (a flag given on the
//! command line wins), so that tools which spawn `etcd` can spawn `raftkv` instead.
//!
//! Flags that etcd has but raftkv does not act on (TLS, logging, v3 tuning) are accepted and
//! listed by [`Config::ignored_flags`]; an unknown flag is an error, as it is for etcd.

use std::collections::BTreeMap;

/// Everything the server needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub name: String,
    /// Invariant: never empty (defaults to `<name>.raftkv`).
    pub data_dir: String,
    pub listen_client_urls: Vec<String>,
    pub advertise_client_urls: Vec<String>,
    pub listen_peer_urls: Vec<String>,
    pub initial_advertise_peer_urls: Vec<String>,
    /// `name=peerURL` pairs, in flag order.
    pub initial_cluster: Vec<(String, String)>,
    /// `new` or `existing`.
    pub initial_cluster_state: String,
    pub initial_cluster_token: String,
    /// Applied entries between snapshots (etcd's `--snapshot-count`).
    pub snapshot_count: u64,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    /// `--cors`: allowed origins; empty or `*` = everyone.
    pub cors_origins: Vec<String>,
    /// Worker threads serving client requests (bounded pool).
    pub max_client_workers: usize,
    /// Watches parked at once; a new watch beyond this is refused with a clear error.
    pub max_parked_watches: usize,
    /// Largest request body accepted, in bytes (etcd's form limit is 10 MiB).
    pub max_request_body_bytes: usize,
    /// Size every WAL segment file is preallocated to, in bytes.
    pub wal_segment_bytes: u64,
    /// The WAL never grows past this many bytes (0: no limit) — a quota that behaves like a
    /// full disk.
    pub wal_max_bytes: u64,
    /// `--host-whitelist`: host names (port ignored) this member answers; empty = all.
    pub host_whitelist: Vec<String>,
    /// `--proxy`: `off` or `on`.
    pub proxy: String,
    /// Flags accepted for compatibility but not acted on.
    pub ignored_flags: Vec<String>,
}

/// A command line or environment that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    UnknownFlag {
        flag: String,
    },
    MissingValue {
        flag: String,
    },
    BadValue {
        flag: String,
        expected: &'static str,
        found: String,
    },
    BadInitialCluster {
        found: String,
    },
    UnexpectedArgument {
        found: String,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::UnknownFlag { flag } => {
                write!(f, "flag provided but not defined: -{flag}")
            }
            ConfigError::MissingValue { flag } => write!(f, "flag needs an argument: -{flag}"),
            ConfigError::BadValue {
                flag,
                expected,
                found,
            } => {
                write!(
                    f,
                    "invalid value {found:?} for flag -{flag}: expected {expected}"
                )
            }
            ConfigError::BadInitialCluster { found } => {
                write!(
                    f,
                    "invalid --initial-cluster {found:?}: expected name=url[,name=url...]"
                )
            }
            ConfigError::UnexpectedArgument { found } => {
                write!(f, "'{found}' is not a valid flag")
            }
        }
    }
}

/// Flags raftkv acts on, with their defaults (the defaults of a bare `etcd`, except the data dir
/// and the client listener, which the README promises as 127.0.0.1:2379).
const FLAGS: &[(&str, &str)] = &[
    ("name", "default"),
    ("data-dir", ""),
    ("listen-client-urls", "http://127.0.0.1:2379"),
    ("advertise-client-urls", "http://127.0.0.1:2379"),
    ("listen-peer-urls", "http://127.0.0.1:2380"),
    ("initial-advertise-peer-urls", "http://localhost:2380"),
    ("initial-cluster", ""),
    ("initial-cluster-state", "new"),
    ("initial-cluster-token", "etcd-cluster"),
    ("snapshot-count", "100000"),
    ("heartbeat-interval", "100"),
    ("election-timeout", "1000"),
    ("cors", ""),
    ("max-client-workers", "16"),
    ("max-parked-watches", "10000"),
    ("max-request-bytes", "10485760"),
    ("proxy", "off"),
    ("host-whitelist", "*"),
    ("wal-segment-bytes", "16777216"),
    ("wal-max-bytes", "0"),
    ("enable-v2", "true"),
];

/// etcd flags accepted and ignored (boolean ones may appear without a value).
const IGNORED_FLAGS: &[&str] = &[
    "wal-dir",
    "quota-backend-bytes",
    "max-txn-ops",
    "grpc-keepalive-min-time",
    "grpc-keepalive-interval",
    "grpc-keepalive-timeout",
    "max-snapshots",
    "max-wals",
    "listen-metrics-urls",
    "discovery",
    "discovery-fallback",
    "discovery-proxy",
    "discovery-srv",
    "discovery-srv-name",
    "strict-reconfig-check",
    "auto-compaction-retention",
    "auto-compaction-mode",
    "pre-vote",
    "enable-pprof",
    "logger",
    "log-level",
    "log-outputs",
    "log-package-levels",
    "debug",
    "initial-election-tick-advance",
    "cert-file",
    "key-file",
    "client-cert-auth",
    "client-crl-file",
    "trusted-ca-file",
    "auto-tls",
    "peer-cert-file",
    "peer-key-file",
    "peer-client-cert-auth",
    "peer-crl-file",
    "peer-trusted-ca-file",
    "peer-auto-tls",
    "peer-cert-allowed-cn",
    "cipher-suites",
    "experimental-enable-v2v3",
    "experimental-initial-corrupt-check",
    "experimental-corrupt-check-time",
    "experimental-enable-lease-checkpoint",
    "experimental-compaction-batch-limit",
    "experimental-peer-skip-client-san-verification",
    "experimental-backend-bbolt-freelist-type",
    "experimental-watch-progress-notify-interval",
    "force-new-cluster",
    "metrics",
    "proxy-failure-wait",
    "proxy-refresh-interval",
    "proxy-dial-timeout",
    "proxy-write-timeout",
    "proxy-read-timeout",
    "backend-batch-limit",
    "backend-batch-interval",
    "auth-token",
    "bcrypt-cost",
    "unsafe-no-fsync",
];

const BOOLEAN_FLAGS: &[&str] = &[
    "enable-v2",
    "strict-reconfig-check",
    "pre-vote",
    "enable-pprof",
    "debug",
    "client-cert-auth",
    "auto-tls",
    "peer-client-cert-auth",
    "peer-auto-tls",
    "experimental-initial-corrupt-check",
    "experimental-enable-lease-checkpoint",
    "force-new-cluster",
    "experimental-peer-skip-client-san-verification",
    "initial-election-tick-advance",
    "unsafe-no-fsync",
];

fn is_known(flag: &str) -> bool {
    FLAGS.iter().any(|(name, _)| *name == flag) || IGNORED_FLAGS.contains(&flag)
}

impl Config {
    /// Builds the configuration from command-line arguments (without the program name) and an
    /// environment lookup.
    pub fn from_args_and_env(
        args: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut given: BTreeMap<String, String> = BTreeMap::new();
        let mut ignored = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            let Some(stripped) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(ConfigError::UnexpectedArgument { found: arg.clone() });
            };
            let (flag, inline_value) = match stripped.split_once('=') {
                Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
                None => (stripped.to_string(), None),
            };
            if !is_known(&flag) {
                return Err(ConfigError::UnknownFlag { flag });
            }
            let value = match inline_value {
                Some(value) => value,
                None if BOOLEAN_FLAGS.contains(&flag.as_str()) => "true".to_string(),
                None => {
                    i += 1;
                    args.get(i)
                        .cloned()
                        .ok_or(ConfigError::MissingValue { flag: flag.clone() })?
                }
            };
            if IGNORED_FLAGS.contains(&flag.as_str()) {
                ignored.push(flag);
            } else {
                given.insert(flag, value);
            }
            i += 1;
        }
        let lookup = |flag: &str| -> String {
            if let Some(value) = given.get(flag) {
                return value.clone();
            }
            let env_name = format!("ETCD_{}", flag.to_uppercase().replace('-', "_"));
            if let Some(value) = env(&env_name) {
                return value;
            }
            FLAGS
                .iter()
                .find(|(name, _)| *name == flag)
                .map(|(_, d)| d.to_string())
                .unwrap_or_default()
        };
        let number = |flag: &'static str| -> Result<u64, ConfigError> {
            let text = lookup(flag);
            text.parse().map_err(|_| ConfigError::BadValue {
                flag: flag.to_string(),
                expected: "an unsigned integer",
                found: text,
            })
        };
        let list = |flag: &str| -> Vec<String> {
            lookup(flag)
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let name = lookup("name");
        let data_dir = match lookup("data-dir") {
            dir if dir.is_empty() => format!("{name}.raftkv"),
            dir => dir,
        };
        let initial_advertise_peer_urls = list("initial-advertise-peer-urls");
        let initial_cluster = match lookup("initial-cluster") {
            text if text.is_empty() => initial_advertise_peer_urls
                .iter()
                .map(|url| (name.clone(), url.clone()))
                .collect(),
            text => parse_initial_cluster(&text)?,
        };
        let proxy = lookup("proxy");
        if !matches!(proxy.as_str(), "off" | "on" | "readonly") {
            return Err(ConfigError::BadValue {
                flag: "proxy".into(),
                expected: "off, on or readonly",
                found: proxy,
            });
        }
        let state = lookup("initial-cluster-state");
        if !matches!(state.as_str(), "new" | "existing") {
            return Err(ConfigError::BadValue {
                flag: "initial-cluster-state".into(),
                expected: "new or existing",
                found: state,
            });
        }
        Ok(Config {
            name,
            data_dir,
            listen_client_urls: list("listen-client-urls"),
            advertise_client_urls: list("advertise-client-urls"),
            listen_peer_urls: list("listen-peer-urls"),
            initial_advertise_peer_urls,
            initial_cluster,
            initial_cluster_state: state,
            initial_cluster_token: lookup("initial-cluster-token"),
            snapshot_count: number("snapshot-count")?,
            heartbeat_interval_ms: number("heartbeat-interval")?,
            election_timeout_ms: number("election-timeout")?,
            cors_origins: list("cors").into_iter().filter(|o| o != "*").collect(),
            max_client_workers: number("max-client-workers")?.clamp(1, 4096) as usize,
            max_parked_watches: number("max-parked-watches")? as usize,
            max_request_body_bytes: number("max-request-bytes")? as usize,
            wal_segment_bytes: number("wal-segment-bytes")?,
            wal_max_bytes: number("wal-max-bytes")?,
            host_whitelist: list("host-whitelist")
                .into_iter()
                .filter(|h| h != "*")
                .collect(),
            proxy,
            ignored_flags: ignored,
        })
    }

    /// The peer URLs of this member as the initial cluster lists them.
    pub fn own_peer_urls(&self) -> Vec<String> {
        let listed: Vec<String> = self
            .initial_cluster
            .iter()
            .filter(|(name, _)| *name == self.name)
            .map(|(_, url)| url.clone())
            .collect();
        if listed.is_empty() {
            self.initial_advertise_peer_urls.clone()
        } else {
            listed
        }
    }
}

fn parse_initial_cluster(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    text.split(',')
        .map(|pair| match pair.trim().split_once('=') {
            Some((name, url)) if !name.is_empty() && url.contains("://") => {
                Ok((name.to_string(), url.to_string()))
            }
            _ => Err(ConfigError::BadInitialCluster {
                found: text.to_string(),
            }),
        })
        .collect()
}

/// `host:port` of an `http://host:port[/...]` URL, for binding a listener.
pub fn host_port(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split('/').next()?;
    if authority.is_empty() {
        return None;
    }
    if authority.contains(':') {
        Some(authority.to_string())
    } else {
        Some(format!("{authority}:80"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_args_and_env(&args, |name| env.get(name).cloned())
    }

    #[test]
    fn defaults_match_a_bare_etcd_with_our_data_dir() {
        let config = parse(&[], &[]).unwrap();
        assert_eq!(config.name, "default");
        assert_eq!(config.data_dir, "default.raftkv");
        assert_eq!(config.listen_client_urls, vec!["http://127.0.0.1:2379"]);
        assert_eq!(
            config.initial_cluster,
            vec![("default".into(), "http://localhost:2380".into())]
        );
        assert_eq!(config.snapshot_count, 100_000);
    }

    #[test]
    fn go_flag_forms_and_env_are_accepted_and_flags_win() {
        let config = parse(
            &[
                "-name",
                "n1",
                "--data-dir=d",
                "-listen-client-urls=http://127.0.0.1:1",
                "--enable-v2",
                "--initial-cluster",
                "n1=http://127.0.0.1:2,n2=http://127.0.0.1:3",
                "--log-level",
                "info",
            ],
            &[
                ("ETCD_NAME", "ignored"),
                ("ETCD_INITIAL_CLUSTER_TOKEN", "tok"),
            ],
        )
        .unwrap();
        assert_eq!(config.name, "n1");
        assert_eq!(config.data_dir, "d");
        assert_eq!(config.listen_client_urls, vec!["http://127.0.0.1:1"]);
        assert_eq!(config.initial_cluster.len(), 2);
        assert_eq!(config.own_peer_urls(), vec!["http://127.0.0.1:2"]);
        assert_eq!(config.initial_cluster_token, "tok");
        assert_eq!(config.ignored_flags, vec!["log-level"]);
    }

    #[test]
    fn bad_command_lines_are_errors_with_etcds_wording() {
        let err = parse(&["--bogus"], &[]).unwrap_err();
        assert_eq!(err.to_string(), "flag provided but not defined: -bogus");
        assert_eq!(
            parse(&["--name"], &[]).unwrap_err(),
            ConfigError::MissingValue {
                flag: "name".into()
            }
        );
        assert!(matches!(
            parse(&["--snapshot-count", "x"], &[]),
            Err(ConfigError::BadValue { .. })
        ));
        assert!(matches!(
            parse(&["--initial-cluster", "junk"], &[]),
            Err(ConfigError::BadInitialCluster { .. })
        ));
    }

    #[test]
    fn host_port_of_urls() {
        assert_eq!(
            host_port("http://127.0.0.1:2379").as_deref(),
            Some("127.0.0.1:2379")
        );
        assert_eq!(
            host_port("http://localhost").as_deref(),
            Some("localhost:80")
        );
        assert_eq!(host_port("127.0.0.1:1"), None);
    }
}

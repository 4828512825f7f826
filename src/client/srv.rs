//! DNS SRV discovery of client endpoints (`etcdctl --discovery-srv <domain>`), on UDP with
//! the resolvers of /etc/resolv.conf, as etcd's `pkg/srv.GetClient("etcd-client", …)`:
//! `_etcd-client-ssl._tcp.<domain>` gives `https://` endpoints and `_etcd-client._tcp.<domain>`
//! `http://` ones (with `-<name>` after the service when a service name is set); the lookup
//! fails only when both do, with Go's `dns lookup errors: … and …` text.
//!
//! Query and answer layout (RFC 1035 §4.1, SRV rdata per RFC 2782):
//! ```text
//! header:   id u16 | flags u16 (0x0100 = recursion desired) | qd u16 | an u16 | ns u16 | ar u16
//! question: name (length-prefixed labels, 0-terminated) | type u16 (33 = SRV) | class u16 (1)
//! answer:   name (labels or a 0xC0 pointer) | type u16 | class u16 | ttl u32 | rdlength u16 |
//!           rdata = priority u16 | weight u16 | port u16 | target name
//! ```
//! The decoder never panics on any bytes; compression pointers are followed a bounded number
//! of times.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Fully qualified, with the trailing dot, as Go reports it (`etcd1.example.com.`).
    pub target: String,
}

/// Why a lookup failed; `Display` is Go's `net.DNSError` text without the `lookup … on …:`
/// prefix, which [`lookup_srv`] adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// NXDOMAIN, or an answer without SRV records.
    NoSuchHost,
    /// No answer within the timeout.
    Timeout,
    /// A malformed or failed answer (`found` says what was wrong).
    ServerMisbehaving { found: String },
    /// No nameserver configured or the socket could not be used.
    NoResolver { reason: String },
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsError::NoSuchHost => write!(f, "no such host"),
            DnsError::Timeout => write!(f, "i/o timeout"),
            DnsError::ServerMisbehaving { .. } => write!(f, "server misbehaving"),
            DnsError::NoResolver { reason } => write!(f, "{}", reason),
        }
    }
}

/// The nameservers of /etc/resolv.conf, port 53.
pub fn system_nameservers() -> Vec<SocketAddr> {
    let Ok(config) = std::fs::read_to_string("/etc/resolv.conf") else {
        return Vec::new();
    };
    config
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                return None;
            }
            let address: std::net::IpAddr = words.next()?.parse().ok()?;
            Some(SocketAddr::new(address, 53))
        })
        .collect()
}

/// Encodes a query for `name`'s SRV records with message id `id`.
pub fn encode_query(id: u16, name: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(32 + name.len());
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let bytes = &label.as_bytes()[..label.len().min(63)];
        message.push(bytes.len() as u8);
        message.extend_from_slice(bytes);
    }
    message.push(0);
    message.extend_from_slice(&[0, 33, 0, 1]);
    message
}

fn misbehaving(found: &str) -> DnsError {
    DnsError::ServerMisbehaving {
        found: found.to_string(),
    }
}

fn read_u16(message: &[u8], at: usize) -> Result<u16, DnsError> {
    match message.get(at..at + 2) {
        Some(bytes) => Ok(u16::from_be_bytes([bytes[0], bytes[1]])),
        None => Err(misbehaving("message ends inside a 16-bit field")),
    }
}

/// Reads a possibly compressed name at `at`; returns it (with a trailing dot) and the offset
/// just after it in the original position.
fn read_name(message: &[u8], at: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut position = at;
    let mut end_after_first_pointer: Option<usize> = None;
    for _ in 0..128 {
        let length = *message
            .get(position)
            .ok_or_else(|| misbehaving("name past the end"))?;
        match length {
            0 => {
                let end = end_after_first_pointer.unwrap_or(position + 1);
                if name.is_empty() {
                    name.push('.');
                }
                return Ok((name, end));
            }
            0xC0..=0xFF => {
                let low = *message
                    .get(position + 1)
                    .ok_or_else(|| misbehaving("pointer past the end"))?;
                if end_after_first_pointer.is_none() {
                    end_after_first_pointer = Some(position + 2);
                }
                position = (((length & 0x3F) as usize) << 8) | low as usize;
            }
            1..=63 => {
                let label = message
                    .get(position + 1..position + 1 + length as usize)
                    .ok_or_else(|| misbehaving("label past the end"))?;
                name.push_str(&String::from_utf8_lossy(label));
                name.push('.');
                position += 1 + length as usize;
            }
            _ => return Err(misbehaving("reserved label type")),
        }
    }
    Err(misbehaving("too many labels or pointers"))
}

/// Decodes an answer to the query with message id `id`.
pub fn decode_answer(id: u16, message: &[u8]) -> Result<Vec<SrvRecord>, DnsError> {
    if read_u16(message, 0)? != id {
        return Err(misbehaving("answer id does not match the query"));
    }
    let flags = read_u16(message, 2)?;
    if flags & 0x8000 == 0 {
        return Err(misbehaving("not an answer"));
    }
    match flags & 0x000F {
        0 => {}
        3 => return Err(DnsError::NoSuchHost),
        code => return Err(misbehaving(&format!("rcode {}", code))),
    }
    let questions = read_u16(message, 4)?;
    let answers = read_u16(message, 6)?;
    let mut position = 12;
    for _ in 0..questions {
        let (_, after) = read_name(message, position)?;
        position = after + 4;
    }
    let mut records = Vec::new();
    for _ in 0..answers {
        let (_, after) = read_name(message, position)?;
        let kind = read_u16(message, after)?;
        let rdata_length = read_u16(message, after + 8)? as usize;
        let rdata_start = after + 10;
        if message.len() < rdata_start + rdata_length {
            return Err(misbehaving("record data past the end"));
        }
        if kind == 33 {
            let (target, _) = read_name(message, rdata_start + 6)?;
            records.push(SrvRecord {
                priority: read_u16(message, rdata_start)?,
                weight: read_u16(message, rdata_start + 2)?,
                port: read_u16(message, rdata_start + 4)?,
                target,
            });
        }
        position = rdata_start + rdata_length;
    }
    if records.is_empty() {
        return Err(DnsError::NoSuchHost);
    }
    // Go orders by priority; equal priorities keep the server's order here (Go shuffles them
    // by weight).
    records.sort_by_key(|r| r.priority);
    Ok(records)
}

/// Looks up `name`'s SRV records on `servers` in turn. The error text is Go's
/// (`lookup <name> on <server>: no such host`).
pub fn lookup_srv(
    name: &str,
    servers: &[SocketAddr],
    timeout: Duration,
) -> Result<Vec<SrvRecord>, String> {
    let Some(first) = servers.first() else {
        return Err(format!("lookup {}: no nameserver configured", name));
    };
    let mut last_error = (first.to_string(), DnsError::Timeout);
    let id = (std::process::id() as u16) ^ (name.len() as u16).rotate_left(7);
    for server in servers {
        match query_one(id, name, *server, timeout) {
            Ok(records) => return Ok(records),
            Err(error @ DnsError::NoSuchHost) => {
                return Err(format!("lookup {} on {}: {}", name, server, error));
            }
            Err(error) => last_error = (server.to_string(), error),
        }
    }
    Err(format!(
        "lookup {} on {}: {}",
        name, last_error.0, last_error.1
    ))
}

fn query_one(
    id: u16,
    name: &str,
    server: SocketAddr,
    timeout: Duration,
) -> Result<Vec<SrvRecord>, DnsError> {
    let bind = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let io = |e: std::io::Error| DnsError::NoResolver {
        reason: e.to_string(),
    };
    let socket = UdpSocket::bind(bind).map_err(io)?;
    socket.set_read_timeout(Some(timeout)).map_err(io)?;
    socket
        .send_to(&encode_query(id, name), server)
        .map_err(io)?;
    let mut buffer = [0u8; 4096];
    loop {
        match socket.recv_from(&mut buffer) {
            Ok((length, from)) if from == server => return decode_answer(id, &buffer[..length]),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(DnsError::Timeout)
            }
            Err(e) => return Err(io(e)),
        }
    }
}

/// etcd's `srv.GetClient("etcd-client", domain, service_name)`: https endpoints from
/// `_etcd-client-ssl._tcp`, then http ones from `_etcd-client._tcp`.
pub fn discover_client_endpoints(
    domain: &str,
    service_name: &str,
    servers: &[SocketAddr],
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let service = |base: &str| {
        if service_name.is_empty() {
            base.to_string()
        } else {
            format!("{}-{}", base, service_name)
        }
    };
    let mut endpoints = Vec::new();
    let mut lookup = |service: String, scheme: &str| -> Result<(), String> {
        let name = format!("_{}._tcp.{}", service, domain);
        for record in lookup_srv(&name, servers, timeout)? {
            endpoints.push(format!("{}://{}:{}", scheme, record.target, record.port));
        }
        Ok(())
    };
    let https = lookup(service("etcd-client-ssl"), "https");
    let http = lookup(service("etcd-client"), "http");
    match (https, http) {
        (Err(https), Err(http)) => Err(format!("dns lookup errors: {} and {}", https, http)),
        _ => Ok(endpoints),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer to `query` with one SRV record per `(priority, port, target)`; the targets
    /// after the first are compressed against the question name.
    fn answer(query: &[u8], records: &[(u16, u16, &str)], rcode: u8) -> Vec<u8> {
        let mut message = query.to_vec();
        message[2] = 0x81;
        message[3] = 0x80 | rcode;
        message[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        for (priority, port, target) in records {
            message.extend_from_slice(&[0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 60]);
            let mut rdata = Vec::new();
            rdata.extend_from_slice(&priority.to_be_bytes());
            rdata.extend_from_slice(&5u16.to_be_bytes());
            rdata.extend_from_slice(&port.to_be_bytes());
            for label in target.split('.').filter(|l| !l.is_empty()) {
                rdata.push(label.len() as u8);
                rdata.extend_from_slice(label.as_bytes());
            }
            rdata.push(0);
            message.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            message.extend_from_slice(&rdata);
        }
        message
    }

    #[test]
    fn queries_and_answers_round_trip() {
        let query = encode_query(7, "_etcd-client._tcp.example.com");
        assert_eq!(&query[12..14], &[12, b'_']);
        let reply = answer(
            &query,
            &[(20, 2379, "b.example.com"), (10, 4001, "a.example.com")],
            0,
        );
        let records = decode_answer(7, &reply).unwrap();
        assert_eq!(
            records,
            vec![
                SrvRecord {
                    priority: 10,
                    weight: 5,
                    port: 4001,
                    target: "a.example.com.".into()
                },
                SrvRecord {
                    priority: 20,
                    weight: 5,
                    port: 2379,
                    target: "b.example.com.".into()
                },
            ]
        );
        assert_eq!(
            decode_answer(7, &answer(&query, &[], 3)),
            Err(DnsError::NoSuchHost)
        );
        assert_eq!(
            decode_answer(7, &answer(&query, &[], 0)),
            Err(DnsError::NoSuchHost)
        );
        assert!(decode_answer(8, &reply).is_err(), "a foreign id is refused");
    }

    #[test]
    fn decoder_never_panics_and_pointer_loops_end() {
        let query = encode_query(1, "_etcd-client._tcp.x");
        let reply = answer(&query, &[(1, 1, "t.x")], 0);
        for cut in 0..reply.len() {
            let _ = decode_answer(1, &reply[..cut]);
        }
        let mut looping = reply.clone();
        let at = looping.len() - 5;
        looping[at] = 0xC0;
        looping[at + 1] = (at & 0xFF) as u8;
        let _ = decode_answer(1, &looping);
        let mut state: u64 = 0xD1B5_4A32_D192_ED03;
        for case in 0..3000 {
            let mut bytes = reply.clone();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let index = (state % bytes.len() as u64) as usize;
            bytes[index] = (state >> 32) as u8;
            let result = std::panic::catch_unwind(|| decode_answer(1, &bytes));
            assert!(result.is_ok(), "case {} panicked on {:?}", case, bytes);
        }
    }

    #[test]
    fn discovery_against_a_udp_server_builds_go_urls_and_errors() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = server.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            for _ in 0..2 {
                let (length, from) = server.recv_from(&mut buffer).unwrap();
                let query = &buffer[..length];
                let reply = if query.windows(3).any(|w| w == b"ssl") {
                    answer(query, &[], 3)
                } else {
                    answer(query, &[(0, 2379, "n1.example.com")], 0)
                };
                server.send_to(&reply, from).unwrap();
            }
        });
        let endpoints =
            discover_client_endpoints("example.com", "", &[address], Duration::from_secs(2))
                .unwrap();
        assert_eq!(endpoints, vec!["http://n1.example.com.:2379".to_string()]);
        handle.join().unwrap();
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let error = discover_client_endpoints(
            "foo",
            "",
            &[silent.local_addr().unwrap()],
            Duration::from_millis(50),
        )
        .unwrap_err();
        assert_eq!(
            error,
            format!(
                "dns lookup errors: lookup _etcd-client-ssl._tcp.foo on {0}: i/o timeout and \
                 lookup _etcd-client._tcp.foo on {0}: i/o timeout",
                silent.local_addr().unwrap()
            )
        );
    }
}

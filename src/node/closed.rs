//! Which TCP connections their clients have closed, as the kernel's tables of TCP sockets
//! show them: a connection in state CLOSE_WAIT has received the
//! peer's FIN and waits for us to close our side; a connection missing from the table was
//! reset (a client that closes with unread data, such as a watch's response head, sends RST).
//! [`live_connections`] lists the established ones; a parked watch whose connection is not
//! among them is gone.
//!
//! The kernel is asked through its socket diagnostics ([`crate::node::sock_diag`]); the
//! `/proc` tables are the fallback.
//!
//! The watch hub uses it to end parked watches whose client went away: tiny_http hands us a
//! connection's writer but not its socket, so we cannot poll the socket itself, and a write
//! would change the response. etcd (Go's CloseNotify) unregisters such watchers at once; so
//! does raftkv, within one reaper period. Linux only; elsewhere nothing is found and watches
//! end when a write to them fails.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::node::sock_diag;

/// The kernel's code for CLOSE_WAIT in `/proc/net/tcp*`.
const TCP_CLOSE_WAIT: &str = "08";

/// The kernel's code for ESTABLISHED in `/proc/net/tcp*`.
const TCP_ESTABLISHED: &str = "01";

/// (local port, remote address) of every connection in CLOSE_WAIT.
pub fn closed_by_peer() -> BTreeSet<(u16, SocketAddr)> {
    let mut closed = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            closed.extend(parse_close_wait(&text));
        }
    }
    closed
}

/// (local port, remote address) of every ESTABLISHED connection to one of `listeners`, or
/// None when the kernel cannot tell (not Linux): then nothing can be said about any
/// connection. Asks the kernel's socket diagnostics ([`crate::node::sock_diag`]) and falls back
/// to the much slower `/proc/net/tcp*` tables when that fails.
pub fn live_connections(listeners: &[SocketAddr]) -> Option<BTreeSet<(u16, SocketAddr)>> {
    let ports: Vec<u16> = listeners.iter().map(SocketAddr::port).collect();
    let mut families = Vec::new();
    if listeners.iter().any(SocketAddr::is_ipv4) {
        families.push(sock_diag::Family::V4);
    }
    if listeners.iter().any(SocketAddr::is_ipv6) {
        families.push(sock_diag::Family::V6);
    }
    let mut live = BTreeSet::new();
    for family in families {
        match sock_diag::established(family, &ports) {
            Ok(found) => live.extend(found),
            Err(_) => return live_connections_from_proc(&ports),
        }
    }
    Some(live)
}

/// [`live_connections`] read from `/proc/net/tcp` and `/proc/net/tcp6`.
fn live_connections_from_proc(ports: &[u16]) -> Option<BTreeSet<(u16, SocketAddr)>> {
    let mut live = BTreeSet::new();
    let mut readable = false;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            readable = true;
            live.extend(
                parse_in_state(&text, TCP_ESTABLISHED)
                    .into_iter()
                    .filter(|(port, _)| ports.contains(port)),
            );
        }
    }
    readable.then_some(live)
}

/// Parses a `/proc/net/tcp`-format table; returns the CLOSE_WAIT entries.
pub fn parse_close_wait(table: &str) -> Vec<(u16, SocketAddr)> {
    parse_in_state(table, TCP_CLOSE_WAIT)
}

/// The entries of a `/proc/net/tcp`-format table in `wanted` state.
fn parse_in_state(table: &str, wanted: &str) -> Vec<(u16, SocketAddr)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _slot = fields.next()?;
            let local = fields.next()?;
            let remote = fields.next()?;
            let state = fields.next()?;
            if state != wanted {
                return None;
            }
            let local_port = parse_endpoint(local)?.port();
            Some((local_port, parse_endpoint(remote)?))
        })
        .collect()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits + `:port` (IPv6), as the kernel prints them:
/// the address as native-endian 32-bit words, the port as a big-endian number.
fn parse_endpoint(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..address.len() / 8)
        .map(|i| {
            address
                .get(i * 8..i * 8 + 8)
                .and_then(|w| u32::from_str_radix(w, 16).ok())
        })
        .collect::<Option<Vec<u32>>>()?;
    let ip = match words.as_slice() {
        [word] => IpAddr::V4(Ipv4Addr::from(word.to_le_bytes())),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (i, word) in [a, b, c, d].iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
            }
            let v6 = Ipv6Addr::from(bytes);
            // Connections to an IPv4 listener on a dual-stack socket show as ::ffff:a.b.c.d.
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_wait_entries_are_found_with_their_addresses() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:0929 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
   1: 0100007F:0929 0100007F:D431 08 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n\
   2: 0100007F:0929 0100007F:D432 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1\n";
        let found = parse_close_wait(table);
        assert_eq!(found, vec![(2345, "127.0.0.1:54321".parse().unwrap())]);
        let v6 = "header\n   0: 00000000000000000000000001000000:0929 0000000000000000FFFF00000100007F:D431 08 0 0 0 0 0 0 0 0\n";
        assert_eq!(
            parse_close_wait(v6),
            vec![(2345, "127.0.0.1:54321".parse().unwrap())]
        );
        assert!(parse_close_wait("header\n garbage line\n").is_empty());
    }

    #[test]
    fn a_closed_client_connection_shows_up() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, peer) = listener.accept().unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(client);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !closed_by_peer().contains(&(port, peer)) {
            assert!(
                std::time::Instant::now() < deadline,
                "CLOSE_WAIT of {peer} never seen"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

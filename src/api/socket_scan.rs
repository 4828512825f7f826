//! What the kernel says about this process's client connections.
//!
//! tiny_http owns the client sockets and shows nothing of them: not which connections wait
//! for a thread of its pool, not how much of a request it has buffered. The kernel shows
//! both. [`scan_client_sockets`] walks `/proc/self/fd` and, for each TCP socket whose local
//! port is the client port, reads its client address (`getpeername`), the bytes received and
//! not yet read (`FIONREAD`), and the bytes received and sent over its whole life
//! (`getsockopt(TCP_INFO)`: `tcpi_bytes_received`, `tcpi_bytes_sent`, or `tcpi_bytes_acked`
//! on kernels before 4.19). Every call is read-only on a descriptor tiny_http owns; a
//! descriptor closed or reused in between makes a call fail or name another client, and
//! callers that act on a socket check its client address again first.
//!
//! Users: the pool nudger ([`super::pool_nudge`]) and the request-head guard
//! ([`super::head_guard`]). A scan costs a few microseconds per client connection (four
//! system calls) and one failing call for any other descriptor.

use std::net::SocketAddr;

/// Descriptors examined per scan at most (bounds the cost with very many connections).
const MAX_DESCRIPTORS_PER_SCAN: usize = 65_536;

/// A socket by its descriptor and the client at its other end (the pair tells a reused
/// descriptor from the one seen before).
pub type SocketKey = (i32, SocketAddr);

/// One client connection as the kernel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSocket {
    pub key: SocketKey,
    /// Received and not yet read by tiny_http.
    pub unread_bytes: usize,
    /// Received over the connection's life.
    pub received_bytes: u64,
    /// Sent over the connection's life (acknowledged by the client, on kernels before 4.19).
    pub sent_bytes: u64,
}

/// This process's open descriptors, at most [`MAX_DESCRIPTORS_PER_SCAN`]; None when
/// `/proc/self/fd` cannot be read.
fn open_descriptors() -> Option<impl Iterator<Item = i32>> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        entries
            .take(MAX_DESCRIPTORS_PER_SCAN)
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok()),
    )
}

/// The connected TCP sockets of this process whose local port is `port`, each once (tiny_http
/// holds two descriptors of every connection, one to read and one to write: the first one
/// listed stands for it); None when `/proc/self/fd` cannot be read.
pub fn scan_client_sockets(port: u16) -> Option<Vec<ClientSocket>> {
    let mut found = Vec::new();
    let mut clients = std::collections::BTreeSet::new();
    for fd in open_descriptors()? {
        // Files, pipes and other sockets fail here at once.
        let Some((received_bytes, sent_bytes)) = tcp_byte_counts(fd) else {
            continue;
        };
        if socket_address(fd, Side::Local).map(|a| a.port()) != Some(port) {
            continue;
        }
        // The listener itself has no peer.
        let Some(peer) = socket_address(fd, Side::Peer) else {
            continue;
        };
        if !clients.insert(peer) {
            continue;
        }
        found.push(ClientSocket {
            key: (fd, peer),
            unread_bytes: unread_bytes(fd),
            received_bytes,
            sent_bytes,
        });
    }
    Some(found)
}

/// The connection on local port `port` from `client`, if it is open (a scan of its own:
/// for the rare request that must act on its connection's socket).
pub fn find_client_socket(port: u16, client: SocketAddr) -> Option<SocketKey> {
    scan_client_sockets(port)?
        .into_iter()
        .map(|socket| socket.key)
        .find(|(_, peer)| *peer == client)
}

/// True if the client at `client` has ended what it sends on its connection to this process
/// (it shut its sending side, closed or reset the connection). A look of its own through
/// `/proc/self/fd` (about 1 us per descriptor), for the rare request that must know; None when
/// no such connection is found. The answer holds only while the caller keeps the connection
/// open, as a request in progress does, so that the descriptor is not reused.
pub fn client_stopped_sending(client: SocketAddr) -> Option<bool> {
    for fd in open_descriptors()? {
        if socket_address(fd, Side::Peer) != Some(client) {
            continue;
        }
        // The TCP state, not a peek for the end of the stream: tiny_http shuts the reading
        // side of a connection whose request said `Connection: close`, and a peek then sees an
        // end the client never sent. The client's FIN moves the connection out of
        // ESTABLISHED (to CLOSE_WAIT), and so does its reset (to CLOSE).
        let (info, _) = tcp_info(fd)?;
        return Some(info.tcpi_state != TCP_ESTABLISHED);
    }
    None
}

/// `TCP_ESTABLISHED` of the kernel's TCP states (`tcpi_state`).
const TCP_ESTABLISHED: u8 = 1;

/// True if `fd` is still a connection on local port `port` with client `peer` (checked right
/// before acting on a socket found by an earlier scan).
pub fn is_still(fd: i32, port: u16, peer: SocketAddr) -> bool {
    socket_address(fd, Side::Local).map(|a| a.port()) == Some(port)
        && socket_address(fd, Side::Peer) == Some(peer)
}

#[derive(Clone, Copy)]
enum Side {
    Local,
    Peer,
}

/// The IP address of one end of socket `fd`; None for anything else (a file, an unconnected
/// socket, a closed descriptor).
fn socket_address(fd: i32, side: Side) -> Option<SocketAddr> {
    // SAFETY: an all-zero sockaddr_storage is a valid value of the type.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut length = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let address = (&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr>();
    // SAFETY: storage and length are valid for the call; the kernel writes at most `length`
    // bytes. A descriptor that is not a socket (or no longer open) makes the call fail.
    let result = unsafe {
        match side {
            Side::Local => libc::getsockname(fd, address, &mut length),
            Side::Peer => libc::getpeername(fd, address, &mut length),
        }
    };
    if result != 0 {
        return None;
    }
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let v4 = unsafe {
                &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            let ip = std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::new(ip.into(), u16::from_be(v4.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let v6 = unsafe {
                &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = std::net::Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Some(SocketAddr::new(ip.into(), u16::from_be(v6.sin6_port)))
        }
        _ => None,
    }
}

/// Bytes received on socket `fd` and not yet read (0 when that cannot be told).
fn unread_bytes(fd: i32) -> usize {
    let mut bytes: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int to the pointer given.
    let result = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut bytes as *mut libc::c_int) };
    if result == 0 {
        bytes.max(0) as usize
    } else {
        0
    }
}

/// Bytes received and sent over TCP socket `fd`'s life; None for anything that is not a TCP
/// socket, or a kernel whose `tcp_info` has no byte counts (before 4.1).
fn tcp_byte_counts(fd: i32) -> Option<(u64, u64)> {
    let (info, written) = tcp_info(fd)?;
    let covers = |offset: usize| written >= offset + std::mem::size_of::<u64>();
    if !covers(std::mem::offset_of!(libc::tcp_info, tcpi_bytes_received)) {
        return None;
    }
    let sent = if covers(std::mem::offset_of!(libc::tcp_info, tcpi_bytes_sent)) {
        info.tcpi_bytes_sent
    } else {
        info.tcpi_bytes_acked
    };
    Some((info.tcpi_bytes_received, sent))
}

/// `getsockopt(TCP_INFO)` of `fd` and how many bytes of it the kernel wrote (older kernels
/// write fewer fields); None for anything but a TCP socket.
fn tcp_info(fd: i32) -> Option<(libc::tcp_info, usize)> {
    // SAFETY: an all-zero tcp_info is a valid value of the type.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut length = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: info and length are valid for the call; the kernel writes at most `length`
    // bytes and says how many it wrote.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast::<libc::c_void>(),
            &mut length,
        )
    };
    if result != 0 {
        return None;
    }
    Some((info, length as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    fn find(port: u16, key: SocketKey) -> Option<ClientSocket> {
        scan_client_sockets(port)
            .expect("/proc/self/fd is readable")
            .into_iter()
            .find(|s| s.key == key)
    }

    #[test]
    fn a_client_socket_shows_its_unread_received_and_sent_bytes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server_side, peer) = listener.accept().unwrap();
        let key = (server_side.as_raw_fd(), peer);
        let fresh = find(port, key).expect("the connection is listed");
        assert_eq!(
            (fresh.unread_bytes, fresh.received_bytes, fresh.sent_bytes),
            (0, 0, 0)
        );
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while find(port, key).unwrap().unread_bytes == 0 {
            assert!(Instant::now() < deadline, "unread request not seen");
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut request = [0u8; 18];
        server_side.read_exact(&mut request).unwrap();
        server_side.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        let mut answer = [0u8; 19];
        client.read_exact(&mut answer).unwrap();
        let after = find(port, key).unwrap();
        assert_eq!(after.unread_bytes, 0);
        assert_eq!(after.received_bytes, 18);
        assert_eq!(after.sent_bytes, 19);
        assert!(is_still(key.0, port, peer));
        assert!(!is_still(key.0, port + 1, peer));
        // The listener and the client's own end are never listed.
        assert!(scan_client_sockets(port)
            .unwrap()
            .iter()
            .all(|s| s.key.0 == key.0));
        // A second descriptor of the same connection (tiny_http holds two) is not listed.
        let twin = server_side.try_clone().unwrap();
        let listed: Vec<i32> = scan_client_sockets(port)
            .unwrap()
            .iter()
            .map(|s| s.key.0)
            .collect();
        assert_eq!(listed, vec![key.0.min(twin.as_raw_fd())]);
    }
}

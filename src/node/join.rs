//! Joining a running cluster (`--initial-cluster-state existing`): which member ID and cluster
//! ID this member has.
//!
//! A member added at run time (`POST /v2/members`) got an ID that includes the time of the add,
//! so it cannot derive its ID from its flags, and the cluster ID comes from the founding members,
//! not from the joiner's `--initial-cluster`. As etcd does, a joiner with an empty data dir asks
//! the other members of `--initial-cluster` for `GET /members` on their peer port: the answer's
//! `X-Etcd-Cluster-Id` is the cluster ID and the member whose peer URLs are ours carries our
//! ID. The pair is then kept in `<data-dir>/member/identity` so that restarts (when the others
//! may be down) use the same IDs:
//! ```text
//! <member ID, 16 lowercase hex digits> <space> <cluster ID, 16 hex digits> <newline>
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::client::http::{Deadlines, HttpClient, Request, Url};

/// How long a joiner keeps asking the other members before giving up.
const JOIN_LIMIT: Duration = Duration::from_secs(10);

/// Who this member is, as the running cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub member_id: u64,
    pub cluster_id: u64,
    /// The cluster's members (ID, peer URLs) as the answering peer listed them.
    pub members: Vec<(u64, Vec<String>)>,
}

fn identity_path(data_dir: &Path) -> PathBuf {
    data_dir.join("member").join("identity")
}

/// The identity kept by an earlier join, if any (an unreadable file counts as none).
pub fn read_identity(data_dir: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(identity_path(data_dir)).ok()?;
    let mut parts = text.split_whitespace();
    let member_id = u64::from_str_radix(parts.next()?, 16).ok()?;
    let cluster_id = u64::from_str_radix(parts.next()?, 16).ok()?;
    Some((member_id, cluster_id))
}

/// Keeps the identity durably (write to a temporary file, fsync, rename, fsync the dir).
pub fn write_identity(data_dir: &Path, member_id: u64, cluster_id: u64) -> Result<(), String> {
    let path = identity_path(data_dir);
    let dir = path.parent().expect("identity path has a parent");
    std::fs::create_dir_all(dir).map_err(|e| format!("create {dir:?}: {e}"))?;
    let temporary = dir.join("identity.tmp");
    let text = format!("{member_id:016x} {cluster_id:016x}\n");
    let file = std::fs::File::create(&temporary).map_err(|e| format!("{temporary:?}: {e}"))?;
    std::io::Write::write_all(&mut &file, text.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("{temporary:?}: {e}"))?;
    std::fs::rename(&temporary, &path).map_err(|e| format!("rename to {path:?}: {e}"))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("fsync {dir:?}: {e}"))
}

/// True when the data dir already holds a WAL (the member has started before).
pub fn has_wal(data_dir: &Path) -> bool {
    std::fs::read_dir(data_dir.join("member").join("wal"))
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false)
}

/// Asks the peers at `peer_urls` for the member list until one lists a member with
/// `own_peer_urls` (bounded by `JOIN_LIMIT`).
pub fn identity_from_peers(
    peer_urls: &[String],
    own_peer_urls: &[String],
) -> Result<Identity, String> {
    let deadline = Instant::now() + JOIN_LIMIT;
    let mut last_error = format!("no peer to ask among {peer_urls:?}");
    loop {
        for peer in peer_urls {
            match ask_peer(peer, own_peer_urls) {
                Ok(identity) => return Ok(identity),
                Err(error) => last_error = format!("{peer}: {error}"),
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "cannot join the existing cluster: no member lists {own_peer_urls:?} (last: {last_error})"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ask_peer(peer: &str, own_peer_urls: &[String]) -> Result<Identity, String> {
    let mut url = Url::parse(peer).map_err(|e| e.to_string())?;
    url.path = "/members".to_string();
    let request = Request {
        method: "GET".into(),
        url,
        headers: Vec::new(),
        body: None,
    };
    let deadline = Some(Instant::now() + Duration::from_secs(2));
    let response = HttpClient::new(Some(Duration::from_secs(1)))
        .send(
            &request,
            Deadlines {
                headers: deadline,
                body: deadline,
            },
        )
        .map_err(|e| e.to_string())?;
    if response.status != 200 {
        return Err(format!("GET /members answered {}", response.status));
    }
    let cluster_id = response
        .header("X-Etcd-Cluster-Id")
        .and_then(|text| u64::from_str_radix(text, 16).ok())
        .ok_or("GET /members without X-Etcd-Cluster-Id")?;
    let listed: serde_json::Value =
        serde_json::from_slice(&response.body).map_err(|e| e.to_string())?;
    let mut members = Vec::new();
    for member in listed.as_array().into_iter().flatten() {
        let Some(id) = member["id"]
            .as_str()
            .and_then(|text| u64::from_str_radix(text, 16).ok())
        else {
            continue;
        };
        let urls: Vec<String> = member["peerURLs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str().map(String::from))
            .collect();
        members.push((id, urls));
    }
    let own = members
        .iter()
        .find(|(_, urls)| urls.iter().any(|u| own_peer_urls.contains(u)))
        .map(|(id, _)| *id)
        .ok_or_else(|| format!("its {} members do not list us yet", members.len()))?;
    Ok(Identity {
        member_id: own,
        cluster_id,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("raftkv-join-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn an_identity_written_is_read_back() {
        let dir = temp_dir("roundtrip");
        assert_eq!(read_identity(&dir), None);
        write_identity(&dir, 0x1d8e_d16f_7e9b_0996, 0x01e3_6a60_2646_aaf3).unwrap();
        assert_eq!(
            read_identity(&dir),
            Some((0x1d8e_d16f_7e9b_0996, 0x01e3_6a60_2646_aaf3))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_identity_file_counts_as_none() {
        let dir = temp_dir("damaged");
        std::fs::create_dir_all(dir.join("member")).unwrap();
        for text in ["", "zz 12\n", "12\n", "\u{0}\u{1}"] {
            std::fs::write(identity_path(&dir), text).unwrap();
            assert_eq!(read_identity(&dir), None, "{text:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

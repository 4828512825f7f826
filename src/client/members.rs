//! `/v2/members`: list, leader, add, update, remove — with the status codes and error texts
//! of etcd's Go client (`unexpected status code N`, the server's `{"message":…}` verbatim).

use std::time::Instant;

use serde::Deserialize;

use super::cluster::ClusterClient;
use super::gojson::decode_error_text;
use super::http::Url;
use super::keys::{Action, ClientError};

/// One member as `/v2/members` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct Member {
    /// Lowercase hex, no padding.
    #[serde(default)]
    pub id: String,
    /// Empty for a member that was added but never started.
    #[serde(default)]
    pub name: String,
    #[serde(rename = "peerURLs", default)]
    pub peer_urls: Vec<String>,
    #[serde(rename = "clientURLs", default)]
    pub client_urls: Vec<String>,
}

#[derive(Deserialize)]
struct MemberList {
    #[serde(default)]
    members: Option<Vec<Member>>,
}

#[derive(Deserialize)]
struct MessageBody {
    #[serde(default)]
    message: String,
}

fn expect_status(found: u16, accepted: &[u16]) -> Result<(), ClientError> {
    if accepted.contains(&found) {
        Ok(())
    } else {
        Err(ClientError::UnexpectedStatus { found })
    }
}

/// Decodes `body`, failing with Go's `encoding/json` text for a value of `go_type`.
fn decode<T: for<'de> Deserialize<'de>>(body: &[u8], go_type: &str) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|_| ClientError::Decode {
        reason: decode_error_text(body, go_type),
    })
}

/// `GET /v2/members`; requires 200.
pub fn list(
    client: &mut ClusterClient,
    deadline: Option<Instant>,
) -> Result<Vec<Member>, ClientError> {
    let response = client.execute(&Action::MembersList, deadline)?;
    expect_status(response.status, &[200])?;
    let list: MemberList = decode(&response.body, "struct { Members []client.Member }")?;
    Ok(list.members.unwrap_or_default())
}

/// `GET /v2/members/leader`; requires 200.
pub fn leader(
    client: &mut ClusterClient,
    deadline: Option<Instant>,
) -> Result<Member, ClientError> {
    let response = client.execute(&Action::MembersLeader, deadline)?;
    expect_status(response.status, &[200])?;
    decode(&response.body, "client.Member")
}

/// Validates peer URLs like etcd's `types.NewURLs` and returns them sorted.
pub fn validate_peer_urls(urls: &[String]) -> Result<Vec<String>, ClientError> {
    let mut checked = Vec::new();
    for text in urls {
        let invalid = |reason: String| ClientError::Invalid { reason };
        let url = Url::parse(text).map_err(|e| invalid(e.to_string()))?;
        if !matches!(url.scheme.as_str(), "http" | "https" | "unix" | "unixs") {
            return Err(invalid(format!(
                "URL scheme must be http, https, unix, or unixs: {}",
                text
            )));
        }
        if !url.port_explicit {
            return Err(invalid(format!(
                "URL address does not have the form \"host:port\": {}",
                text
            )));
        }
        if !url.path.is_empty() {
            return Err(invalid(format!("URL must not contain a path: {}", text)));
        }
        checked.push(url.to_string());
    }
    checked.sort();
    Ok(checked)
}

/// `POST /v2/members`; 201 is the new member, 409 the server's message.
pub fn add(
    client: &mut ClusterClient,
    peer_url: &str,
    deadline: Option<Instant>,
) -> Result<Member, ClientError> {
    let peer_urls = validate_peer_urls(&[peer_url.to_string()])?;
    let response = client.execute(&Action::MembersAdd { peer_urls }, deadline)?;
    expect_status(response.status, &[201, 409])?;
    if response.status != 201 {
        let body: MessageBody = decode(&response.body, "client.membersError")?;
        return Err(ClientError::Message {
            message: body.message,
        });
    }
    decode(&response.body, "client.Member")
}

/// `PUT /v2/members/<id>`; 204 is success, 404/409 carry the server's message.
pub fn update(
    client: &mut ClusterClient,
    id: &str,
    peer_urls: &[String],
    deadline: Option<Instant>,
) -> Result<(), ClientError> {
    let peer_urls = validate_peer_urls(peer_urls)?;
    let action = Action::MembersUpdate {
        id: id.to_string(),
        peer_urls,
    };
    let response = client.execute(&action, deadline)?;
    expect_status(response.status, &[204, 404, 409])?;
    if response.status != 204 {
        let body: MessageBody = decode(&response.body, "client.membersError")?;
        return Err(ClientError::Message {
            message: body.message,
        });
    }
    Ok(())
}

/// `DELETE /v2/members/<id>`; 204 or 410.
pub fn remove(
    client: &mut ClusterClient,
    id: &str,
    deadline: Option<Instant>,
) -> Result<(), ClientError> {
    let response = client.execute(&Action::MembersRemove { id: id.to_string() }, deadline)?;
    expect_status(response.status, &[204, 410])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls_are_validated_like_etcd() {
        assert_eq!(
            validate_peer_urls(&["http://b:2".into(), "http://a:1".into()]).unwrap(),
            vec!["http://a:1".to_string(), "http://b:2".to_string()]
        );
        assert_eq!(
            validate_peer_urls(&["ftp://a:1".into()])
                .unwrap_err()
                .to_string(),
            "URL scheme must be http, https, unix, or unixs: ftp://a:1"
        );
        assert_eq!(
            validate_peer_urls(&["http://a".into()])
                .unwrap_err()
                .to_string(),
            "URL address does not have the form \"host:port\": http://a"
        );
        assert_eq!(
            validate_peer_urls(&["http://a:1/x".into()])
                .unwrap_err()
                .to_string(),
            "URL must not contain a path: http://a:1/x"
        );
    }

    #[test]
    fn member_json_decodes() {
        let list: MemberList = decode(
            br#"{"members":[{"id":"bd","name":"n1","peerURLs":["http://p:1"],"clientURLs":[]}]}"#,
            "x",
        )
        .unwrap();
        let members = list.members.unwrap();
        assert_eq!(members[0].id, "bd");
        assert_eq!(members[0].peer_urls, vec!["http://p:1".to_string()]);
        assert_eq!(
            decode::<Member>(b"", "client.Member")
                .unwrap_err()
                .to_string(),
            "unexpected end of JSON input"
        );
    }
}

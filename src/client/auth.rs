//! `/v2/auth`: enable/disable, users and roles, as etcd's Go client drives them.
//!
//! Request bodies are Go's `json.Marshal` of the client structs, `null`s included
//! (`{"user":"u","password":"p","roles":null}`), because `--debug` shows them. Replies are
//! decoded with the client's quirks kept: a user whose roles come back as role objects gets
//! one empty role name per object before the real names (hence etcdctl's `Roles:  root`),
//! and a failed role list reports only `unexpected status code N`.

use std::time::Instant;

use serde::Deserialize;

use super::cluster::ClusterClient;
use super::format::push_go_string;
use super::gojson::decode_error_text;
use super::keys::{Action, ClientError};

/// Which access a role grant or revoke is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Write,
    ReadWrite,
}

/// A user as etcdctl prints it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub user: String,
    pub roles: Vec<String>,
}

/// Read and write prefixes; `None` is JSON `null` (kept apart from `[]` for comparisons).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct KvPermissions {
    #[serde(default)]
    pub read: Option<Vec<String>>,
    #[serde(default)]
    pub write: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Permissions {
    #[serde(default)]
    pub kv: KvPermissions,
}

/// A role as the server returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Role {
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub permissions: Permissions,
    #[serde(default)]
    pub grant: Option<Permissions>,
    #[serde(default)]
    pub revoke: Option<Permissions>,
}

#[derive(Deserialize)]
struct MessageBody {
    #[serde(default)]
    message: String,
}

fn go_json_error(body: &[u8], go_type: &str) -> ClientError {
    ClientError::Decode {
        reason: decode_error_text(body, go_type),
    }
}

/// Go client's handling of a status outside `accepted`: the server's `{"message":…}`.
fn auth_error(status: u16, accepted: &[u16], body: &[u8]) -> Result<(), ClientError> {
    if accepted.contains(&status) {
        return Ok(());
    }
    match serde_json::from_slice::<MessageBody>(body) {
        Ok(parsed) => Err(ClientError::Message {
            message: parsed.message,
        }),
        Err(_) => Err(go_json_error(body, "client.authError")),
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::new();
    push_go_string(&mut out, text);
    out
}

fn json_list(items: Option<&[String]>) -> String {
    match items {
        None => "null".to_string(),
        Some(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| json_string(i))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

fn send(
    client: &mut ClusterClient,
    method: &'static str,
    path: String,
    body: Option<String>,
    deadline: Option<Instant>,
) -> Result<(u16, Vec<u8>), ClientError> {
    let action = Action::Auth { method, path, body };
    let response = client.execute(&action, deadline)?;
    Ok((response.status, response.body))
}

fn users_path(name: &str) -> String {
    if name.is_empty() {
        "/v2/auth/users".to_string()
    } else {
        format!("/v2/auth/users/{}", name)
    }
}

fn roles_path(name: &str) -> String {
    if name.is_empty() {
        "/v2/auth/roles".to_string()
    } else {
        format!("/v2/auth/roles/{}", name)
    }
}

/// `PUT` (enable) or `DELETE` (disable) `/v2/auth/enable`; 200 or 201.
pub fn set_enabled(
    client: &mut ClusterClient,
    enable: bool,
    deadline: Option<Instant>,
) -> Result<(), ClientError> {
    let method = if enable { "PUT" } else { "DELETE" };
    let (status, body) = send(client, method, "/v2/auth/enable".into(), None, deadline)?;
    auth_error(status, &[200, 201], &body)
}

/// `GET /v2/auth/users`: the user names in server order.
pub fn list_users(
    client: &mut ClusterClient,
    deadline: Option<Instant>,
) -> Result<Vec<String>, ClientError> {
    let (status, body) = send(client, "GET", users_path(""), None, deadline)?;
    auth_error(status, &[200], &body)?;
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        user: String,
    }
    #[derive(Deserialize)]
    struct List {
        #[serde(default)]
        users: Option<Vec<Entry>>,
    }
    let list: List = serde_json::from_slice(&body).map_err(|_| {
        go_json_error(
            &body,
            "struct { Users []client.userListEntry \"json:\\\"users\\\"\" }",
        )
    })?;
    Ok(list
        .users
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.user)
        .collect())
}

/// `PUT /v2/auth/users/<u>` with the password (creates, or changes the password).
pub fn add_user(
    client: &mut ClusterClient,
    user: &str,
    password: &str,
    deadline: Option<Instant>,
) -> Result<(), ClientError> {
    let body = user_body(user, password, None, None);
    let (status, reply) = send(client, "PUT", users_path(user), Some(body), deadline)?;
    auth_error(status, &[200, 201], &reply)
}

/// `DELETE /v2/auth/users/<u>`.
pub fn remove_user(
    client: &mut ClusterClient,
    user: &str,
    deadline: Option<Instant>,
) -> Result<(), ClientError> {
    let (status, reply) = send(client, "DELETE", users_path(user), None, deadline)?;
    auth_error(status, &[200, 201], &reply)
}

fn user_body(
    user: &str,
    password: &str,
    grant: Option<&[String]>,
    revoke: Option<&[String]>,
) -> String {
    let mut body = format!("{{\"user\":{}", json_string(user));
    if !password.is_empty() {
        body.push_str(&format!(",\"password\":{}", json_string(password)));
    }
    body.push_str(",\"roles\":null");
    if let Some(grant) = grant.filter(|g| !g.is_empty()) {
        body.push_str(&format!(",\"grant\":{}", json_list(Some(grant))));
    }
    if let Some(revoke) = revoke.filter(|r| !r.is_empty()) {
        body.push_str(&format!(",\"revoke\":{}", json_list(Some(revoke))));
    }
    body.push('}');
    body
}

/// Decodes a user reply with the Go client's two-pass quirk (see the module doc).
pub fn decode_user(body: &[u8]) -> Result<User, ClientError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| go_json_error(body, "client.User"))?;
    let user = value
        .get("user")
        .and_then(|u| u.as_str())
        .unwrap_or("")
        .to_string();
    let roles_value = value
        .get("roles")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let Some(items) = roles_value.as_array() else {
        return Ok(User {
            user,
            roles: Vec::new(),
        });
    };
    let as_strings: Vec<String> = items
        .iter()
        .map(|item| item.as_str().unwrap_or("").to_string())
        .collect();
    if items.iter().all(|item| item.is_string()) {
        return Ok(User {
            user,
            roles: as_strings,
        });
    }
    // First pass failed on the role objects (leaving empty names); the second pass reads
    // them as roles and appends their names.
    if !items.iter().all(|item| item.is_object() || item.is_null()) {
        return Err(ClientError::Decode {
            reason: "json: cannot unmarshal object into Go struct field User.roles of type string"
                .to_string(),
        });
    }
    let mut roles = as_strings;
    for item in items {
        roles.push(
            item.get("role")
                .and_then(|r| r.as_str())
                .unwrap_or("")
                .to_string(),
        );
    }
    Ok(User { user, roles })
}

fn mod_user(
    client: &mut ClusterClient,
    method: &'static str,
    user: &str,
    body: Option<String>,
    deadline: Option<Instant>,
) -> Result<User, ClientError> {
    let (status, reply) = send(client, method, users_path(user), body, deadline)?;
    auth_error(status, &[200], &reply)?;
    decode_user(&reply)
}

/// `GET /v2/auth/users/<u>`.
pub fn get_user(
    client: &mut ClusterClient,
    user: &str,
    deadline: Option<Instant>,
) -> Result<User, ClientError> {
    mod_user(client, "GET", user, None, deadline)
}

/// `PUT /v2/auth/users/<u>` granting (`grant`) or revoking roles.
pub fn grant_or_revoke_user(
    client: &mut ClusterClient,
    user: &str,
    roles: &[String],
    grant: bool,
    deadline: Option<Instant>,
) -> Result<User, ClientError> {
    let body = if grant {
        user_body(user, "", Some(roles), None)
    } else {
        user_body(user, "", None, Some(roles))
    };
    mod_user(client, "PUT", user, Some(body), deadline)
}

/// `PUT /v2/auth/users/<u>` with a new password.
pub fn change_password(
    client: &mut ClusterClient,
    user: &str,
    password: &str,
    deadline: Option<Instant>,
) -> Result<User, ClientError> {
    let body = user_body(user, password, None, None);
    mod_user(client, "PUT", user, Some(body), deadline)
}

/// `GET /v2/auth/roles`; any status but 200 is only `unexpected status code N`.
pub fn list_roles(
    client: &mut ClusterClient,
    deadline: Option<Instant>,
) -> Result<Vec<String>, ClientError> {
    let (status, body) = send(client, "GET", roles_path(""), None, deadline)?;
    if status != 200 {
        return Err(ClientError::UnexpectedStatus { found: status });
    }
    #[derive(Deserialize)]
    struct List {
        #[serde(default)]
        roles: Option<Vec<Role>>,
    }
    let list: List = serde_json::from_slice(&body).map_err(|_| {
        go_json_error(
            &body,
            "struct { Roles []client.Role \"json:\\\"roles\\\"\" }",
        )
    })?;
    Ok(list
        .roles
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.role)
        .collect())
}

fn kv_json(permissions: &KvPermissions) -> String {
    format!(
        "{{\"kv\":{{\"read\":{},\"write\":{}}}}}",
        json_list(permissions.read.as_deref()),
        json_list(permissions.write.as_deref())
    )
}

fn role_body(role: &str, grant: Option<&KvPermissions>, revoke: Option<&KvPermissions>) -> String {
    let mut body = format!(
        "{{\"role\":{},\"permissions\":{}",
        json_string(role),
        kv_json(&KvPermissions::default())
    );
    if let Some(grant) = grant {
        body.push_str(&format!(",\"grant\":{}", kv_json(grant)));
    }
    if let Some(revoke) = revoke {
        body.push_str(&format!(",\"revoke\":{}", kv_json(revoke)));
    }
    body.push('}');
    body
}

fn mod_role(
    client: &mut ClusterClient,
    method: &'static str,
    role: &str,
    body: Option<String>,
    deadline: Option<Instant>,
) -> Result<Role, ClientError> {
    let (status, reply) = send(client, method, roles_path(role), body, deadline)?;
    auth_error(status, &[200], &reply)?;
    serde_json::from_slice(&reply).map_err(|_| go_json_error(&reply, "client.Role"))
}

/// `GET /v2/auth/roles/<r>`.
pub fn get_role(
    client: &mut ClusterClient,
    role: &str,
    deadline: Option<Instant>,
) -> Result<Role, ClientError> {
    mod_role(client, "GET", role, None, deadline)
}

/// `PUT /v2/auth/roles/<r>` with empty permissions.
pub fn add_role(
    client: &mut ClusterClient,
    role: &str,
    deadline: Option<Instant>,
) -> Result<(), ClientError> {
    let body = role_body(role, None, None);
    let (status, reply) = send(client, "PUT", roles_path(role), Some(body), deadline)?;
    auth_error(status, &[200, 201], &reply)
}

/// `DELETE /v2/auth/roles/<r>`.
pub fn remove_role(
    client: &mut ClusterClient,
    role: &str,
    deadline: Option<Instant>,
) -> Result<(), ClientError> {
    let (status, reply) = send(client, "DELETE", roles_path(role), None, deadline)?;
    auth_error(status, &[200, 201], &reply)
}

/// `PUT /v2/auth/roles/<r>` granting (`grant`) or revoking access to `prefixes`.
pub fn grant_or_revoke_role(
    client: &mut ClusterClient,
    role: &str,
    prefixes: &[String],
    permission: Permission,
    grant: bool,
    deadline: Option<Instant>,
) -> Result<Role, ClientError> {
    let mut kv = KvPermissions::default();
    if matches!(permission, Permission::Read | Permission::ReadWrite) {
        kv.read = Some(prefixes.to_vec());
    }
    if matches!(permission, Permission::Write | Permission::ReadWrite) {
        kv.write = Some(prefixes.to_vec());
    }
    let body = if grant {
        role_body(role, Some(&kv), None)
    } else {
        role_body(role, None, Some(&kv))
    };
    mod_role(client, "PUT", role, Some(body), deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_go_marshalled() {
        assert_eq!(
            user_body("bob", "pw", None, None),
            "{\"user\":\"bob\",\"password\":\"pw\",\"roles\":null}"
        );
        assert_eq!(
            user_body("bob", "", Some(&["r".to_string()]), None),
            "{\"user\":\"bob\",\"roles\":null,\"grant\":[\"r\"]}"
        );
        let read = KvPermissions {
            read: Some(vec!["/x".into()]),
            write: None,
        };
        assert_eq!(
            role_body("rr", Some(&read), None),
            "{\"role\":\"rr\",\"permissions\":{\"kv\":{\"read\":null,\"write\":null}},\
             \"grant\":{\"kv\":{\"read\":[\"/x\"],\"write\":null}}}"
        );
    }

    #[test]
    fn user_roles_decode_with_the_go_client_quirk() {
        let objects = br#"{"user":"root","roles":[{"role":"root","permissions":{}}]}"#;
        assert_eq!(
            decode_user(objects).unwrap().roles,
            vec!["".to_string(), "root".into()]
        );
        let strings = br#"{"user":"u","roles":["a","b"]}"#;
        assert_eq!(
            decode_user(strings).unwrap().roles,
            vec!["a".to_string(), "b".into()]
        );
        let none = br#"{"user":"u","roles":null}"#;
        assert!(decode_user(none).unwrap().roles.is_empty());
        assert_eq!(
            decode_user(b"").unwrap_err().to_string(),
            "unexpected end of JSON input"
        );
    }

    #[test]
    fn auth_errors_carry_the_server_message() {
        assert_eq!(
            auth_error(409, &[200], br#"{"message":"auth: already enabled"}"#)
                .unwrap_err()
                .to_string(),
            "auth: already enabled"
        );
        assert!(auth_error(201, &[200, 201], b"").is_ok());
    }
}

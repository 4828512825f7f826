//! The v2 auth records (users, roles, permissions), their JSON as etcd reads and writes it, the
//! merge rules of grant/revoke, and permission matching.
//!
//! etcd decodes these bodies with Go's `encoding/json` into structs and decides several
//! outcomes by comparing old and new records with `reflect.DeepEqual`, where a missing list
//! (`null`) differs from an empty one (`[]`). So a list is an `Option<Vec<String>>` here: `None`
//! is Go's nil slice, and every rule below keeps the distinction where etcd's code does:
//! merging produces `Some` (Go builds new slices), a role grant or revoke that was not asked for
//! leaves the old list as it was. Go's decoding rules followed: field names match
//! case-insensitively, unknown fields are ignored, `null` leaves a field as it was (a `null`
//! list element becomes `""`), any type mismatch is an error.

use serde_json::Value;

use crate::api::json::push_string;

/// The role every request with no `Authorization` header is checked against.
pub const GUEST_ROLE: &str = "guest";
/// The built-in role with full access; it is never stored.
pub const ROOT_ROLE: &str = "root";
/// The user that always holds the root role.
pub const ROOT_USER: &str = "root";

/// A user as stored (`password` is the hash) or as sent in a request (`password` in clear).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub user: String,
    /// Empty when absent (never rendered in responses).
    pub password: String,
    pub roles: Option<Vec<String>>,
    pub grant: Vec<String>,
    pub revoke: Vec<String>,
}

/// Read and write permission patterns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RwPermission {
    pub read: Option<Vec<String>>,
    pub write: Option<Vec<String>>,
}

/// `{"kv": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    pub kv: RwPermission,
}

/// A role as stored or as sent in a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Role {
    pub role: String,
    pub permissions: Permissions,
    pub grant: Option<Permissions>,
    pub revoke: Option<Permissions>,
}

/// An auth failure as etcd reports it: an HTTP status and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub status: u16,
    pub message: String,
}

/// etcd's `authErr`: the message gets the `auth: ` prefix.
pub fn auth_error(status: u16, message: impl std::fmt::Display) -> AuthError {
    AuthError {
        status,
        message: format!("auth: {message}"),
    }
}

/// The root role etcd answers with (read and write on everything).
pub fn root_role() -> Role {
    Role {
        role: ROOT_ROLE.to_string(),
        permissions: all_access(),
        grant: None,
        revoke: None,
    }
}

/// The guest role created when auth is first enabled.
pub fn default_guest_role() -> Role {
    Role {
        role: GUEST_ROLE.to_string(),
        permissions: all_access(),
        grant: None,
        revoke: None,
    }
}

fn all_access() -> Permissions {
    Permissions {
        kv: RwPermission {
            read: Some(vec!["/*".to_string()]),
            write: Some(vec!["/*".to_string()]),
        },
    }
}

/// Why a JSON body is not a user or role (the handler reports any of them the same way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not one complete JSON value.
    Syntax { reason: String },
    /// A field holds the wrong JSON type.
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: String,
    },
}

/// Parses the first JSON value of `body`, as Go's `json.Decoder.Decode` does (what follows it
/// is not read).
pub fn first_json_value(body: &[u8]) -> Result<Value, DecodeError> {
    match serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .next()
    {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(DecodeError::Syntax {
            reason: e.to_string(),
        }),
        None => Err(DecodeError::Syntax {
            reason: "empty body".to_string(),
        }),
    }
}

fn type_name(value: &Value) -> String {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
    .to_string()
}

/// The value of field `name` in a Go-decoded object: an exact key first, else one equal
/// ignoring ASCII case; `None` when absent or `null`.
fn field<'a>(object: &'a serde_json::Map<String, Value>, name: &'static str) -> Option<&'a Value> {
    let found = object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })?;
    (!found.is_null()).then_some(found)
}

/// An object, or `None` for `null` (Go leaves the target untouched).
fn as_object<'a>(
    value: &'a Value,
    field_name: &'static str,
) -> Result<Option<&'a serde_json::Map<String, Value>>, DecodeError> {
    match value {
        Value::Null => Ok(None),
        Value::Object(object) => Ok(Some(object)),
        other => Err(DecodeError::WrongType {
            field: field_name,
            expected: "object",
            found: type_name(other),
        }),
    }
}

fn string_field(
    object: &serde_json::Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, DecodeError> {
    match field(object, name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(DecodeError::WrongType {
            field: name,
            expected: "string",
            found: type_name(other),
        }),
    }
}

fn string_list_field(
    object: &serde_json::Map<String, Value>,
    name: &'static str,
) -> Result<Option<Vec<String>>, DecodeError> {
    match field(object, name) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Null => Ok(String::new()),
                Value::String(text) => Ok(text.clone()),
                other => Err(DecodeError::WrongType {
                    field: name,
                    expected: "string",
                    found: type_name(other),
                }),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(DecodeError::WrongType {
            field: name,
            expected: "array",
            found: type_name(other),
        }),
    }
}

/// A user from JSON (a request body or a stored record).
pub fn decode_user(value: &Value) -> Result<User, DecodeError> {
    let mut user = User::default();
    let Some(object) = as_object(value, "user")? else {
        return Ok(user);
    };
    user.user = string_field(object, "user")?.unwrap_or_default();
    user.password = string_field(object, "password")?.unwrap_or_default();
    user.roles = string_list_field(object, "roles")?;
    user.grant = string_list_field(object, "grant")?.unwrap_or_default();
    user.revoke = string_list_field(object, "revoke")?.unwrap_or_default();
    Ok(user)
}

fn decode_permissions(value: &Value) -> Result<Permissions, DecodeError> {
    let mut permissions = Permissions::default();
    let Some(object) = as_object(value, "permissions")? else {
        return Ok(permissions);
    };
    if let Some(kv) = field(object, "kv") {
        if let Some(kv) = as_object(kv, "kv")? {
            permissions.kv.read = string_list_field(kv, "read")?;
            permissions.kv.write = string_list_field(kv, "write")?;
        }
    }
    Ok(permissions)
}

/// A role from JSON (a request body or a stored record).
pub fn decode_role(value: &Value) -> Result<Role, DecodeError> {
    let mut role = Role::default();
    let Some(object) = as_object(value, "role")? else {
        return Ok(role);
    };
    role.role = string_field(object, "role")?.unwrap_or_default();
    if let Some(permissions) = field(object, "permissions") {
        role.permissions = decode_permissions(permissions)?;
    }
    if let Some(grant) = field(object, "grant") {
        role.grant = Some(decode_permissions(grant)?);
    }
    if let Some(revoke) = field(object, "revoke") {
        role.revoke = Some(decode_permissions(revoke)?);
    }
    Ok(role)
}

fn push_list(out: &mut String, list: Option<&[String]>) {
    match list {
        None => out.push_str("null"),
        Some(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                push_string(out, item);
            }
            out.push(']');
        }
    }
}

fn push_permissions(out: &mut String, permissions: &Permissions) {
    out.push_str("{\"kv\":{\"read\":");
    push_list(out, permissions.kv.read.as_deref());
    out.push_str(",\"write\":");
    push_list(out, permissions.kv.write.as_deref());
    out.push_str("}}");
}

/// Go's encoding of `v2auth.Role` (`grant`/`revoke` only when present).
pub fn push_role(out: &mut String, role: &Role) {
    out.push_str("{\"role\":");
    push_string(out, &role.role);
    out.push_str(",\"permissions\":");
    push_permissions(out, &role.permissions);
    if let Some(grant) = &role.grant {
        out.push_str(",\"grant\":");
        push_permissions(out, grant);
    }
    if let Some(revoke) = &role.revoke {
        out.push_str(",\"revoke\":");
        push_permissions(out, revoke);
    }
    out.push('}');
}

/// Go's encoding of `v2auth.User`: `password`, `grant` and `revoke` only when non-empty,
/// `roles` always (`null` when absent).
pub fn push_user(out: &mut String, user: &User) {
    out.push_str("{\"user\":");
    push_string(out, &user.user);
    if !user.password.is_empty() {
        out.push_str(",\"password\":");
        push_string(out, &user.password);
    }
    out.push_str(",\"roles\":");
    push_list(out, user.roles.as_deref());
    if !user.grant.is_empty() {
        out.push_str(",\"grant\":");
        push_list(out, Some(&user.grant));
    }
    if !user.revoke.is_empty() {
        out.push_str(",\"revoke\":");
        push_list(out, Some(&user.revoke));
    }
    out.push('}');
}

/// etcd's `userWithRoles`: the user name and its roles as full role objects (`roles` left out
/// when there are none).
pub fn push_user_with_roles(out: &mut String, name: &str, roles: &[Role]) {
    out.push_str("{\"user\":");
    push_string(out, name);
    if !roles.is_empty() {
        out.push_str(",\"roles\":[");
        for (n, role) in roles.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            push_role(out, role);
        }
        out.push(']');
    }
    out.push('}');
}

/// The user named root always carries the root role (etcd's `attachRootRole`).
pub fn with_root_role_attached(mut user: User) -> User {
    if user.user == ROOT_USER {
        let roles = user.roles.get_or_insert_with(Vec::new);
        if !roles.iter().any(|r| r == ROOT_ROLE) {
            roles.push(ROOT_ROLE.to_string());
        }
    }
    user
}

/// `old` updated by a request: a new password hash when one was given (`hash` is called only
/// then), roles granted (a duplicate is a 409) and revoked (a missing one is a 409), the result
/// sorted.
pub fn merge_user(
    old: &User,
    request: &User,
    hash: impl FnOnce(&str) -> String,
) -> Result<User, AuthError> {
    let password = if request.password.is_empty() {
        old.password.clone()
    } else {
        hash(&request.password)
    };
    let mut roles: Vec<String> = old.roles.clone().unwrap_or_default();
    roles.sort();
    roles.dedup();
    for role in &request.grant {
        if roles.contains(role) {
            return Err(auth_error(
                409,
                format!("Granting duplicate role {role} for user {}", request.user),
            ));
        }
        roles.push(role.clone());
    }
    for role in &request.revoke {
        let Some(at) = roles.iter().position(|r| r == role) else {
            return Err(auth_error(
                409,
                format!("Revoking ungranted role {role} for user {}", request.user),
            ));
        };
        roles.remove(at);
    }
    roles.sort();
    Ok(User {
        user: old.user.clone(),
        password,
        roles: Some(roles),
        grant: Vec::new(),
        revoke: Vec::new(),
    })
}

fn grant_list(
    current: &Option<Vec<String>>,
    added: &Option<Vec<String>>,
    kind: &str,
) -> Result<Vec<String>, AuthError> {
    let mut list: Vec<String> = current.clone().unwrap_or_default();
    list.sort();
    list.dedup();
    for pattern in added.iter().flatten() {
        if list.contains(pattern) {
            return Err(auth_error(
                409,
                format!("Granting duplicate {kind} permission {pattern}"),
            ));
        }
        list.push(pattern.clone());
    }
    list.sort();
    Ok(list)
}

fn revoke_list(current: &Option<Vec<String>>, removed: &Option<Vec<String>>) -> Vec<String> {
    let mut list: Vec<String> = current.clone().unwrap_or_default();
    list.sort();
    list.dedup();
    list.retain(|pattern| !removed.iter().flatten().any(|r| r == pattern));
    list
}

/// `old` with the request's grant and revoke applied, as etcd's `Role.merge`: a grant of a
/// pattern already present is a 409; revoking an absent one is skipped.
pub fn merge_role(old: &Role, request: &Role) -> Result<Role, AuthError> {
    let mut permissions = old.permissions.clone();
    if let Some(grant) = &request.grant {
        permissions.kv = RwPermission {
            read: Some(grant_list(&permissions.kv.read, &grant.kv.read, "read")?),
            write: Some(grant_list(&permissions.kv.write, &grant.kv.write, "write")?),
        };
    }
    if let Some(revoke) = &request.revoke {
        permissions.kv = RwPermission {
            read: Some(revoke_list(&permissions.kv.read, &revoke.kv.read)),
            write: Some(revoke_list(&permissions.kv.write, &revoke.kv.write)),
        };
    }
    Ok(Role {
        role: old.role.clone(),
        permissions,
        grant: None,
        revoke: None,
    })
}

/// Go's `Permissions.IsEmpty` on an optional grant/revoke.
pub fn is_empty_permissions(permissions: &Option<Permissions>) -> bool {
    match permissions {
        None => true,
        Some(p) => {
            p.kv.read.as_ref().is_none_or(Vec::is_empty)
                && p.kv.write.as_ref().is_none_or(Vec::is_empty)
        }
    }
}

/// Whether `role` lets a request reach `key` (the request path below `/v2/keys`, decoded, not
/// cleaned). A pattern ending in `*` matches every key starting with what precedes the `*`;
/// any other pattern must equal the key. With `recursive`, only `*` patterns count. The root
/// role reaches everything. An empty pattern matches nothing (etcd would fail on it).
pub fn role_allows(role: &Role, key: &str, write: bool, recursive: bool) -> bool {
    if role.role == ROOT_ROLE {
        return true;
    }
    let patterns = if write {
        &role.permissions.kv.write
    } else {
        &role.permissions.kv.read
    };
    patterns
        .iter()
        .flatten()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => !recursive && !pattern.is_empty() && key == pattern,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role_with(read: &[&str], write: &[&str]) -> Role {
        Role {
            role: "r".into(),
            permissions: Permissions {
                kv: RwPermission {
                    read: Some(read.iter().map(|s| s.to_string()).collect()),
                    write: Some(write.iter().map(|s| s.to_string()).collect()),
                },
            },
            grant: None,
            revoke: None,
        }
    }

    #[test]
    fn patterns_match_prefixes_and_exact_keys() {
        let role = role_with(&["/r1/*", "/exact"], &["/w"]);
        assert!(role_allows(&role, "/r1/a", false, false));
        assert!(role_allows(&role, "/r1/", false, true));
        assert!(!role_allows(&role, "/r1", false, true), "uncleaned path");
        assert!(!role_allows(&role, "/r1", false, false));
        assert!(role_allows(&role, "/exact", false, false));
        assert!(
            !role_allows(&role, "/exact", false, true),
            "recursive needs *"
        );
        assert!(!role_allows(&role, "/exact/", false, false));
        assert!(
            !role_allows(&role, "/r1/a", true, false),
            "read is not write"
        );
        assert!(role_allows(&role, "/w", true, false));
        assert!(role_allows(&root_role(), "", true, true));
        assert!(!role_allows(&role_with(&[""], &[]), "", false, false));
        assert!(role_allows(&role_with(&["*"], &[]), "", false, true));
    }

    #[test]
    fn decoding_follows_go() {
        let value = first_json_value(
            br#"{"USER":"a","Password":"p","roles":null,"grant":["x",null],"other":1} junk"#,
        )
        .unwrap();
        let user = decode_user(&value).unwrap();
        assert_eq!(user.user, "a");
        assert_eq!(user.password, "p");
        assert_eq!(user.roles, None);
        assert_eq!(user.grant, vec!["x".to_string(), String::new()]);
        assert!(decode_user(&first_json_value(br#"{"user":1}"#).unwrap()).is_err());
        assert!(decode_user(&first_json_value(b"[]").unwrap()).is_err());
        assert_eq!(
            decode_user(&first_json_value(b"null").unwrap()).unwrap(),
            User::default()
        );
        assert!(first_json_value(b"").is_err());
        assert!(first_json_value(b"{\"user\":").is_err());
        let role = decode_role(
            &first_json_value(br#"{"role":"r","grant":{"kv":{"read":["/a"]}},"revoke":null}"#)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            role.grant.as_ref().unwrap().kv.read,
            Some(vec!["/a".into()])
        );
        assert_eq!(role.grant.as_ref().unwrap().kv.write, None);
        assert_eq!(role.revoke, None);
    }

    #[test]
    fn encoding_keeps_null_and_empty_apart() {
        let mut out = String::new();
        push_role(
            &mut out,
            &Role {
                role: "r".into(),
                ..Role::default()
            },
        );
        assert_eq!(
            out,
            r#"{"role":"r","permissions":{"kv":{"read":null,"write":null}}}"#
        );
        let mut out = String::new();
        push_user(
            &mut out,
            &User {
                user: "u<".into(),
                roles: Some(vec![]),
                ..User::default()
            },
        );
        assert_eq!(out, r#"{"user":"u\u003c","roles":[]}"#);
        let mut out = String::new();
        push_user_with_roles(&mut out, "u", &[]);
        assert_eq!(out, r#"{"user":"u"}"#);
    }

    #[test]
    fn user_merge_rules() {
        let old = User {
            user: "u".into(),
            password: "h".into(),
            roles: None,
            ..User::default()
        };
        let grant = User {
            user: "u".into(),
            grant: vec!["b".into(), "a".into()],
            ..User::default()
        };
        let merged = merge_user(&old, &grant, |_| panic!("no password given")).unwrap();
        assert_eq!(merged.roles, Some(vec!["a".into(), "b".into()]));
        assert_eq!(merged.password, "h");
        let again = merge_user(&merged, &grant, |_| unreachable!()).unwrap_err();
        assert_eq!(again.message, "auth: Granting duplicate role b for user u");
        assert_eq!(again.status, 409);
        let revoke = User {
            user: "u".into(),
            revoke: vec!["z".into()],
            ..User::default()
        };
        let err = merge_user(&merged, &revoke, |_| unreachable!()).unwrap_err();
        assert_eq!(err.message, "auth: Revoking ungranted role z for user u");
        let nothing = User {
            user: "u".into(),
            ..User::default()
        };
        // A nil role list becomes an empty one: not "unchanged" by Go's DeepEqual.
        assert_ne!(merge_user(&old, &nothing, |_| unreachable!()).unwrap(), old);
        let password = User {
            user: "u".into(),
            password: "new".into(),
            ..User::default()
        };
        assert_eq!(
            merge_user(&old, &password, |p| format!("H({p})"))
                .unwrap()
                .password,
            "H(new)"
        );
    }

    #[test]
    fn role_merge_rules() {
        let old = role_with(&["/a"], &[]);
        let grant = Role {
            role: "r".into(),
            grant: Some(Permissions {
                kv: RwPermission {
                    read: Some(vec!["/c".into(), "/b".into()]),
                    write: None,
                },
            }),
            ..Role::default()
        };
        let merged = merge_role(&old, &grant).unwrap();
        assert_eq!(
            merged.permissions.kv.read,
            Some(vec!["/a".into(), "/b".into(), "/c".into()])
        );
        assert_eq!(merged.permissions.kv.write, Some(vec![]));
        let err = merge_role(&merged, &grant).unwrap_err();
        assert_eq!(err.message, "auth: Granting duplicate read permission /c");
        let revoke = Role {
            role: "r".into(),
            revoke: Some(Permissions {
                kv: RwPermission {
                    read: Some(vec!["/a".into(), "/zz".into()]),
                    write: None,
                },
            }),
            ..Role::default()
        };
        let revoked = merge_role(&merged, &revoke).unwrap();
        assert_eq!(
            revoked.permissions.kv.read,
            Some(vec!["/b".into(), "/c".into()])
        );
        let unchanged = merge_role(
            &revoked,
            &Role {
                role: "r".into(),
                revoke: Some(Permissions {
                    kv: RwPermission {
                        read: Some(vec!["/zz".into()]),
                        write: None,
                    },
                }),
                ..Role::default()
            },
        )
        .unwrap();
        assert_eq!(unchanged, revoked);
        assert!(is_empty_permissions(&None));
        assert!(is_empty_permissions(&Some(Permissions::default())));
        assert!(!is_empty_permissions(&grant.grant));
    }
}

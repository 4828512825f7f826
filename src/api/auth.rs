//! etcd's v2 auth: the `/v2/auth/*` endpoints, HTTP Basic credentials, and the access checks
//! on `/v2/keys` and on `/v2/members` writes (v2-api.md §6.6, checked against etcd 3.4.23).
//!
//! The records (users, roles, the enabled flag) live in the store's internal namespace, are
//! written only through Raft and cost etcd indexes exactly as etcd's do: see `auth/records.rs`.
//!
//! Passwords are salted PBKDF2-HMAC-SHA-256 strings instead of bcrypt ([`password`]), checked
//! in constant time with a bounded in-memory cache of accepted passwords, so a Basic-auth
//! request costs one HMAC once its password has been verified.
//!
//! Not done: client-certificate common names as user names (raftkv serves no TLS), and the
//! rolling-upgrade 500 (every raftkv member has auth). Request bodies are read up to 64 KiB
//! (etcd reads any size); an empty permission pattern matches nothing (etcd fails on it).

mod basic;
pub mod digest;
pub mod model;
pub mod password;
mod records;

pub(crate) use records::ENABLED_KEY;

use parking_lot::Mutex;
use tiny_http::Request;

use crate::api::http::Reply;
use crate::api::render::message_json;
use crate::node::{ids::format_id, Node};
use crate::store::{ErrorCode, V2Error};

pub use basic::{decode_base64_std, parse_basic_credentials};
use model::{
    decode_role, decode_user, first_json_value, is_empty_permissions, push_role, push_user,
    push_user_with_roles, AuthError, Role,
};
use records::{http_error, internal_error, AuthStore};

/// Largest auth request body read.
const MAX_AUTH_BODY_BYTES: usize = 64 * 1024;

/// Serialises auth read-check-write sequences within this process.
static AUTH_WRITES: Mutex<()> = Mutex::new(());

/// The `Authorization` header as Go's `Header.Get` sees it: the first one, `None` when
/// absent or empty.
fn authorization(request: &Request) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_string())
        .filter(|value| !value.is_empty())
}

/// The access check etcd runs on `/v2/keys` after validating a request. `key` is the request
/// path after `/v2/keys`, decoded but not cleaned (`""` for `/v2/keys` itself, a trailing
/// slash kept). Without an `Authorization` header the guest role decides; with one, only a
/// valid user's roles do. Any method but GET and HEAD needs write access. With `recursive`,
/// only `*` patterns grant access. Denial: error 110, HTTP 401, index 0.
pub fn check_key_access(
    node: &Node,
    request: &Request,
    method: &str,
    key: &str,
    recursive: bool,
) -> Result<(), V2Error> {
    let store = AuthStore { node };
    let write = method != "GET" && method != "HEAD";
    if store.has_key_access(authorization(request).as_deref(), key, write, recursive) {
        Ok(())
    } else {
        Err(V2Error::new(
            ErrorCode::Unauthorized,
            "Insufficient credentials",
            0,
        ))
    }
}

/// The 401 of `/v2/auth` and `/v2/members`: no cluster ID header.
fn insufficient_credentials() -> Reply {
    Reply::json(401, message_json("Insufficient credentials"))
}

/// etcd's check on `/v2/members`, run after its method check: writes (POST, PUT, DELETE)
/// need a root user once auth is enabled. Returns the 401 reply when refused.
pub fn check_members_write(node: &Node, request: &Request, method: &str) -> Option<Reply> {
    if !matches!(method, "POST" | "PUT" | "DELETE") {
        return None;
    }
    let store = AuthStore { node };
    (!store.has_root_access(authorization(request).as_deref())).then(insufficient_credentials)
}

/// What a `/v2/auth/...` path addresses.
enum Target<'a> {
    Enable,
    Users,
    User(&'a str),
    Roles,
    Role(&'a str),
    InvalidPath,
    NotFound,
}

/// Go's `ServeMux` registration of the auth handlers, then their own path split.
fn target(path: &str) -> Target<'_> {
    let Some(below) = path.strip_prefix("/v2/auth") else {
        return Target::NotFound;
    };
    match below {
        "/enable" => return Target::Enable,
        "/users" => return Target::Users,
        "/roles" => return Target::Roles,
        _ => {}
    }
    let (subtree, rest) = if let Some(rest) = below.strip_prefix("/users/") {
        ("users", rest)
    } else if let Some(rest) = below.strip_prefix("/roles/") {
        ("roles", rest)
    } else {
        return Target::NotFound;
    };
    // The path is canonical here (the router redirected the rest); cleaning drops a trailing
    // slash only.
    let name = rest.strip_suffix('/').unwrap_or(rest);
    match (subtree, name) {
        ("users", "") => Target::Users,
        ("roles", "") => Target::Roles,
        (_, name) if name.contains('/') => Target::InvalidPath,
        ("users", name) => Target::User(name),
        (_, name) => Target::Role(name),
    }
}

fn error_reply(error: &AuthError, cluster_id: &str) -> Reply {
    Reply::json(error.status, message_json(&error.message))
        .header("X-Etcd-Cluster-Id", cluster_id.to_string())
}

/// A success: JSON bodies end with a newline (Go's encoder); PUT/DELETE acknowledgements have
/// no body at all.
fn json_reply(status: u16, mut body: String, cluster_id: &str) -> Reply {
    if !body.is_empty() {
        body.push('\n');
    }
    Reply::json(status, body).header("X-Etcd-Cluster-Id", cluster_id.to_string())
}

/// Serves `/v2/auth/...` (`path` decoded and canonical).
pub fn serve(node: &Node, request: &mut Request, method: &str, path: &str) -> Reply {
    let target = target(path);
    let allowed: &[&str] = match target {
        Target::NotFound => return Reply::not_found(),
        Target::InvalidPath => {
            return Reply::json(400, message_json("Invalid path"));
        }
        Target::Users | Target::Roles => &["GET"],
        Target::Enable | Target::User(_) | Target::Role(_) => &["GET", "PUT", "DELETE"],
    };
    if !allowed.contains(&method) {
        return Reply::method_not_allowed(allowed);
    }
    let store = AuthStore { node };
    let open = matches!(target, Target::Enable) && method == "GET";
    if !open && !store.has_root_access(authorization(request).as_deref()) {
        return insufficient_credentials();
    }
    let cluster_id = format_id(node.cluster_id);
    let body = if method == "PUT" {
        // A body cut short is no JSON object: refused as invalid JSON, as etcd does.
        crate::api::request_body::read_whole_body(request, MAX_AUTH_BODY_BYTES).unwrap_or_default()
    } else {
        Vec::new()
    };
    let result = if method == "GET" {
        read(&store, &target)
    } else {
        let _serialised = AUTH_WRITES.lock();
        match node.barrier() {
            Ok(_) => write(&store, &target, method, &body),
            Err(_) => Err(internal_error()),
        }
    };
    match result {
        Ok((status, body)) => json_reply(status, body, &cluster_id),
        Err(error) => error_reply(&error, &cluster_id),
    }
}

/// Answers a GET: (status, body without the newline).
fn read(store: &AuthStore, target: &Target) -> Result<(u16, String), AuthError> {
    let mut out = String::new();
    match target {
        Target::Enable => {
            out.push_str(&format!("{{\"enabled\":{}}}", store.enabled()));
        }
        Target::Users => {
            let names = store.all_users();
            if names.is_empty() {
                out.push_str("{\"users\":null}");
            } else {
                out.push_str("{\"users\":[");
                for (n, name) in names.iter().enumerate() {
                    let user = store.get_user(name)?;
                    let roles: Vec<Role> = user
                        .roles
                        .iter()
                        .flatten()
                        .filter_map(|r| store.get_role(r).ok())
                        .collect();
                    if n > 0 {
                        out.push(',');
                    }
                    push_user_with_roles(&mut out, &user.user, &roles);
                }
                out.push_str("]}");
            }
        }
        Target::User(name) => {
            let user = store.get_user(name)?;
            let roles = user
                .roles
                .iter()
                .flatten()
                .map(|r| store.get_role(r))
                .collect::<Result<Vec<_>, _>>()?;
            push_user_with_roles(&mut out, &user.user, &roles);
        }
        Target::Roles => {
            out.push_str("{\"roles\":[");
            for (n, name) in store.all_roles().iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                push_role(&mut out, &store.get_role(name)?);
            }
            out.push_str("]}");
        }
        Target::Role(name) => push_role(&mut out, &store.get_role(name)?),
        Target::InvalidPath | Target::NotFound => unreachable!("answered before dispatch"),
    }
    Ok((200, out))
}

/// Answers a PUT or DELETE: (status, body without the newline; empty for no body).
fn write(
    store: &AuthStore,
    target: &Target,
    method: &str,
    body: &[u8],
) -> Result<(u16, String), AuthError> {
    match (target, method) {
        (Target::Enable, "PUT") => store.enable().map(|()| (200, String::new())),
        (Target::Enable, _) => store.disable().map(|()| (200, String::new())),
        (Target::User(name), "PUT") => put_user(store, name, body),
        (Target::User(name), _) => store.delete_user(name).map(|()| (200, String::new())),
        (Target::Role(name), "PUT") => put_role(store, name, body),
        (Target::Role(name), _) => store.delete_role(name).map(|()| (200, String::new())),
        _ => unreachable!("the method check leaves only GET on the lists"),
    }
}

fn put_user(store: &AuthStore, name: &str, body: &[u8]) -> Result<(u16, String), AuthError> {
    let request = first_json_value(body)
        .and_then(|value| decode_user(&value))
        .map_err(|_| http_error(400, "Invalid JSON in request body."))?;
    if request.user != name {
        return Err(http_error(
            400,
            "User JSON name does not match the name in the URL",
        ));
    }
    let has_roles = request.roles.as_ref().is_some_and(|r| !r.is_empty());
    let (mut out, created) = if request.grant.is_empty() && request.revoke.is_empty() {
        if has_roles {
            (store.create_user(request)?, false)
        } else if store.get_user(name).is_ok() {
            (store.update_user(&request)?, false)
        } else {
            (store.create_user(request)?, true)
        }
    } else {
        if has_roles {
            return Err(http_error(
                400,
                "User JSON contains both roles and grant/revoke",
            ));
        }
        (store.update_user(&request)?, false)
    };
    out.password.clear();
    let mut text = String::new();
    push_user(&mut text, &out);
    Ok((if created { 201 } else { 200 }, text))
}

fn put_role(store: &AuthStore, name: &str, body: &[u8]) -> Result<(u16, String), AuthError> {
    let request = first_json_value(body)
        .and_then(|value| decode_role(&value))
        .map_err(|_| http_error(400, "Invalid JSON in request body."))?;
    if request.role != name {
        return Err(http_error(
            400,
            "Role JSON name does not match the name in the URL",
        ));
    }
    let mut text = String::new();
    if is_empty_permissions(&request.grant) && is_empty_permissions(&request.revoke) {
        store.create_role(&request)?;
        push_role(&mut text, &request);
        return Ok((201, text));
    }
    if !is_empty_permissions(&Some(request.permissions.clone())) {
        return Err(http_error(
            400,
            "Role JSON contains both permissions and grant/revoke",
        ));
    }
    push_role(&mut text, &store.update_role(&request)?);
    Ok((200, text))
}

/// Fuzz entry point for the auth decoders: Basic credentials, base64, stored password hashes,
/// user and role JSON (decoded, re-encoded, decoded again to the same record) and the route
/// split must never panic on any bytes.
#[doc(hidden)]
pub fn fuzz_auth_decoders(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = parse_basic_credentials(&text);
    let _ = decode_base64_std(&text);
    let _ = password::check_password(&text, "x");
    let _ = target(&text);
    if let Ok(value) = first_json_value(data) {
        if let Ok(user) = decode_user(&value) {
            let mut encoded = String::new();
            push_user(&mut encoded, &user);
            let again = first_json_value(encoded.as_bytes())
                .and_then(|v| decode_user(&v))
                .expect("an encoded user decodes");
            assert_eq!(again, user, "user JSON round trip of {encoded}");
        }
        if let Ok(role) = decode_role(&value) {
            let mut encoded = String::new();
            push_role(&mut encoded, &role);
            let again = first_json_value(encoded.as_bytes())
                .and_then(|v| decode_role(&v))
                .expect("an encoded role decodes");
            assert_eq!(again, role, "role JSON round trip of {encoded}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_survive_random_and_mutated_inputs() {
        let seeds: [&[u8]; 6] = [
            br#"{"user":"a","password":"p","roles":["r"],"grant":["g"],"revoke":["v"]}"#,
            br#"{"role":"r","permissions":{"kv":{"read":["/a/*"],"write":null}},"grant":{"kv":{}}}"#,
            b"Basic cm9vdDpyb290cHc=",
            b"pbkdf2-sha256$1$00$0000000000000000000000000000000000000000000000000000000000000000",
            b"/v2/auth/users/a/b/",
            br#"{"ROLE":"x","Permissions":{"KV":{"Read":[null,"\u003c"]}}}"#,
        ];
        let seed = 0x5eed_a11c_u64;
        let mut rng = crate::raft::rng::SplitMix64::new(seed);
        for round in 0..3000 {
            let mut data = seeds[rng.below(seeds.len() as u64) as usize].to_vec();
            for _ in 0..=rng.below(4) {
                let at = rng.below(data.len() as u64 + 1) as usize;
                match rng.below(3) {
                    0 if at < data.len() => data[at] = rng.next_u64() as u8,
                    1 if at < data.len() => {
                        data.remove(at);
                    }
                    _ => data.insert(at, b"\"{}[]:,\\/*$ \xff"[rng.below(13) as usize]),
                }
            }
            let outcome = std::panic::catch_unwind(|| fuzz_auth_decoders(&data));
            assert!(
                outcome.is_ok(),
                "seed {seed:#x} round {round}: panicked on {:?}",
                String::from_utf8_lossy(&data)
            );
        }
    }

    #[test]
    fn auth_paths_route_like_etcd() {
        assert!(matches!(target("/v2/auth/enable"), Target::Enable));
        assert!(matches!(target("/v2/auth/enable/"), Target::NotFound));
        assert!(matches!(target("/v2/auth"), Target::NotFound));
        assert!(matches!(target("/v2/auth/"), Target::NotFound));
        assert!(matches!(target("/v2/auth/users"), Target::Users));
        assert!(matches!(target("/v2/auth/users/"), Target::Users));
        assert!(matches!(target("/v2/auth/users/a"), Target::User("a")));
        assert!(matches!(target("/v2/auth/users/a/"), Target::User("a")));
        assert!(matches!(target("/v2/auth/users/a/b"), Target::InvalidPath));
        assert!(matches!(target("/v2/auth/roles/"), Target::Roles));
        assert!(matches!(target("/v2/auth/roles/r"), Target::Role("r")));
        assert!(matches!(target("/v2/auth/rolesx"), Target::NotFound));
    }
}

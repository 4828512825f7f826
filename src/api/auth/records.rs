//! The v2 auth records and the rules that read and change them (etcd's `v2auth` store).
//!
//! Auth state must be replicated and survive restarts, so it is kept in the store's internal
//! namespace (invisible under `/v2/keys`), written only through Raft as `Command::Internal` and
//! read back with `Store::internal_value`:
//!
//! | key               | value                                                          |
//! |-------------------|----------------------------------------------------------------|
//! | `/2`, `/2/users`, `/2/roles` | `dir` (etcd's directories, kept for index accounting) |
//! | `/2/enabled`      | `true` or `false` (JSON)                                       |
//! | `/2/users/<name>` | the user as etcd stores it: `{"user","password":<hash>,"roles"}`; `""` once deleted |
//! | `/2/roles/<name>` | the role as etcd stores it: `{"role","permissions":{"kv":…}}`; `""` once deleted |
//!
//! Internal writes cannot remove a key, so a delete writes the empty value, which every read
//! treats as absent. Each write consumes one etcd index, as etcd's store writes under `/2` do:
//! the first auth write that reaches the store creates `/2`, `/2/users/`, `/2/roles/` and
//! `/2/enabled` first (+4), like etcd's `ensureAuthDirectories`; a failed delete still pays
//! for those, as in etcd. The first enable also creates the `guest` role (+1).
//!
//! Consistency. Every write operation (read, check, write) runs under one process-wide lock
//! after a ReadIndex barrier, so operations through one member never interleave and see every
//! committed record. Two members racing to create the same user can both succeed (the internal
//! write is unconditional; etcd's `prevExist=false` create would fail the second one): a known
//! difference, harmless for the records themselves (the later write wins everywhere).

use crate::node::Node;
use crate::store::Command;

use super::model::{
    auth_error, decode_role, decode_user, default_guest_role, first_json_value, merge_role,
    merge_user, push_role, push_user, role_allows, root_role, with_root_role_attached, AuthError,
    Role, User, GUEST_ROLE, ROOT_ROLE, ROOT_USER,
};
use super::{parse_basic_credentials, password};

/// The internal-namespace prefix of auth records (etcd's `StorePermsPrefix`).
const PREFIX: &str = "/2";
/// Holds `true` while auth is enabled (also read, through the node, on every request).
pub(crate) const ENABLED_KEY: &str = "/2/enabled";
const USERS_PREFIX: &str = "/2/users/";
const ROLES_PREFIX: &str = "/2/roles/";
/// What the directory markers hold.
const DIR_MARKER: &str = "dir";

pub(super) fn internal_error() -> AuthError {
    AuthError {
        status: 500,
        message: "Internal Server Error".to_string(),
    }
}

pub(super) fn http_error(status: u16, message: &str) -> AuthError {
    AuthError {
        status,
        message: message.to_string(),
    }
}

/// Reads and writes of the auth records through one node.
pub(super) struct AuthStore<'a> {
    pub(super) node: &'a Node,
}

impl AuthStore<'_> {
    fn value(&self, key: &str) -> Option<String> {
        self.node
            .store
            .read()
            .internal_value(key)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
    }

    /// Reads the node's copy of [`ENABLED_KEY`], kept current by the Raft loop on apply, so
    /// that the check every key request makes takes no store lock.
    pub(super) fn enabled(&self) -> bool {
        self.node.auth_enabled()
    }

    pub(super) fn get_user(&self, name: &str) -> Result<User, AuthError> {
        let Some(stored) = self.value(&format!("{USERS_PREFIX}{name}")) else {
            return Err(auth_error(404, format!("User {name} does not exist.")));
        };
        let user = first_json_value(stored.as_bytes())
            .and_then(|value| decode_user(&value))
            .map_err(|_| internal_error())?;
        Ok(with_root_role_attached(user))
    }

    pub(super) fn get_role(&self, name: &str) -> Result<Role, AuthError> {
        if name == ROOT_ROLE {
            return Ok(root_role());
        }
        let Some(stored) = self.value(&format!("{ROLES_PREFIX}{name}")) else {
            return Err(auth_error(404, format!("Role {name} does not exist.")));
        };
        first_json_value(stored.as_bytes())
            .and_then(|value| decode_role(&value))
            .map_err(|_| internal_error())
    }

    /// Names of live records under `prefix`, sorted; hidden names (`_…`) are left out, as an
    /// etcd directory listing leaves them out.
    fn names_under(&self, prefix: &str) -> Vec<String> {
        self.node
            .store
            .read()
            .internal_entries_with_prefix(prefix)
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(key, _)| key[prefix.len()..].to_string())
            .filter(|name| !name.contains('/') && !name.starts_with('_'))
            .collect()
    }

    pub(super) fn all_users(&self) -> Vec<String> {
        self.names_under(USERS_PREFIX)
    }

    pub(super) fn all_roles(&self) -> Vec<String> {
        let mut names = self.names_under(ROLES_PREFIX);
        names.push(ROOT_ROLE.to_string());
        names.sort();
        names
    }

    fn propose(&self, key: &str, value: String) -> Result<(), AuthError> {
        let command = Command::Internal {
            key: key.to_string(),
            value,
        };
        match self.node.propose(command) {
            Ok(applied) => applied.outcome.map(|_| ()).map_err(|_| internal_error()),
            Err(_) => Err(internal_error()),
        }
    }

    /// etcd's `ensureAuthDirectories`: creates whichever of `/2`, `/2/users/`, `/2/roles/`
    /// and `/2/enabled` (as `false`) is missing, one write each.
    fn ensure_directories(&self) -> Result<(), AuthError> {
        for dir in [PREFIX, "/2/users", "/2/roles"] {
            if self.value(dir).is_none() {
                self.propose(dir, DIR_MARKER.to_string())?;
            }
        }
        if self.value(ENABLED_KEY).is_none() {
            self.propose(ENABLED_KEY, "false".to_string())?;
        }
        Ok(())
    }

    /// Writes a record that must not exist yet; `Ok(false)` if it does.
    fn create(&self, key: &str, value: String) -> Result<bool, AuthError> {
        self.ensure_directories()?;
        if self.value(key).is_some() {
            return Ok(false);
        }
        self.propose(key, value).map(|()| true)
    }

    /// Replaces a record (the caller has checked that it exists).
    fn update(&self, key: &str, value: String) -> Result<(), AuthError> {
        self.ensure_directories()?;
        self.propose(key, value)
    }

    /// Deletes a record; `Ok(false)` if there was none.
    fn delete(&self, key: &str) -> Result<bool, AuthError> {
        self.ensure_directories()?;
        if self.value(key).is_none() {
            return Ok(false);
        }
        self.propose(key, String::new()).map(|()| true)
    }

    pub(super) fn create_user(&self, mut user: User) -> Result<User, AuthError> {
        if user.user == ROOT_USER {
            user = with_root_role_attached(user);
        }
        if user.password.is_empty() {
            return Err(auth_error(
                400,
                format!("Cannot create user {} with an empty password", user.user),
            ));
        }
        user.password = password::hash_password(&user.password);
        let mut stored = String::new();
        push_user(&mut stored, &user);
        if !self.create(&format!("{USERS_PREFIX}{}", user.user), stored)? {
            return Err(auth_error(
                409,
                format!("User {} already exists.", user.user),
            ));
        }
        Ok(user)
    }

    pub(super) fn update_user(&self, request: &User) -> Result<User, AuthError> {
        let old = self.get_user(&request.user)?;
        let merged = merge_user(&old, request, password::hash_password)?;
        if merged == old {
            return Err(auth_error(
                400,
                "User not updated. Use grant/revoke/password to update the user.",
            ));
        }
        let mut stored = String::new();
        push_user(&mut stored, &merged);
        self.update(&format!("{USERS_PREFIX}{}", request.user), stored)?;
        Ok(merged)
    }

    pub(super) fn delete_user(&self, name: &str) -> Result<(), AuthError> {
        if self.enabled() && name == ROOT_USER {
            return Err(auth_error(
                403,
                "Cannot delete root user while auth is enabled.",
            ));
        }
        if !self.delete(&format!("{USERS_PREFIX}{name}"))? {
            return Err(auth_error(404, format!("User {name} does not exist")));
        }
        Ok(())
    }

    pub(super) fn create_role(&self, role: &Role) -> Result<(), AuthError> {
        if role.role == ROOT_ROLE {
            return Err(root_role_refusal());
        }
        let mut stored = String::new();
        push_role(&mut stored, role);
        if !self.create(&format!("{ROLES_PREFIX}{}", role.role), stored)? {
            return Err(auth_error(
                409,
                format!("Role {} already exists.", role.role),
            ));
        }
        Ok(())
    }

    pub(super) fn update_role(&self, request: &Role) -> Result<Role, AuthError> {
        if request.role == ROOT_ROLE {
            return Err(root_role_refusal());
        }
        let old = self.get_role(&request.role)?;
        let merged = merge_role(&old, request)?;
        if merged == old {
            return Err(auth_error(
                400,
                "Role not updated. Use grant/revoke to update the role.",
            ));
        }
        let mut stored = String::new();
        push_role(&mut stored, &merged);
        self.update(&format!("{ROLES_PREFIX}{}", request.role), stored)?;
        Ok(merged)
    }

    pub(super) fn delete_role(&self, name: &str) -> Result<(), AuthError> {
        if name == ROOT_ROLE {
            return Err(root_role_refusal());
        }
        if !self.delete(&format!("{ROLES_PREFIX}{name}"))? {
            return Err(auth_error(404, format!("Role {name} doesn't exist.")));
        }
        Ok(())
    }

    pub(super) fn enable(&self) -> Result<(), AuthError> {
        if self.enabled() {
            return Err(auth_error(409, "already enabled"));
        }
        if self.get_user(ROOT_USER).is_err() {
            return Err(auth_error(409, "No root user available, please create one"));
        }
        if self.get_role(GUEST_ROLE).is_err() {
            self.create_role(&default_guest_role())?;
        }
        self.update(ENABLED_KEY, "true".to_string())
    }

    pub(super) fn disable(&self) -> Result<(), AuthError> {
        if !self.enabled() {
            return Err(auth_error(409, "already disabled"));
        }
        self.update(ENABLED_KEY, "false".to_string())
    }

    /// The user named by valid Basic credentials in `authorization`, if any.
    fn user_from_basic_auth(&self, authorization: &str) -> Option<User> {
        let (name, password) = parse_basic_credentials(authorization)?;
        let user = self.get_user(&name).ok()?;
        password::check_password(&user.password, &password).then_some(user)
    }

    /// etcd's `hasRootAccess`: open while auth is disabled, else Basic credentials of a user
    /// holding the root role.
    pub(super) fn has_root_access(&self, authorization: Option<&str>) -> bool {
        if !self.enabled() {
            return true;
        }
        let Some(user) = authorization.and_then(|a| self.user_from_basic_auth(a)) else {
            return false;
        };
        user.roles.iter().flatten().any(|r| r == ROOT_ROLE)
    }

    /// etcd's `hasKeyPrefixAccess` (see [`check_key_access`]).
    pub(super) fn has_key_access(
        &self,
        authorization: Option<&str>,
        key: &str,
        write: bool,
        recursive: bool,
    ) -> bool {
        if !self.enabled() {
            return true;
        }
        let Some(authorization) = authorization else {
            // The guest role is checked without the recursive rule, as etcd does.
            return self
                .get_role(GUEST_ROLE)
                .is_ok_and(|role| role_allows(&role, key, write, false));
        };
        let Some(user) = self.user_from_basic_auth(authorization) else {
            return false;
        };
        user.roles.iter().flatten().any(|name| {
            self.get_role(name)
                .is_ok_and(|role| role_allows(&role, key, write, recursive))
        })
    }
}

fn root_role_refusal() -> AuthError {
    auth_error(
        403,
        format!("Cannot modify role {ROOT_ROLE}: is root role."),
    )
}

//! `auth enable|disable`, `user …` and `role …`.

use raftkv::client::auth;
use raftkv::client::cluster::ClusterClient;
use raftkv::client::keys::canonical_url_path;

use crate::ctl::ask_password;
use crate::ctl::Ctl;
use crate::specs::EXIT_BAD_ARGS;
use crate::{err, exit, out};

/// Prints `message` (plus a newline) on stderr and exits 1: how auth commands fail.
fn auth_fail(message: &dyn std::fmt::Display) -> ! {
    err(&format!("{}\n", message));
    exit(EXIT_BAD_ARGS)
}

impl Ctl {
    /// `mustNewAuthAPI` and friends: a synced client, and the endpoints line again.
    fn auth_client(&self) -> ClusterClient {
        let client = self.client();
        if self.debug() {
            err(&format!(
                "Cluster-Endpoints: {}\n",
                client.endpoints().join(", ")
            ));
        }
        client
    }

    fn no_arguments(&self) {
        if !self.args().is_empty() {
            auth_fail(&"No arguments accepted");
        }
    }

    fn single_name(&self, what: &str) -> String {
        if self.args().len() != 1 {
            auth_fail(&format!("Please provide a {}", what));
        }
        self.args()[0].clone()
    }
}

pub fn cmd_auth_enable(ctl: &Ctl, enable: bool) {
    ctl.no_arguments();
    let mut client = ctl.auth_client();
    if let Err(error) = auth::set_enabled(&mut client, enable, ctl.total_deadline()) {
        auth_fail(&error);
    }
    out(if enable {
        "Authentication Enabled\n"
    } else {
        "Authentication Disabled\n"
    });
}

pub fn cmd_user_list(ctl: &Ctl) {
    ctl.no_arguments();
    let mut client = ctl.auth_client();
    let users =
        auth::list_users(&mut client, ctl.total_deadline()).unwrap_or_else(|e| auth_fail(&e));
    out(&users.iter().map(|u| format!("{}\n", u)).collect::<String>());
}

pub fn cmd_user_add(ctl: &Ctl) {
    let argument = ctl.single_name("username");
    let mut client = ctl.auth_client();
    let deadline = ctl.total_deadline();
    let (user, password) = match argument.split_once(':') {
        Some((user, password)) => (user.to_string(), password.to_string()),
        None => (argument.clone(), ask_password("New password: ")),
    };
    if let Err(error) = auth::add_user(&mut client, &user, &password, deadline) {
        auth_fail(&error);
    }
    out(&format!("User {} created\n", user));
}

pub fn cmd_user_remove(ctl: &Ctl) {
    let user = ctl.single_name("username");
    let mut client = ctl.auth_client();
    if let Err(error) = auth::remove_user(&mut client, &user, ctl.total_deadline()) {
        auth_fail(&error);
    }
    out(&format!("User {} removed\n", user));
}

pub fn cmd_user_get(ctl: &Ctl) {
    let name = ctl.single_name("username");
    let mut client = ctl.auth_client();
    let user =
        auth::get_user(&mut client, &name, ctl.total_deadline()).unwrap_or_else(|e| auth_fail(&e));
    out(&format!(
        "User: {}\nRoles: {}\n",
        user.user,
        user.roles.join(" ")
    ));
}

pub fn cmd_user_passwd(ctl: &Ctl) {
    let user = ctl.single_name("username");
    let mut client = ctl.auth_client();
    let deadline = ctl.total_deadline();
    let password = ask_password("New password: ");
    if let Err(error) = auth::change_password(&mut client, &user, &password, deadline) {
        auth_fail(&error);
    }
    out("Password updated\n");
}

pub fn cmd_user_grant(ctl: &Ctl, grant: bool) {
    let roles = ctl.command.list("roles");
    if roles.is_empty() {
        auth_fail(&"No roles specified; please use `--roles`");
    }
    let deadline = ctl.total_deadline();
    let user = ctl.single_name("username");
    let mut client = ctl.auth_client();
    if let Err(error) = auth::grant_or_revoke_user(&mut client, &user, &roles, grant, deadline) {
        auth_fail(&error);
    }
    out(&format!("User {} updated\n", user));
}

pub fn cmd_role_list(ctl: &Ctl) {
    ctl.no_arguments();
    let mut client = ctl.auth_client();
    let roles =
        auth::list_roles(&mut client, ctl.total_deadline()).unwrap_or_else(|e| auth_fail(&e));
    out(&roles.iter().map(|r| format!("{}\n", r)).collect::<String>());
}

pub fn cmd_role_add(ctl: &Ctl) {
    let role = ctl.single_name("role name");
    let mut client = ctl.auth_client();
    let deadline = ctl.total_deadline();
    if auth::get_role(&mut client, &role, deadline).is_ok() {
        auth_fail(&format!("Role {} already exists", role));
    }
    if let Err(error) = auth::add_role(&mut client, &role, deadline) {
        auth_fail(&error);
    }
    out(&format!("Role {} created\n", role));
}

pub fn cmd_role_remove(ctl: &Ctl) {
    let role = ctl.single_name("role name");
    let mut client = ctl.auth_client();
    if let Err(error) = auth::remove_role(&mut client, &role, ctl.total_deadline()) {
        auth_fail(&error);
    }
    out(&format!("Role {} removed\n", role));
}

pub fn cmd_role_get(ctl: &Ctl) {
    let name = ctl.single_name("role name");
    let mut client = ctl.auth_client();
    let role =
        auth::get_role(&mut client, &name, ctl.total_deadline()).unwrap_or_else(|e| auth_fail(&e));
    let mut text = format!("Role: {}\nKV Read:\n", role.role);
    for path in role.permissions.kv.read.iter().flatten() {
        text.push_str(&format!("\t{}\n", path));
    }
    text.push_str("KV Write:\n");
    for path in role.permissions.kv.write.iter().flatten() {
        text.push_str(&format!("\t{}\n", path));
    }
    out(&text);
}

pub fn cmd_role_grant(ctl: &Ctl, grant: bool) {
    let path = ctl.command.text("path").unwrap_or("").to_string();
    if path.is_empty() {
        auth_fail(&"No path specified; please use `--path`");
    }
    let canonical = canonical_url_path(&path);
    if canonical != path {
        auth_fail(&format!(
            "Not canonical path; please use `--path={}`",
            canonical
        ));
    }
    let chosen = [
        (ctl.command.bool("read"), auth::Permission::Read),
        (ctl.command.bool("write"), auth::Permission::Write),
        (ctl.command.bool("readwrite"), auth::Permission::ReadWrite),
    ];
    let set: Vec<auth::Permission> = chosen
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, p)| *p)
        .collect();
    if set.len() != 1 {
        auth_fail(&"Please specify exactly one of --read, --write or --readwrite");
    }
    let role = ctl.single_name("role name");
    let mut client = ctl.auth_client();
    let deadline = ctl.total_deadline();
    let current = auth::get_role(&mut client, &role, deadline).unwrap_or_else(|e| auth_fail(&e));
    let updated = auth::grant_or_revoke_role(&mut client, &role, &[path], set[0], grant, deadline)
        .unwrap_or_else(|e| auth_fail(&e));
    if updated == current {
        out(if grant {
            "Role unchanged; already granted"
        } else {
            "Role unchanged; already revoked"
        });
    }
    out(&format!("Role {} updated\n", role));
}

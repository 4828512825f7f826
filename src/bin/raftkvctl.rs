//! `raftkvctl`: a drop-in for `ETCDCTL_API=2 etcdctl` (3.4.23).
//!
//! Same global flags (before the command), command flags, environment variables, stdout,
//! stderr and exit codes as etcdctl v2, so scripts and tutorials written for etcdctl run
//! unchanged against raftkv (or etcd). Exit codes: 0 success, 1 bad arguments or member
//! command failure, 2 cannot reach the cluster during the initial sync, 3 unknown command,
//! 4 server-side key error, 5 cluster not healthy.
//!
//! Not implemented: `backup` and TLS (`https://` endpoints, `--cert-file`, …); these report
//! that they are unsupported and exit 1.
//!
//! This file parses the command line and dispatches; `specs` holds the flag and command
//! tables, `ctl` the global options and client set-up, and `key_commands`,
//! `cluster_commands`, `auth_commands` the commands. The HTTP and v2 client code lives in
//! the library (`raftkv::client`).

#[path = "raftkvctl/auth_commands.rs"]
mod auth_commands;
#[path = "raftkvctl/cluster_commands.rs"]
mod cluster_commands;
#[path = "raftkvctl/ctl.rs"]
mod ctl;
#[path = "raftkvctl/key_commands.rs"]
mod key_commands;
#[path = "raftkvctl/specs.rs"]
mod specs;

use std::io::Write;

use raftkv::client::args::{
    command_help, group_help, parse_flags, reorder_args, ArgsError, CommandSpec, FlagKind,
    FlagSpec, Parsed,
};
use raftkv::client::format::Printed;

use auth_commands::*;
use cluster_commands::*;
use ctl::Ctl;
use key_commands::*;
use specs::*;

/// Flushes stdout and exits.
fn exit(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn err(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn show(printed: Printed) {
    out(&printed.stdout);
    err(&printed.stderr);
}

fn app_help() -> String {
    let mut commands: Vec<(&str, &str)> = COMMANDS.iter().map(|c| (c.name, c.usage)).collect();
    commands.extend(GROUPS.iter().map(|g| (g.name, g.usage)));
    commands.push((
        "help, h",
        "Shows a list of commands or help for one command",
    ));
    group_help(
        "etcdctl",
        "A simple command line client for etcd.",
        "etcdctl [global options] command [command options] [arguments...]",
        Some(VERSION),
        &commands,
        GLOBAL_FLAGS,
        "GLOBAL OPTIONS",
    )
}

fn group_screen(group: &Group) -> String {
    let commands: Vec<(&str, &str)> = group.commands.iter().map(|c| (c.name, c.usage)).collect();
    group_help(
        &format!("etcdctl {}", group.name),
        group.usage,
        &format!(
            "etcdctl {} command [command options] [arguments...]",
            group.name
        ),
        None,
        &commands,
        &[],
        "OPTIONS",
    )
}

/// Parses a leaf command's flags, handling `-h` and `Incorrect Usage` like urfave/cli.
fn parse_command(parent: &str, spec: &CommandSpec, args: &[String]) -> Parsed {
    let reordered = reorder_args(spec.flags, args);
    match parse_flags(spec.flags, &reordered) {
        Ok(parsed) => parsed,
        Err(ArgsError::Help) => {
            out(&command_help(parent, spec));
            exit(0);
        }
        Err(error) => {
            out(&format!(
                "Incorrect Usage: {}\n\n{}",
                error,
                command_help(parent, spec)
            ));
            err(&format!("{}\n", error));
            exit(EXIT_BAD_ARGS);
        }
    }
}

fn unsupported(name: &str) -> ! {
    err(&format!(
        "Error:  '{}' is not supported by raftkvctl\n",
        name
    ));
    exit(EXIT_BAD_ARGS)
}

fn run_group(group: &Group, globals: Parsed, args: &[String]) {
    let parent = format!("etcdctl {}", group.name);
    let Some(sub) = args.first() else {
        out(&group_screen(group));
        exit(0);
    };
    if sub == "help" || sub == "h" || sub == "-h" || sub == "--help" {
        match args
            .get(1)
            .and_then(|n| group.commands.iter().find(|c| c.name == n))
        {
            Some(spec) => out(&command_help(&parent, spec)),
            None => out(&group_screen(group)),
        }
        exit(0);
    }
    let Some(spec) = group.commands.iter().find(|c| c.name == sub) else {
        err(&format!("No help topic for '{}'\n", sub));
        exit(3);
    };
    let command = parse_command(&parent, spec, &args[1..]);
    let ctl = Ctl { globals, command };
    match (group.name, spec.name) {
        ("member", "list") => cmd_member_list(&ctl),
        ("member", "add") => cmd_member_add(&ctl),
        ("member", "remove") => cmd_member_remove(&ctl),
        ("member", _) => cmd_member_update(&ctl),
        ("auth", name) => cmd_auth_enable(&ctl, name == "enable"),
        ("user", "list") => cmd_user_list(&ctl),
        ("user", "add") => cmd_user_add(&ctl),
        ("user", "remove") => cmd_user_remove(&ctl),
        ("user", "get") => cmd_user_get(&ctl),
        ("user", "passwd") => cmd_user_passwd(&ctl),
        ("user", name) => cmd_user_grant(&ctl, name == "grant"),
        ("role", "list") => cmd_role_list(&ctl),
        ("role", "add") => cmd_role_add(&ctl),
        ("role", "remove") => cmd_role_remove(&ctl),
        ("role", "get") => cmd_role_get(&ctl),
        ("role", name) => cmd_role_grant(&ctl, name == "grant"),
        _ => unsupported(group.name),
    }
}

fn main() {
    // Like a Go program, die of SIGPIPE when stdout goes away (`raftkvctl ls -r | head -1`)
    // instead of carrying on (Rust ignores SIGPIPE by default).
    // SAFETY: restoring the default disposition of a signal has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut global_specs = GLOBAL_FLAGS.to_vec();
    global_specs.push(FlagSpec {
        names: &["version", "v"],
        kind: FlagKind::Bool,
        usage: "print the version",
        default_text: "",
    });
    let globals = match parse_flags(&global_specs, &args) {
        Ok(parsed) => parsed,
        Err(ArgsError::Help) => {
            out(&app_help());
            exit(0);
        }
        Err(error) => {
            out(&format!("Incorrect Usage. {}\n\n{}", error, app_help()));
            err(&format!("{}\n", error));
            exit(EXIT_BAD_ARGS);
        }
    };
    if globals.bool("version") {
        out(&format!("etcdctl version: {}\nAPI version: 2\n", VERSION));
        exit(0);
    }
    let rest = globals.args.clone();
    let Some(name) = rest.first() else {
        out(&app_help());
        exit(0);
    };
    if name == "help" || name == "h" {
        match rest.get(1) {
            Some(topic) => match COMMANDS.iter().find(|c| c.name == topic) {
                Some(spec) => out(&command_help("etcdctl", spec)),
                None => match GROUPS.iter().find(|g| g.name == topic) {
                    Some(group) => out(&command_help(
                        "etcdctl",
                        &CommandSpec {
                            name: group.name,
                            usage: group.usage,
                            args_usage: "",
                            description: "",
                            flags: &[],
                        },
                    )),
                    None => {
                        err(&format!("No help topic for '{}'\n", topic));
                        exit(3);
                    }
                },
            },
            None => out(&app_help()),
        }
        exit(0);
    }
    if let Some(group) = GROUPS.iter().find(|g| g.name == name) {
        run_group(group, globals, &rest[1..]);
        exit(0);
    }
    let Some(spec) = COMMANDS.iter().find(|c| c.name == name) else {
        err(&format!("No help topic for '{}'\n", name));
        exit(3);
    };
    let command = parse_command("etcdctl", spec, &rest[1..]);
    let ctl = Ctl { globals, command };
    match spec.name {
        "cluster-health" => cmd_cluster_health(&ctl),
        "mk" => cmd_mk(&ctl),
        "mkdir" => cmd_dir(&ctl, Some(false)),
        "setdir" => cmd_dir(&ctl, None),
        "updatedir" => cmd_dir(&ctl, Some(true)),
        "rm" => cmd_rm(&ctl, false),
        "rmdir" => cmd_rm(&ctl, true),
        "get" => cmd_get(&ctl),
        "ls" => cmd_ls(&ctl),
        "set" => cmd_set(&ctl),
        "update" => cmd_update(&ctl),
        "watch" => cmd_watch(&ctl),
        "exec-watch" => cmd_exec_watch(&ctl),
        other => unsupported(other),
    }
    exit(0);
}

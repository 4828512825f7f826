//! The key-space commands: get, ls, set, mk, update, mkdir/setdir/updatedir, rm/rmdir,
//! watch and exec-watch.

use std::process::{Command, Stdio};

use raftkv::client::format::{ls_lines, print_response_key};
use raftkv::client::keys::{go_quote, Action};

use crate::ctl::Ctl;
use crate::specs::{EXIT_BAD_ARGS, EXIT_SERVER_ERROR};
use crate::{err, exit, out, show};

fn set_action(
    key: String,
    value: Vec<u8>,
    prev_exist: Option<bool>,
    ttl: u64,
    dir: bool,
) -> Action {
    Action::Set {
        key,
        value,
        prev_value: String::new(),
        prev_index: 0,
        prev_exist,
        ttl_seconds: ttl,
        dir,
    }
}

pub fn cmd_get(ctl: &Ctl) {
    let mut client = ctl.client();
    let key = ctl.key_or_fail();
    let action = Action::Get {
        key,
        recursive: false,
        sorted: ctl.command.bool("sort"),
        quorum: ctl.command.bool("quorum"),
    };
    let response = ctl.keys_or_fail(&mut client, &action);
    let node = response.node.clone().unwrap_or_default();
    if node.dir {
        err(&format!("{}: is a directory\n", node.key));
        exit(EXIT_BAD_ARGS);
    }
    show(print_response_key(&response, &ctl.output()));
}

pub fn cmd_ls(ctl: &Ctl) {
    let mut client = ctl.client();
    let key = ctl
        .args()
        .first()
        .cloned()
        .unwrap_or_else(|| "/".to_string());
    let action = Action::Get {
        key,
        recursive: ctl.command.bool("recursive"),
        sorted: ctl.command.bool("sort"),
        quorum: ctl.command.bool("quorum"),
    };
    let response = ctl.keys_or_fail(&mut client, &action);
    if ctl.output() == "simple" {
        out(&ls_lines(&response, ctl.command.bool("p")));
    } else {
        show(print_response_key(&response, &ctl.output()));
    }
}

pub fn cmd_set(ctl: &Ctl) {
    let mut client = ctl.client();
    let key = ctl.key_or_fail();
    let value = ctl.value_or_fail();
    let action = Action::Set {
        key,
        value,
        prev_value: ctl
            .command
            .text("swap-with-value")
            .unwrap_or("")
            .to_string(),
        prev_index: ctl.command.int("swap-with-index") as u64,
        prev_exist: None,
        ttl_seconds: ctl.ttl_seconds(),
        dir: false,
    };
    let response = ctl.keys_or_fail(&mut client, &action);
    show(print_response_key(&response, &ctl.output()));
}

pub fn cmd_mk(ctl: &Ctl) {
    let mut client = ctl.client();
    let key = ctl.key_or_fail();
    let value = ctl.value_or_fail();
    let action = if ctl.command.bool("in-order") {
        Action::CreateInOrder {
            dir: key,
            value,
            ttl_seconds: ctl.ttl_seconds(),
        }
    } else {
        set_action(key, value, Some(false), ctl.ttl_seconds(), false)
    };
    let response = ctl.keys_or_fail(&mut client, &action);
    show(print_response_key(&response, &ctl.output()));
}

pub fn cmd_update(ctl: &Ctl) {
    let mut client = ctl.client();
    let key = ctl.key_or_fail();
    let value = ctl.value_or_fail();
    let action = set_action(key, value, Some(true), ctl.ttl_seconds(), false);
    let response = ctl.keys_or_fail(&mut client, &action);
    show(print_response_key(&response, &ctl.output()));
}

/// `mkdir` (prevExist=false), `setdir` (no prevExist), `updatedir` (prevExist=true).
pub fn cmd_dir(ctl: &Ctl, prev_exist: Option<bool>) {
    let mut client = ctl.client();
    let key = ctl.key_or_fail();
    let action = set_action(key, Vec::new(), prev_exist, ctl.ttl_seconds(), true);
    let response = ctl.keys_or_fail(&mut client, &action);
    if ctl.output() != "simple" {
        show(print_response_key(&response, &ctl.output()));
    }
}

pub fn cmd_rm(ctl: &Ctl, rmdir: bool) {
    let mut client = ctl.client();
    let key = ctl.key_or_fail();
    let action = if rmdir {
        Action::Delete {
            key,
            prev_value: String::new(),
            prev_index: 0,
            dir: true,
            recursive: false,
        }
    } else {
        Action::Delete {
            key,
            prev_value: ctl.command.text("with-value").unwrap_or("").to_string(),
            prev_index: ctl.command.int("with-index") as u64,
            dir: ctl.command.bool("dir"),
            recursive: ctl.command.bool("recursive"),
        }
    };
    let response = ctl.keys_or_fail(&mut client, &action);
    let is_dir = response.node.as_ref().is_some_and(|n| n.dir);
    if !is_dir || ctl.output() != "simple" {
        show(print_response_key(&response, &ctl.output()));
    }
}

extern "C" fn exit_on_interrupt(_signal: libc::c_int) {
    // SAFETY: `_exit` is async-signal-safe; etcdctl exits 0 on Ctrl-C during watches.
    unsafe { libc::_exit(0) }
}

pub fn exit_zero_on_interrupt() {
    let handler = exit_on_interrupt as extern "C" fn(libc::c_int);
    // SAFETY: installs a handler that only calls `_exit`.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

fn first_wait_index(ctl: &Ctl) -> u64 {
    let after = ctl.command.int("after-index") as u64;
    if after > 0 {
        after.wrapping_add(1)
    } else {
        0
    }
}

pub fn cmd_watch(ctl: &Ctl) {
    let mut client = ctl.client();
    let key = ctl.key_or_fail();
    let recursive = ctl.command.bool("recursive");
    let forever = ctl.command.bool("forever");
    let mut wait_index = first_wait_index(ctl);
    exit_zero_on_interrupt();
    loop {
        let event = match client.next_event(&key, recursive, &mut wait_index) {
            Ok(event) => event,
            Err(error) => ctl.fail_client(EXIT_SERVER_ERROR, &error),
        };
        let node = event.node.clone().unwrap_or_default();
        if node.dir {
            continue;
        }
        if recursive {
            out(&format!("[{}] {}\n", event.action, node.key));
        }
        show(print_response_key(&event, &ctl.output()));
        if !forever {
            return;
        }
    }
}

pub fn cmd_exec_watch(ctl: &Ctl) {
    let mut client = ctl.client();
    let args = ctl.args();
    if args.len() < 2 {
        ctl.fail(EXIT_BAD_ARGS, &"key and command to exec required", None);
    }
    let found_separator = args.iter().skip(1).any(|a| a == "--");
    let (key, command_args) = if found_separator {
        (args[0].clone(), args[2..].to_vec())
    } else {
        (
            args[args.len() - 1].clone(),
            args[..args.len() - 1].to_vec(),
        )
    };
    let recursive = ctl.command.bool("recursive");
    let mut wait_index = first_wait_index(ctl);
    exit_zero_on_interrupt();
    loop {
        let event = match client.next_event(&key, recursive, &mut wait_index) {
            Ok(event) => event,
            Err(error) => ctl.fail_client(EXIT_SERVER_ERROR, &error),
        };
        let node = event.node.clone().unwrap_or_default();
        if node.dir {
            err(&format!("Ignored dir {} change\n", node.key));
            continue;
        }
        let Some(program) = command_args.first() else {
            err("exec: no command");
            exit(EXIT_BAD_ARGS);
        };
        let spawned = Command::new(program)
            .args(&command_args[1..])
            .env("ETCD_WATCH_ACTION", &event.action)
            .env("ETCD_WATCH_MODIFIED_INDEX", node.modified_index.to_string())
            .env("ETCD_WATCH_KEY", &node.key)
            .env("ETCD_WATCH_VALUE", &node.value)
            .stdin(Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => {
                std::thread::spawn(move || {
                    let _ = child.wait();
                });
            }
            Err(error) => {
                if error.kind() == std::io::ErrorKind::NotFound && !program.contains('/') {
                    err(&format!(
                        "exec: {}: executable file not found in $PATH",
                        go_quote(program)
                    ));
                } else {
                    err(&format!(
                        "fork/exec {}: {}",
                        program,
                        lower_os_error(&error)
                    ));
                }
                exit(EXIT_BAD_ARGS);
            }
        }
    }
}

fn lower_os_error(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = text.split(" (os error").next().unwrap_or("").to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

//! `member list|add|remove|update` and `cluster-health`.

use std::time::Duration;

use raftkv::client::gojson::decode_error_text;
use raftkv::client::http::{Deadlines, HttpClient, Request, Url};
use raftkv::client::keys::go_quote;
use raftkv::client::members;

use crate::ctl::Ctl;
use crate::key_commands::exit_zero_on_interrupt;
use crate::specs::{EXIT_BAD_ARGS, EXIT_CLUSTER_NOT_HEALTHY, EXIT_SERVER_ERROR};
use crate::{err, exit, out};

fn member_fail(message: String) -> ! {
    err(&message);
    exit(EXIT_BAD_ARGS)
}

pub fn cmd_member_list(ctl: &Ctl) {
    if !ctl.args().is_empty() {
        member_fail("No arguments accepted\n".into());
    }
    let mut client = ctl.client();
    let deadline = ctl.total_deadline();
    let list =
        members::list(&mut client, deadline).unwrap_or_else(|e| member_fail(format!("{}\n", e)));
    let leader = members::leader(&mut client, deadline)
        .unwrap_or_else(|e| member_fail(format!("Failed to get leader:  {}\n", e)));
    let mut text = String::new();
    for member in list {
        if member.name.is_empty() {
            text.push_str(&format!(
                "{}[unstarted]: peerURLs={}\n",
                member.id,
                member.peer_urls.join(",")
            ));
        } else {
            text.push_str(&format!(
                "{}: name={} peerURLs={} clientURLs={} isLeader={}\n",
                member.id,
                member.name,
                member.peer_urls.join(","),
                member.client_urls.join(","),
                member.id == leader.id
            ));
        }
    }
    out(&text);
}

pub fn cmd_member_add(ctl: &Ctl) {
    if ctl.args().len() != 2 {
        member_fail("Provide a name and a single member peerURL\n".into());
    }
    let mut client = ctl.client();
    let deadline = ctl.total_deadline();
    let name = &ctl.args()[0];
    let added = members::add(&mut client, &ctl.args()[1], deadline)
        .unwrap_or_else(|e| member_fail(format!("{}\n", e)));
    out(&format!(
        "Added member named {} with ID {} to cluster\n",
        name, added.id
    ));
    let list =
        members::list(&mut client, deadline).unwrap_or_else(|e| member_fail(format!("{}\n", e)));
    let mut conf = Vec::new();
    for member in &list {
        for url in &member.peer_urls {
            let member_name = if member.id == added.id {
                name
            } else {
                &member.name
            };
            conf.push(format!("{}={}", member_name, url));
        }
    }
    out(&format!(
        "\nETCD_NAME={}\nETCD_INITIAL_CLUSTER={}\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
        go_quote(name),
        go_quote(&conf.join(","))
    ));
}

pub fn cmd_member_remove(ctl: &Ctl) {
    if ctl.args().len() != 1 {
        member_fail("Provide a single member ID\n".into());
    }
    let removal_id = &ctl.args()[0];
    let mut client = ctl.client();
    let deadline = ctl.total_deadline();
    let list = members::list(&mut client, deadline).unwrap_or_else(|e| {
        member_fail(format!(
            "Error while verifying ID against known members: {}\n",
            e
        ))
    });
    let mut found = false;
    for member in &list {
        if &member.id == removal_id {
            found = true;
        }
        if &member.name == removal_id {
            err(&format!(
                "Found a member named {}; if this is correct, please use its ID, eg:\n\tetcdctl \
                 member remove {}\n",
                member.name, member.id
            ));
            err(
                "For more details, read the documentation at https://github.com/etcd-io/etcd/\
                 blob/master/Documentation/runtime-configuration.md#remove-a-member\n\n",
            );
        }
    }
    if !found {
        member_fail(format!(
            "Couldn't find a member in the cluster with an ID of {}.\n",
            removal_id
        ));
    }
    if let Err(error) = members::remove(&mut client, removal_id, deadline) {
        member_fail(format!(
            "Received an error trying to remove member {}: {}",
            removal_id, error
        ));
    }
    out(&format!("Removed member {} from cluster\n", removal_id));
}

pub fn cmd_member_update(ctl: &Ctl) {
    if ctl.args().len() != 2 {
        member_fail(
            "Provide an ID and a list of comma separated peerURL (0xabcd \
             http://example.com,http://example1.com)\n"
                .into(),
        );
    }
    let mut client = ctl.client();
    let id = &ctl.args()[0];
    let urls: Vec<String> = ctl.args()[1].split(',').map(str::to_string).collect();
    if let Err(error) = members::update(&mut client, id, &urls, ctl.total_deadline()) {
        member_fail(format!("{}\n", error));
    }
    out(&format!("Updated member with ID {} in cluster\n", id));
}

/// One member's `/health` verdict, or the text of why it could not be read.
fn check_health(http: &mut HttpClient, url: &str) -> Result<bool, String> {
    let target = format!("{}/health", url);
    let parsed = Url::parse(&target).map_err(|e| e.to_string())?;
    let request = Request {
        method: "GET".into(),
        url: parsed,
        headers: vec![],
        body: None,
    };
    let response = http
        .send_following_redirects(&request, Deadlines::default())
        .map_err(|e| format!("Get {}: {}", go_quote(&target), e))?;
    // Go tries `struct { Health string }`, then `struct { Health bool }`; the error shown is
    // the second one's.
    let go_error = || decode_error_text(&response.body, "struct { Health bool }");
    let value: serde_json::Value =
        serde_json::from_slice(&response.body).map_err(|_| go_error())?;
    let object = match value {
        serde_json::Value::Null => return Ok(false),
        serde_json::Value::Object(object) => object,
        _ => return Err(go_error()),
    };
    let health = object
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("health"))
        .map(|(_, v)| v);
    match health {
        None | Some(serde_json::Value::Null) => Ok(false),
        Some(serde_json::Value::String(text)) => Ok(text == "true"),
        Some(serde_json::Value::Bool(flag)) => Ok(flag),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go struct field .Health of type bool",
            match other {
                serde_json::Value::Number(_) => "number",
                serde_json::Value::Array(_) => "array",
                _ => "object",
            }
        )),
    }
}

pub fn cmd_cluster_health(ctl: &Ctl) {
    let forever = ctl.command.bool("forever");
    if forever {
        exit_zero_on_interrupt();
    }
    let mut client = ctl.client_no_sync();
    let list = match members::list(&mut client, None) {
        Ok(list) => list,
        Err(error) => {
            out("cluster may be unhealthy: failed to list members\n");
            ctl.fail_client(EXIT_SERVER_ERROR, &error);
        }
    };
    let total = ctl.total_timeout();
    let dial = if !total.is_zero() && total < Duration::from_secs(30) {
        total
    } else {
        Duration::from_secs(30)
    };
    let mut http = HttpClient::new(Some(dial));
    loop {
        let mut healthy = 0;
        for member in &list {
            if member.client_urls.is_empty() {
                out(&format!(
                    "member {} is unreachable: no available published client urls\n",
                    member.id
                ));
                continue;
            }
            let mut checked = false;
            for url in &member.client_urls {
                match check_health(&mut http, url) {
                    Err(reason) => out(&format!(
                        "failed to check the health of member {} on {}: {}\n",
                        member.id, url, reason
                    )),
                    Ok(is_healthy) => {
                        checked = true;
                        if is_healthy {
                            out(&format!(
                                "member {} is healthy: got healthy result from {}\n",
                                member.id, url
                            ));
                            healthy += 1;
                        } else {
                            out(&format!(
                                "member {} is unhealthy: got unhealthy result from {}\n",
                                member.id, url
                            ));
                        }
                        break;
                    }
                }
            }
            if !checked {
                out(&format!(
                    "member {} is unreachable: [{}] are all unreachable\n",
                    member.id,
                    member.client_urls.join(" ")
                ));
            }
        }
        if healthy == list.len() {
            out("cluster is healthy\n");
        } else if healthy == 0 {
            out("cluster is unavailable\n");
        } else {
            out("cluster is degraded\n");
        }
        if !forever {
            exit(if healthy == list.len() {
                0
            } else {
                EXIT_CLUSTER_NOT_HEALTHY
            });
        }
        out("\nnext check after 10 second...\n\n");
        std::thread::sleep(Duration::from_secs(10));
    }
}

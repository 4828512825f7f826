//! Interaction tests for the Raft core, in the style of etcd-io/raft's datadriven scripts.
//!
//! Each file in `tests/testdata/raft/` is a sequence of blocks:
//! ```text
//! # comments and blank lines are kept as they are
//! command arg key=value
//! ----
//! expected output (no blank lines)
//! ```
//! The runner executes every command against an in-memory cluster and compares the output.
//! `RAFT_REWRITE=1 cargo test --test raft_interaction` rewrites the expectations instead;
//! review the diff. `RAFT_SCRIPT=name` runs only scripts whose name contains `name`.
//!
//! Commands: add-nodes, campaign, tick, tick-election, tick-heartbeat, process-ready,
//! deliver-msgs, drop-msgs, duplicate-msgs, stabilize, partition, heal, propose, propose-conf-change,
//! read-index, compact, transfer-leader, report-unreachable, report-snapshot, crash,
//! restart, status, raft-log, raft-state.

use raftkv::raft::codec::decode_conf_change;
use raftkv::raft::{
    show_bytes, ConfChange, ConfChangeKind, ConfState, Config, EntryKind, MemoryStorage, Message,
    NodeId, RawNode, Ready,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

struct Node {
    raw: Option<RawNode>,
    config: Config,
    /// What survives a crash: the storage as of the last advance.
    persisted: MemoryStorage,
    /// Applied payloads, in order (the state machine; its image is a snapshot's data).
    applied: Vec<Vec<u8>>,
}

#[derive(Default)]
struct Env {
    nodes: BTreeMap<NodeId, Node>,
    /// Messages sent and not yet delivered, in send order.
    queue: Vec<Message>,
    /// Group per node; absent = group 0.
    partition: BTreeMap<NodeId, u8>,
}

fn role_name(raw: &RawNode) -> String {
    format!("{:?}", raw.raft.role)
}

impl Env {
    fn raw(&mut self, id: NodeId) -> Result<&mut RawNode, String> {
        self.nodes
            .get_mut(&id)
            .and_then(|n| n.raw.as_mut())
            .ok_or_else(|| format!("node {id} is not running"))
    }

    fn state_line(&self, id: NodeId) -> String {
        match self.nodes.get(&id).and_then(|n| n.raw.as_ref()) {
            None => format!("{id}: down"),
            Some(raw) => {
                let r = &raw.raft;
                format!(
                    "{id}: {} term={} vote={} lead={} commit={} applied={} last={}",
                    role_name(raw),
                    r.term,
                    r.vote,
                    r.leader_id,
                    r.log.committed(),
                    r.log.applied(),
                    r.log.last_index()
                )
            }
        }
    }

    fn connected(&self, a: NodeId, b: NodeId) -> bool {
        self.partition.get(&a).copied().unwrap_or(0) == self.partition.get(&b).copied().unwrap_or(0)
    }

    fn add_nodes(&mut self, n: u64, args: &Args) -> Result<String, String> {
        let first = self.nodes.keys().next_back().copied().unwrap_or(0) + 1;
        let ids: Vec<NodeId> = (first..first + n).collect();
        let voters = args.ids("voters")?.unwrap_or_else(|| ids.clone());
        let learners = args.ids("learners")?.unwrap_or_default();
        let mut out = String::new();
        for id in ids {
            let mut config = Config::new(id);
            config.pre_vote = args.flag("pre-vote", true)?;
            config.check_quorum = args.flag("check-quorum", true)?;
            config.election_timeout_ticks = args.num("election", 10)?;
            config.heartbeat_interval_ticks = args.num("heartbeat", 1)?;
            config.max_inflight_msgs = args.num("inflight", 256)? as usize;
            config.max_inflight_bytes = args.num("inflight-bytes", 0)?;
            config.max_entries_bytes_per_msg = args.num("max-msg-bytes", 1 << 20)?;
            config.max_uncommitted_entries_bytes = args.num("uncommitted-bytes", 0)?;
            let storage = MemoryStorage::new_with_conf_state(ConfState {
                voters: voters.clone(),
                learners: learners.clone(),
            });
            let raw = RawNode::new(&config, storage.clone()).map_err(|e| e.to_string())?;
            self.nodes.insert(
                id,
                Node {
                    raw: Some(raw),
                    config,
                    persisted: storage,
                    applied: Vec::new(),
                },
            );
            writeln!(out, "{}", self.state_line(id)).unwrap();
        }
        Ok(out)
    }

    /// Persist, send (queue), apply, advance: the Ready contract.
    fn process_ready(&mut self, id: NodeId, out: &mut String) -> Result<bool, String> {
        let raw = self.raw(id)?;
        if !raw.has_ready() {
            return Ok(false);
        }
        let rd = raw.ready();
        writeln!(out, "> {id} handling Ready").unwrap();
        write_ready(out, &rd);
        self.queue.extend(rd.messages.iter().cloned());
        let node = self.nodes.get_mut(&id).expect("exists");
        if let Some(s) = &rd.snapshot {
            node.applied = decode_image(&s.data);
        }
        for e in &rd.committed_entries {
            node.applied.push(e.data.clone());
            if e.kind == EntryKind::ConfChange {
                let cc = decode_conf_change(&e.data).map_err(|e| e.to_string())?;
                let cs = node.raw.as_mut().expect("running").apply_conf_change(cc);
                writeln!(
                    out,
                    "  applied {:?} {}: voters={:?} learners={:?}",
                    cc.kind, cc.node_id, cs.voters, cs.learners
                )
                .unwrap();
            }
        }
        let raw = node.raw.as_mut().expect("running");
        raw.advance();
        node.persisted = raw.raft.log.storage.clone();
        Ok(true)
    }

    fn process_all(&mut self, ids: &[NodeId], out: &mut String) -> Result<bool, String> {
        let mut any = false;
        for id in ids {
            if self.nodes.get(id).is_some_and(|n| n.raw.is_some()) {
                any |= self.process_ready(*id, out)?;
            }
        }
        Ok(any)
    }

    fn deliver(
        &mut self,
        to: &[NodeId],
        drop: &[NodeId],
        out: &mut String,
    ) -> Result<bool, String> {
        let (mine, rest): (Vec<Message>, Vec<Message>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|m| to.contains(&m.to));
        self.queue = rest;
        let mut any = false;
        for m in mine {
            any = true;
            let up = self.nodes.get(&m.to).is_some_and(|n| n.raw.is_some());
            if drop.contains(&m.to) {
                writeln!(out, "dropped: {m}").unwrap();
            } else if !self.connected(m.from, m.to) {
                writeln!(out, "dropped (partition): {m}").unwrap();
            } else if !up {
                writeln!(out, "dropped (down): {m}").unwrap();
            } else {
                writeln!(out, "{m}").unwrap();
                if let Err(e) = self.raw(m.to)?.step(m) {
                    writeln!(out, "  error: {e}").unwrap();
                }
            }
        }
        Ok(any)
    }

    fn all_ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    fn stabilize(&mut self, ids: &[NodeId], out: &mut String) -> Result<(), String> {
        for _ in 0..1000 {
            let processed = self.process_all(ids, out)?;
            let delivered = self.deliver(ids, &[], out)?;
            if !processed && !delivered {
                return Ok(());
            }
        }
        Err("stabilize did not settle in 1000 rounds".to_string())
    }

    fn status(&mut self, id: NodeId) -> Result<String, String> {
        let mut out = self.state_line(id) + "\n";
        let raw = self.raw(id)?;
        let st = raw.status();
        if st.soft_state.role == raftkv::raft::Role::Leader {
            for (pid, p) in &st.progress {
                let kind = if p.is_learner { " learner" } else { "" };
                writeln!(
                    out,
                    "  {pid}: {:?} match={} next={}{kind}{}",
                    p.state,
                    p.match_index,
                    p.next_index,
                    if *pid == st.lead_transferee {
                        " (transferee)"
                    } else {
                        ""
                    }
                )
                .unwrap();
            }
        } else {
            let cs = raw.raft.conf_state();
            writeln!(out, "  voters={:?} learners={:?}", cs.voters, cs.learners).unwrap();
        }
        Ok(out)
    }

    fn raft_log(&mut self, id: NodeId) -> Result<String, String> {
        let raw = self.raw(id)?;
        let log = &raw.raft.log;
        let snap = log.snapshot();
        let mut out = String::new();
        if snap.meta.index > 0 {
            writeln!(
                out,
                "snapshot: index={} term={}",
                snap.meta.index, snap.meta.term
            )
            .unwrap();
        }
        let entries = log
            .slice(log.first_index(), log.last_index() + 1, u64::MAX)
            .map_err(|e| format!("{e:?}"))?;
        if entries.is_empty() && snap.meta.index == 0 {
            out.push_str("log is empty\n");
        }
        for e in entries {
            writeln!(out, "{e}").unwrap();
        }
        Ok(out)
    }
}

fn write_ready(out: &mut String, rd: &Ready) {
    if let Some(ss) = rd.soft_state {
        writeln!(out, "  Lead:{} State:{:?}", ss.leader_id, ss.role).unwrap();
    }
    if let Some(hs) = rd.hard_state {
        writeln!(
            out,
            "  HardState Term:{} Vote:{} Commit:{}",
            hs.term, hs.vote, hs.commit
        )
        .unwrap();
    }
    if !rd.entries.is_empty() {
        writeln!(out, "  Entries:").unwrap();
        for e in &rd.entries {
            writeln!(out, "    {e}").unwrap();
        }
    }
    if let Some(s) = &rd.snapshot {
        writeln!(
            out,
            "  Snapshot: index={} term={} voters={:?} learners={:?}",
            s.meta.index, s.meta.term, s.meta.conf_state.voters, s.meta.conf_state.learners
        )
        .unwrap();
    }
    if !rd.committed_entries.is_empty() {
        writeln!(out, "  CommittedEntries:").unwrap();
        for e in &rd.committed_entries {
            writeln!(out, "    {e}").unwrap();
        }
    }
    if !rd.messages.is_empty() {
        writeln!(out, "  Messages:").unwrap();
        for m in &rd.messages {
            writeln!(out, "    {m}").unwrap();
        }
    }
    for rs in &rd.read_states {
        writeln!(
            out,
            "  ReadState: index={} context={}",
            rs.index,
            show_bytes(&rs.context)
        )
        .unwrap();
    }
}

/// State machine image: u32 count, then (u32 len, bytes) per applied payload.
fn encode_image(applied: &[Vec<u8>]) -> Vec<u8> {
    let mut out = (applied.len() as u32).to_le_bytes().to_vec();
    for a in applied {
        out.extend_from_slice(&(a.len() as u32).to_le_bytes());
        out.extend_from_slice(a);
    }
    out
}

fn decode_image(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if bytes.len() < 4 {
        return out;
    }
    let n = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    let mut at = 4;
    for _ in 0..n {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push(bytes[at + 4..at + 4 + len].to_vec());
        at += 4 + len;
    }
    out
}

/// Positional and key=value arguments of one command.
struct Args {
    positional: Vec<String>,
    keyed: BTreeMap<String, String>,
}

impl Args {
    fn parse(words: &[&str]) -> Args {
        let mut positional = Vec::new();
        let mut keyed = BTreeMap::new();
        for w in words {
            match w.split_once('=') {
                Some((k, v)) => {
                    keyed.insert(k.to_string(), v.to_string());
                }
                None => positional.push(w.to_string()),
            }
        }
        Args { positional, keyed }
    }
    fn pos_id(&self, i: usize) -> Result<NodeId, String> {
        self.positional
            .get(i)
            .ok_or(format!("missing argument {}", i + 1))?
            .parse()
            .map_err(|e| format!("bad id: {e}"))
    }
    fn pos_ids(&self) -> Result<Vec<NodeId>, String> {
        self.positional
            .iter()
            .map(|p| p.parse().map_err(|e| format!("bad id {p:?}: {e}")))
            .collect()
    }
    fn ids(&self, key: &str) -> Result<Option<Vec<NodeId>>, String> {
        match self.keyed.get(key) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(Some(Vec::new())),
            Some(v) => v
                .split(',')
                .map(|s| s.parse().map_err(|e| format!("bad {key}: {e}")))
                .collect::<Result<_, _>>()
                .map(Some),
        }
    }
    fn num(&self, key: &str, default: u64) -> Result<u64, String> {
        self.keyed.get(key).map_or(Ok(default), |v| {
            v.parse().map_err(|e| format!("bad {key}: {e}"))
        })
    }
    fn flag(&self, key: &str, default: bool) -> Result<bool, String> {
        self.keyed.get(key).map_or(Ok(default), |v| {
            v.parse().map_err(|e| format!("bad {key}: {e}"))
        })
    }
}

fn run_command(env: &mut Env, line: &str) -> Result<String, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (cmd, rest) = words.split_first().ok_or("empty command")?;
    let args = Args::parse(rest);
    let mut out = String::new();
    match *cmd {
        "add-nodes" => return env.add_nodes(args.pos_id(0)?, &args),
        "campaign" => {
            let id = args.pos_id(0)?;
            env.raw(id)?.campaign();
            writeln!(out, "{}", env.state_line(id)).unwrap();
        }
        "tick" => {
            let id = args.pos_id(0)?;
            let n = args
                .positional
                .get(1)
                .map_or(Ok(1), |v| v.parse::<u64>().map_err(|e| e.to_string()))?;
            for _ in 0..n {
                env.raw(id)?.tick();
            }
            writeln!(out, "{}", env.state_line(id)).unwrap();
        }
        "tick-heartbeat" => {
            let id = args.pos_id(0)?;
            let n = env.nodes[&id].config.heartbeat_interval_ticks;
            for _ in 0..n {
                env.raw(id)?.tick();
            }
            writeln!(out, "{}", env.state_line(id)).unwrap();
        }
        "tick-election" => {
            // Tick until the election timer fires: a leader ticks one election timeout (its
            // check-quorum round); others tick until their role or term changes.
            let id = args.pos_id(0)?;
            let et = env.nodes[&id].config.election_timeout_ticks;
            let raw = env.raw(id)?;
            let before = (raw.raft.role, raw.raft.term);
            if raw.raft.role == raftkv::raft::Role::Leader {
                for _ in 0..et {
                    raw.tick();
                }
            } else {
                for _ in 0..2 * et {
                    raw.tick();
                    if (raw.raft.role, raw.raft.term) != before {
                        break;
                    }
                }
            }
            writeln!(out, "{}", env.state_line(id)).unwrap();
        }
        "process-ready" => {
            let ids = if args.positional.is_empty() {
                env.all_ids()
            } else {
                args.pos_ids()?
            };
            env.process_all(&ids, &mut out)?;
        }
        "deliver-msgs" => {
            let ids = if args.positional.is_empty() {
                env.all_ids()
            } else {
                args.pos_ids()?
            };
            let drop = args.ids("drop")?.unwrap_or_default();
            env.deliver(&ids, &drop, &mut out)?;
        }
        "drop-msgs" => {
            let from = args.ids("from")?;
            let to = args.ids("to")?;
            let (dropped, kept): (Vec<Message>, Vec<Message>) =
                std::mem::take(&mut env.queue).into_iter().partition(|m| {
                    from.as_ref().is_none_or(|f| f.contains(&m.from))
                        && to.as_ref().is_none_or(|t| t.contains(&m.to))
                });
            env.queue = kept;
            for m in dropped {
                writeln!(out, "dropped: {m}").unwrap();
            }
        }
        "duplicate-msgs" => {
            // Queue a second copy of every matching message, after everything queued: the
            // copies arrive late, so this both duplicates and reorders.
            let to = args.ids("to")?;
            let copies: Vec<Message> = env
                .queue
                .iter()
                .filter(|m| to.as_ref().is_none_or(|t| t.contains(&m.to)))
                .cloned()
                .collect();
            for m in &copies {
                writeln!(out, "duplicated: {m}").unwrap();
            }
            env.queue.extend(copies);
        }
        "stabilize" => {
            let ids = if args.positional.is_empty() {
                env.all_ids()
            } else {
                args.pos_ids()?
            };
            env.stabilize(&ids, &mut out)?;
        }
        "partition" => {
            // partition 1 2 / 3 4 / 5
            env.partition.clear();
            for (group, part) in rest.join(" ").split('/').enumerate() {
                for w in part.split_whitespace() {
                    let id: NodeId = w.parse().map_err(|e| format!("bad id {w}: {e}"))?;
                    env.partition.insert(id, group as u8);
                }
            }
            writeln!(out, "groups: {}", rest.join(" ")).unwrap();
        }
        "heal" => {
            env.partition.clear();
            out.push_str("healed\n");
        }
        "propose" => {
            let id = args.pos_id(0)?;
            let data = args
                .positional
                .get(1)
                .cloned()
                .unwrap_or_default()
                .into_bytes();
            match env.raw(id)?.propose(data) {
                Ok(()) => out.push_str("ok\n"),
                Err(e) => writeln!(out, "error: {e}").unwrap(),
            }
        }
        "propose-conf-change" => {
            let id = args.pos_id(0)?;
            let kind = match args.positional.get(1).map(String::as_str) {
                Some("add") => ConfChangeKind::AddNode,
                Some("remove") => ConfChangeKind::RemoveNode,
                Some("add-learner") => ConfChangeKind::AddLearner,
                other => {
                    return Err(format!(
                        "conf change kind must be add|remove|add-learner, found {other:?}"
                    ))
                }
            };
            let node_id = args.pos_id(2)?;
            match env
                .raw(id)?
                .propose_conf_change(ConfChange { kind, node_id })
            {
                Ok(()) => out.push_str("ok\n"),
                Err(e) => writeln!(out, "error: {e}").unwrap(),
            }
        }
        "read-index" => {
            let id = args.pos_id(0)?;
            let ctx = args
                .positional
                .get(1)
                .cloned()
                .unwrap_or_default()
                .into_bytes();
            match env.raw(id)?.read_index(ctx) {
                Ok(()) => out.push_str("ok\n"),
                Err(e) => writeln!(out, "error: {e}").unwrap(),
            }
        }
        "compact" => {
            let id = args.pos_id(0)?;
            let image = encode_image(&env.nodes[&id].applied);
            let raw = env.raw(id)?;
            raw.compact(image);
            let meta = raw.raft.log.storage.snapshot().meta.clone();
            let node = env.nodes.get_mut(&id).expect("exists");
            node.persisted = node.raw.as_ref().expect("running").raft.log.storage.clone();
            writeln!(out, "snapshot at index={} term={}", meta.index, meta.term).unwrap();
        }
        "transfer-leader" => {
            let id = args.pos_id(0)?;
            let to = args.pos_id(1)?;
            env.raw(id)?.transfer_leader(to);
            writeln!(out, "{}", env.state_line(id)).unwrap();
        }
        "report-unreachable" => {
            let id = args.pos_id(0)?;
            env.raw(id)?.report_unreachable(args.pos_id(1)?);
            out.push_str("ok\n");
        }
        "report-snapshot" => {
            let id = args.pos_id(0)?;
            let peer = args.pos_id(1)?;
            let ok = args.positional.get(2).map(String::as_str) == Some("ok");
            env.raw(id)?.report_snapshot(peer, ok);
            out.push_str("ok\n");
        }
        "crash" => {
            let id = args.pos_id(0)?;
            let node = env.nodes.get_mut(&id).ok_or(format!("no node {id}"))?;
            node.raw = None;
            writeln!(out, "{id}: down").unwrap();
        }
        "restart" => {
            let id = args.pos_id(0)?;
            let node = env.nodes.get_mut(&id).ok_or(format!("no node {id}"))?;
            let storage = node.persisted.clone();
            node.applied = decode_image(&storage.snapshot().data);
            node.raw = Some(RawNode::new(&node.config, storage).map_err(|e| e.to_string())?);
            writeln!(out, "{}", env.state_line(id)).unwrap();
        }
        "status" => return env.status(args.pos_id(0)?),
        "raft-log" => return env.raft_log(args.pos_id(0)?),
        "raft-state" => {
            for id in env.all_ids() {
                writeln!(out, "{}", env.state_line(id)).unwrap();
            }
        }
        other => return Err(format!("unknown command {other:?}")),
    }
    Ok(out)
}

/// Runs one script; returns the rewritten text and the list of mismatches.
fn run_script(text: &str) -> (String, Vec<String>) {
    let mut env = Env::default();
    let mut rewritten = String::new();
    let mut mismatches = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() || line.starts_with('#') {
            rewritten.push_str(line);
            rewritten.push('\n');
            i += 1;
            continue;
        }
        let command = line.trim();
        i += 1;
        let mut expected = String::new();
        if i < lines.len() && lines[i] == "----" {
            i += 1;
            while i < lines.len() && !lines[i].trim().is_empty() {
                expected.push_str(lines[i]);
                expected.push('\n');
                i += 1;
            }
        }
        let mut actual = run_command(&mut env, command).unwrap_or_else(|e| format!("error: {e}\n"));
        if actual.is_empty() {
            actual = "ok\n".to_string();
        }
        if actual != expected {
            mismatches.push(format!(
                "command `{command}` (line {i}):\n--- expected\n{expected}--- actual\n{actual}"
            ));
        }
        rewritten.push_str(command);
        rewritten.push_str("\n----\n");
        rewritten.push_str(&actual);
        if i < lines.len() {
            rewritten.push('\n');
            // the blank separator line is consumed here
            i += 1;
        }
    }
    (rewritten, mismatches)
}

#[test]
fn interaction_scripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/raft");
    let rewrite = std::env::var("RAFT_REWRITE").is_ok_and(|v| v == "1");
    let only = std::env::var("RAFT_SCRIPT").ok();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "expected at least 30 scripts, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("readable script");
        let (rewritten, mismatches) = run_script(&text);
        if rewrite {
            if rewritten != text {
                std::fs::write(file, rewritten).expect("writable script");
                println!("rewrote {name}");
            }
        } else if !mismatches.is_empty() {
            failures.push(format!("{name}:\n{}", mismatches.join("\n")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} script(s) differ (RAFT_REWRITE=1 to accept):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_runner_reports_a_wrong_expectation() {
    let (_, mismatches) = run_script("add-nodes 1\n----\nsomething else\n");
    assert_eq!(mismatches.len(), 1, "a wrong expectation must be reported");
    let (_, ok) = run_script(
        "add-nodes 1\n----\n1: Follower term=0 vote=0 lead=0 commit=0 applied=0 last=0\n",
    );
    assert!(ok.is_empty(), "{ok:?}");
}

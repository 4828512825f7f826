//! Unit tests of the store's rules (one or more per error code and per rule of
//! research/v2-api.md §4–§5).

use super::*;

const T0: UnixNanos = 1_800_000_000_000_000_000; // an instant after MIN_EXPIRE_AT_UNIX_NANOS
const SECOND: UnixNanos = 1_000_000_000;

type Applied = (Result<Option<Event>, V2Error>, Vec<(WatcherId, Event)>);

fn run(store: &mut Store, cmd: Command) -> Applied {
    let mut fired = Vec::new();
    let result = store.apply(&cmd, &mut fired);
    (result, fired)
}

fn ok(store: &mut Store, cmd: Command) -> Event {
    let before = store.current_index();
    let (result, _) = run(store, cmd.clone());
    let event = result
        .unwrap_or_else(|error| panic!("{cmd:?} failed: {error}"))
        .expect("client write returns an event");
    assert_eq!(
        store.current_index(),
        before + 1,
        "{cmd:?} must consume one index"
    );
    assert_eq!(event.etcd_index, store.current_index());
    assert_eq!(event.node.modified_index, store.current_index());
    event
}

fn fail(store: &mut Store, cmd: Command) -> V2Error {
    let before = store.current_index();
    let (result, fired) = run(store, cmd.clone());
    let error = result.expect_err(&format!("{cmd:?} should fail"));
    assert_eq!(
        store.current_index(),
        before,
        "a failed write must not move the index"
    );
    assert_eq!(error.index, before, "store errors carry the current index");
    assert!(fired.is_empty());
    error
}

fn set(key: &str, value: &str) -> Command {
    Command::Set {
        key: key.into(),
        value: value.into(),
        dir: false,
        expire_at: None,
        refresh: false,
    }
}

fn set_ttl(key: &str, value: &str, expire_at: UnixNanos) -> Command {
    Command::Set {
        key: key.into(),
        value: value.into(),
        dir: false,
        expire_at: Some(expire_at),
        refresh: false,
    }
}

fn mkdir(key: &str) -> Command {
    Command::Set {
        key: key.into(),
        value: String::new(),
        dir: true,
        expire_at: None,
        refresh: false,
    }
}

fn create(key: &str, value: &str) -> Command {
    Command::Create {
        key: key.into(),
        value: value.into(),
        dir: false,
        expire_at: None,
        in_order: false,
    }
}

fn post(key: &str, value: &str, dir: bool) -> Command {
    Command::Create {
        key: key.into(),
        value: value.into(),
        dir,
        expire_at: None,
        in_order: true,
    }
}

fn update(key: &str, value: &str, expire_at: Option<UnixNanos>) -> Command {
    Command::Update {
        key: key.into(),
        value: value.into(),
        expire_at,
        refresh: false,
    }
}

fn cas(key: &str, value: &str, prev_value: Option<&str>, prev_index: u64) -> Command {
    Command::CompareAndSwap {
        key: key.into(),
        value: value.into(),
        prev_value: prev_value.map(str::to_owned),
        prev_index,
        expire_at: None,
        refresh: false,
    }
}

fn delete(key: &str, dir: bool, recursive: bool) -> Command {
    Command::Delete {
        key: key.into(),
        dir,
        recursive,
    }
}

fn cad(key: &str, prev_value: Option<&str>, prev_index: u64) -> Command {
    Command::CompareAndDelete {
        key: key.into(),
        prev_value: prev_value.map(str::to_owned),
        prev_index,
    }
}

fn get(store: &Store, key: &str, recursive: bool) -> NodeExtern {
    store
        .get(key, recursive, true)
        .unwrap_or_else(|error| panic!("get {key}: {error}"))
        .node
}

fn keys(nodes: &Option<Vec<NodeExtern>>) -> Vec<String> {
    nodes
        .iter()
        .flatten()
        .map(|node| node.key.clone())
        .collect()
}

fn parked(start: WatchStart) -> u64 {
    match start {
        WatchStart::Parked { registered_index } => registered_index,
        WatchStart::Ready(event) => panic!("expected a parked watcher, got {event:?}"),
    }
}

fn ready(start: WatchStart) -> Event {
    match start {
        WatchStart::Ready(event) => event,
        WatchStart::Parked { .. } => panic!("expected an event from history"),
    }
}

// ---- index rules -------------------------------------------------------------------------

#[test]
fn index_moves_by_one_per_write_and_never_on_reads_or_failures() {
    let mut store = Store::new();
    assert_eq!(store.current_index(), 0);
    ok(&mut store, set("/a", "1"));
    ok(&mut store, create("/b", "2"));
    ok(&mut store, update("/a", "3", None));
    ok(&mut store, cas("/a", "4", Some("3"), 0));
    ok(&mut store, delete("/b", false, false));
    ok(&mut store, cad("/a", None, 4));
    assert_eq!(store.current_index(), 6);
    fail(&mut store, delete("/nothing", false, false));
    store.get("/", true, true).unwrap();
    store.get("/missing", false, false).unwrap_err();
    store.watch("/x", false, false, 0, 1).unwrap();
    let (result, _) = run(&mut store, Command::Sync { now: T0 });
    assert_eq!(result, Ok(None));
    assert_eq!(store.current_index(), 6);
}

#[test]
fn set_replacing_a_file_resets_created_index_and_returns_prev_node() {
    let mut store = Store::new();
    let first = ok(&mut store, set("/foo", "bar"));
    assert_eq!(
        (first.node.created_index, first.node.modified_index),
        (1, 1)
    );
    assert!(first.prev_node.is_none() && first.is_created());
    let second = ok(&mut store, set("/foo", "baz"));
    assert_eq!(second.action, Action::Set);
    assert_eq!(
        (second.node.created_index, second.node.modified_index),
        (2, 2)
    );
    assert_eq!(second.node.value.as_deref(), Some("baz"));
    let prev = second
        .prev_node
        .clone()
        .expect("replacing set has a prevNode");
    assert_eq!(
        (prev.value.as_deref(), prev.created_index),
        (Some("bar"), 1)
    );
    assert!(!second.is_created());
}

#[test]
fn update_and_cas_keep_created_index() {
    let mut store = Store::new();
    ok(&mut store, set("/k", "a"));
    ok(&mut store, set("/other", "x"));
    let updated = ok(&mut store, update("/k", "b", None));
    assert_eq!(
        (updated.node.created_index, updated.node.modified_index),
        (1, 3)
    );
    assert_eq!(updated.prev_node.unwrap().value.as_deref(), Some("a"));
    let swapped = ok(&mut store, cas("/k", "c", Some("b"), 3));
    assert_eq!(
        (swapped.node.created_index, swapped.node.modified_index),
        (1, 4)
    );
    assert_eq!(get(&store, "/k", false).value.as_deref(), Some("c"));
}

#[test]
fn auto_created_parents_take_the_index_of_the_write() {
    let mut store = Store::new();
    ok(&mut store, set("/x", "1"));
    let event = ok(&mut store, set("/a/b/c", "v"));
    assert_eq!(event.node.key, "/a/b/c");
    for dir in ["/a", "/a/b"] {
        let node = get(&store, dir, false);
        assert!(node.dir && node.value.is_none());
        assert_eq!((node.created_index, node.modified_index), (2, 2), "{dir}");
        assert!(node.expiration.is_none());
    }
}

#[test]
fn keys_are_normalised_like_path_clean() {
    let mut store = Store::new();
    let event = ok(&mut store, set("foo//bar/", "v"));
    assert_eq!(event.node.key, "/foo/bar");
    assert_eq!(
        get(&store, "/foo/./x/../bar", false).value.as_deref(),
        Some("v")
    );
}

// ---- error codes -------------------------------------------------------------------------

#[test]
fn error_100_names_the_first_missing_component() {
    let mut store = Store::new();
    ok(&mut store, set("/a/x", "1"));
    let error = store.get("/a/b/c", false, false).unwrap_err();
    assert_eq!(
        (error.code, error.cause.as_str(), error.index),
        (ErrorCode::KeyNotFound, "/a/b", 1)
    );
    for cmd in [
        update("/nokey", "v", None),
        cas("/nokey", "v", Some("x"), 0),
        delete("/nokey", false, false),
        cad("/nokey", Some("x"), 0),
    ] {
        let error = fail(&mut store, cmd);
        assert_eq!(
            (error.code, error.cause.as_str()),
            (ErrorCode::KeyNotFound, "/nokey")
        );
    }
    let refresh = Command::Set {
        key: "/nokey".into(),
        value: String::new(),
        dir: false,
        expire_at: Some(T0),
        refresh: true,
    };
    assert_eq!(fail(&mut store, refresh).code, ErrorCode::KeyNotFound);
}

#[test]
fn error_101_cause_formats() {
    let mut store = Store::new();
    ok(&mut store, set("/cas", "two"));
    let value = fail(&mut store, cas("/cas", "x", Some("bad"), 0));
    assert_eq!(
        (value.code, value.cause.as_str()),
        (ErrorCode::TestFailed, "[bad != two]")
    );
    let index = fail(&mut store, cas("/cas", "x", None, 7));
    assert_eq!(index.cause, "[7 != 1]");
    let both = fail(&mut store, cad("/cas", Some("a b]"), 9));
    assert_eq!(both.cause, "[a b] != two] [9 != 1]");
    // An empty prevValue is "no value test", as in etcd.
    ok(&mut store, cas("/cas", "three", Some(""), 1));
}

#[test]
fn error_102_not_a_file() {
    let mut store = Store::new();
    ok(&mut store, mkdir("/d"));
    for cmd in [
        set("/d", "v"),
        mkdir("/d"),
        update("/d", "nonempty", None),
        cas("/d", "v", Some("x"), 0),
        cad("/d", None, 1),
        delete("/d", false, false),
    ] {
        let error = fail(&mut store, cmd.clone());
        assert_eq!(
            (error.code, error.cause.as_str()),
            (ErrorCode::NotFile, "/d"),
            "{cmd:?}"
        );
    }
    let root = fail(&mut store, cad("/", Some("x"), 0));
    assert_eq!((root.code, root.cause.as_str()), (ErrorCode::NotFile, ""));
    let refresh_dir = Command::Set {
        key: "/d".into(),
        value: String::new(),
        dir: false,
        expire_at: Some(T0),
        refresh: true,
    };
    assert_eq!(fail(&mut store, refresh_dir).code, ErrorCode::NotFile);
}

#[test]
fn error_104_names_the_file_in_the_way() {
    let mut store = Store::new();
    ok(&mut store, set("/foo", "file"));
    let read = store.get("/foo/bar", false, false).unwrap_err();
    assert_eq!(
        (read.code, read.cause.as_str()),
        (ErrorCode::NotDir, "/foo")
    );
    let posted = fail(&mut store, post("/foo", "job", false));
    assert_eq!(
        (posted.code, posted.cause.as_str()),
        (ErrorCode::NotDir, "/foo")
    );
    let deep = fail(&mut store, set("/foo/a/b", "v"));
    assert_eq!(
        (deep.code, deep.cause.as_str()),
        (ErrorCode::NotDir, "/foo")
    );
    let created = fail(&mut store, create("/foo/x", "v"));
    assert_eq!(created.code, ErrorCode::NotDir);
    // etcd bumps setsFail as well as createFail for a create that fails on the walk.
    assert!(
        store.stats_json().contains("\"setsFail\":3"),
        "{}",
        store.stats_json()
    );
    assert!(
        store.stats_json().contains("\"createFail\":2"),
        "{}",
        store.stats_json()
    );
}

#[test]
fn error_105_create_on_existing_file_or_dir() {
    let mut store = Store::new();
    ok(&mut store, set("/f", "v"));
    ok(&mut store, mkdir("/d"));
    for key in ["/f", "/d"] {
        let error = fail(&mut store, create(key, "x"));
        assert_eq!(
            (error.code, error.cause.as_str()),
            (ErrorCode::NodeExist, key)
        );
    }
}

#[test]
fn error_107_every_write_to_the_root() {
    let mut store = Store::new();
    for cmd in [
        set("/", "v"),
        mkdir(""),
        create("/", "v"),
        update("/", "", None),
        cas("//", "v", Some("x"), 0),
        delete("/", true, true),
    ] {
        let error = fail(&mut store, cmd.clone());
        assert_eq!(
            (error.code, error.cause.as_str()),
            (ErrorCode::RootReadOnly, "/"),
            "{cmd:?}"
        );
    }
}

#[test]
fn error_108_only_for_non_recursive_dir_delete_of_a_non_empty_dir() {
    let mut store = Store::new();
    ok(&mut store, set("/d/_hidden", "v"));
    let error = fail(&mut store, delete("/d", true, false));
    assert_eq!(
        (error.code, error.cause.as_str()),
        (ErrorCode::DirNotEmpty, "/d")
    );
    let event = ok(&mut store, delete("/d", false, true));
    assert!(event.node.dir && event.node.value.is_none());
    assert_eq!(event.node.created_index, 1);
    let prev = event.prev_node.unwrap();
    assert!(prev.dir && prev.nodes.is_none());
    ok(&mut store, mkdir("/empty"));
    ok(&mut store, delete("/empty", true, false));
    ok(&mut store, set("/f", "v"));
    ok(&mut store, delete("/f", true, true)); // dir/recursive accepted on a file
}

#[test]
fn error_401_history_cleared_cause_and_index() {
    let mut store = Store::new();
    for index in 0..1005 {
        ok(&mut store, set("/k", &index.to_string()));
    }
    let error = store.watch("/k", false, false, 5, 1).unwrap_err();
    assert_eq!(error.code, ErrorCode::EventIndexCleared);
    assert_eq!(error.cause, "the requested history has been cleared [6/5]");
    assert_eq!(error.index, 1005);
    assert_eq!(store.watcher_count(), 0);
    let event = ready(store.watch("/k", false, false, 6, 1).unwrap());
    assert_eq!((event.node.modified_index, event.etcd_index), (6, 1005));
}

// ---- set / create / update specifics ------------------------------------------------------

#[test]
fn set_dir_replaces_a_file_and_ignores_the_value() {
    let mut store = Store::new();
    ok(&mut store, set("/f", "v"));
    let event = ok(
        &mut store,
        Command::Set {
            key: "/f".into(),
            value: "ignored".into(),
            dir: true,
            expire_at: None,
            refresh: false,
        },
    );
    assert!(event.node.dir && event.node.value.is_none());
    assert_eq!(event.prev_node.unwrap().value.as_deref(), Some("v"));
    assert!(get(&store, "/f", false).dir);
}

#[test]
fn in_order_create_names_the_child_after_the_new_index() {
    let mut store = Store::new();
    ok(&mut store, set("/x", "1"));
    let first = ok(&mut store, post("/queue", "job1", false));
    assert_eq!(first.action, Action::Create);
    assert_eq!(first.node.key, "/queue/00000000000000000002");
    let second = ok(&mut store, post("/queue/", "job2", true));
    assert_eq!(second.node.key, "/queue/00000000000000000003");
    assert!(second.node.dir);
    let at_root = ok(&mut store, post("/", "r", false));
    assert_eq!(at_root.node.key, "/00000000000000000004");
    assert_eq!(
        keys(&get(&store, "/queue", false).nodes),
        ["/queue/00000000000000000002", "/queue/00000000000000000003"]
    );
}

#[test]
fn update_without_ttl_makes_the_node_permanent() {
    let mut store = Store::new();
    let event = ok(&mut store, set_ttl("/t", "w", T0 + 30 * SECOND));
    assert_eq!(event.node.expiration, Some(T0 + 30 * SECOND));
    assert!(store.has_ttl_nodes());
    let updated = ok(&mut store, update("/t", "u", None));
    assert_eq!(updated.node.expiration, None);
    assert_eq!(
        updated.prev_node.unwrap().expiration,
        Some(T0 + 30 * SECOND)
    );
    assert!(!store.has_ttl_nodes());
    ok(&mut store, cas("/t", "c", None, 2));
    ok(&mut store, update("/t", "u", Some(T0)));
    assert!(store.has_ttl_nodes());
    ok(&mut store, set("/t", "s"));
    assert!(!store.has_ttl_nodes(), "a set without ttl drops the TTL");
    let (_, _) = run(
        &mut store,
        Command::Sync {
            now: T0 + 100 * SECOND,
        },
    );
    assert_eq!(get(&store, "/t", false).value.as_deref(), Some("s"));
}

#[test]
fn expirations_before_2000_mean_no_ttl_on_set_and_create() {
    let mut store = Store::new();
    let event = ok(
        &mut store,
        set_ttl("/old", "v", MIN_EXPIRE_AT_UNIX_NANOS - 1),
    );
    assert_eq!(event.node.expiration, None);
    let created = ok(
        &mut store,
        Command::Create {
            key: "/c".into(),
            value: "v".into(),
            dir: false,
            expire_at: Some(0),
            in_order: false,
        },
    );
    assert_eq!(created.node.expiration, None);
    assert!(!store.has_ttl_nodes());
}

#[test]
fn dir_ttl_update_reports_new_index_but_keeps_stored_modified_index() {
    let mut store = Store::new();
    ok(&mut store, mkdir("/d"));
    ok(&mut store, set("/d/child", "v"));
    let event = ok(&mut store, update("/d", "", Some(T0 + 60 * SECOND)));
    assert!(event.node.dir && event.node.value.is_none());
    assert_eq!(
        (event.node.modified_index, event.node.created_index),
        (3, 1)
    );
    assert_eq!(event.node.expiration, Some(T0 + 60 * SECOND));
    let stored = get(&store, "/d", false);
    assert_eq!((stored.modified_index, stored.created_index), (1, 1));
    assert_eq!(stored.expiration, Some(T0 + 60 * SECOND));
    let next = ok(&mut store, update("/d", "", None));
    assert_eq!(next.prev_node.unwrap().modified_index, 1);
}

#[test]
fn refresh_keeps_value_moves_indexes_and_never_notifies() {
    let mut store = Store::new();
    ok(&mut store, set_ttl("/r", "keep", T0 + SECOND));
    store.watch("/r", false, true, 0, 7).unwrap();
    let mut fired = Vec::new();
    let refresh = Command::Set {
        key: "/r".into(),
        value: String::new(),
        dir: false,
        expire_at: Some(T0 + 9 * SECOND),
        refresh: true,
    };
    let event = store.apply(&refresh, &mut fired).unwrap().unwrap();
    assert!(event.refresh && fired.is_empty());
    assert_eq!(event.node.value.as_deref(), Some("keep"));
    assert_eq!(
        (event.node.created_index, event.node.modified_index),
        (2, 2)
    );
    let update_refresh = Command::Update {
        key: "/r".into(),
        value: String::new(),
        expire_at: Some(T0 + 10 * SECOND),
        refresh: true,
    };
    let event = store.apply(&update_refresh, &mut fired).unwrap().unwrap();
    assert!(event.refresh && fired.is_empty());
    assert_eq!(
        (event.node.created_index, event.node.modified_index),
        (2, 3)
    );
    let cas_refresh = Command::CompareAndSwap {
        key: "/r".into(),
        value: String::new(),
        prev_value: Some("keep".into()),
        prev_index: 0,
        expire_at: Some(T0 + 11 * SECOND),
        refresh: true,
    };
    let event = store.apply(&cas_refresh, &mut fired).unwrap().unwrap();
    assert_eq!(event.node.value.as_deref(), Some("keep"));
    assert!(fired.is_empty());
    // History scans skip refreshes: waitIndex 2 returns nothing, and the next real write fires.
    assert_eq!(
        store.watch("/r", false, false, 2, 8),
        Ok(WatchStart::Parked {
            registered_index: 4
        })
    );
    let (result, fired) = run(&mut store, set("/r", "new"));
    let written = result.unwrap().unwrap();
    assert_eq!(written.node.modified_index, 5);
    let ids: Vec<WatcherId> = fired.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        [7, 8],
        "the first non-refresh write fires both watchers"
    );
    assert_eq!(
        store.watcher_count(),
        1,
        "one-shot watcher 8 fired and left; stream 7 stays"
    );
}

// ---- listing and hidden keys --------------------------------------------------------------

#[test]
fn listing_is_sorted_direct_and_hides_underscore_nodes_at_every_level() {
    let mut store = Store::new();
    ok(&mut store, set("/b", "1"));
    ok(&mut store, set("/a/x", "2"));
    ok(&mut store, set("/a/_h", "3"));
    ok(&mut store, set("/a/sub/y", "4"));
    ok(&mut store, set("/_top/z", "5"));
    ok(&mut store, set("/only/_secret", "6"));
    let root = get(&store, "/", false);
    assert_eq!(
        (
            root.key.as_str(),
            root.dir,
            root.modified_index,
            root.created_index
        ),
        ("", true, 0, 0)
    );
    assert_eq!(keys(&root.nodes), ["/a", "/b", "/only"]);
    assert!(
        root.nodes.as_ref().unwrap()[0].nodes.is_none(),
        "non-recursive: child dirs without nodes"
    );
    let recursive = get(&store, "/", true);
    let a = &recursive.nodes.as_ref().unwrap()[0];
    assert_eq!(keys(&a.nodes), ["/a/sub", "/a/x"]);
    assert_eq!(keys(&a.nodes.as_ref().unwrap()[0].nodes), ["/a/sub/y"]);
    assert!(
        recursive.nodes.as_ref().unwrap()[2].nodes.is_none(),
        "all-hidden dir has no nodes"
    );
    assert!(get(&store, "/only", true).nodes.is_none());
    assert_eq!(keys(&get(&store, "/_top", false).nodes), ["/_top/z"]);
    assert_eq!(get(&store, "/a/_h", false).value.as_deref(), Some("3"));
    assert_eq!(get(&store, "/b", true).value.as_deref(), Some("1"));
    assert!(Store::new()
        .get("", false, false)
        .unwrap()
        .node
        .nodes
        .is_none());
}

// ---- TTL and Sync -------------------------------------------------------------------------

#[test]
fn sync_expires_oldest_first_each_with_its_own_index_and_event() {
    let mut store = Store::new();
    ok(&mut store, set_ttl("/late", "v", T0 + 2 * SECOND));
    ok(&mut store, set_ttl("/b", "v", T0 + SECOND));
    ok(&mut store, set_ttl("/a", "v", T0 + SECOND));
    ok(&mut store, set_ttl("/never", "v", T0 + 9 * SECOND));
    ok(&mut store, set("/permanent", "p"));
    store.watch("/", true, true, 0, 1).unwrap();
    let (result, fired) = run(
        &mut store,
        Command::Sync {
            now: T0 + SECOND - 1,
        },
    );
    assert_eq!(
        (result, fired.len(), store.current_index()),
        (Ok(None), 0, 5)
    );
    let (_, fired) = run(
        &mut store,
        Command::Sync {
            now: T0 + 2 * SECOND,
        },
    );
    let expired: Vec<(String, u64)> = fired
        .iter()
        .map(|(_, e)| (e.node.key.clone(), e.node.modified_index))
        .collect();
    assert_eq!(
        expired,
        [
            ("/a".to_owned(), 6),
            ("/b".to_owned(), 7),
            ("/late".to_owned(), 8)
        ]
    );
    assert_eq!(store.current_index(), 8);
    let event = &fired[0].1;
    assert_eq!(event.action, Action::Expire);
    assert_eq!(
        (
            event.node.value.as_ref(),
            event.node.dir,
            event.node.created_index
        ),
        (None, false, 3)
    );
    let prev = event.prev_node.as_ref().unwrap();
    assert_eq!(
        (prev.value.as_deref(), prev.expiration),
        (Some("v"), Some(T0 + SECOND))
    );
    assert!(store.get("/a", false, false).is_err());
    assert!(store.has_ttl_nodes());
    assert!(store.stats_json().contains("\"expireCount\":3"));
}

#[test]
fn expiring_a_dir_removes_its_subtree_and_keeps_parents() {
    let mut store = Store::new();
    ok(
        &mut store,
        Command::Set {
            key: "/p/dir".into(),
            value: String::new(),
            dir: true,
            expire_at: Some(T0),
            refresh: false,
        },
    );
    ok(&mut store, set_ttl("/p/dir/inner", "v", T0 + SECOND));
    ok(&mut store, set("/p/dir/_h/x", "v"));
    store.watch("/p/dir/_h/x", false, false, 0, 5).unwrap();
    let (_, fired) = run(
        &mut store,
        Command::Sync {
            now: T0 + 5 * SECOND,
        },
    );
    assert_eq!(
        store.current_index(),
        4,
        "one index for the dir; its TTL'd child went with it"
    );
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].0, 5);
    assert_eq!(
        (fired[0].1.node.key.as_str(), fired[0].1.node.dir),
        ("/p/dir", true)
    );
    assert!(!store.has_ttl_nodes());
    assert!(
        get(&store, "/p", false).nodes.is_none(),
        "parent dir survives, now empty"
    );
}

// ---- watches ------------------------------------------------------------------------------

#[test]
fn live_watch_rules_exact_recursive_and_non_recursive_dir() {
    let mut store = Store::new();
    ok(&mut store, mkdir("/dir"));
    assert_eq!(parked(store.watch("/dir", false, false, 0, 1).unwrap()), 1);
    store.watch("/dir", true, false, 0, 2).unwrap();
    store.watch("/dir/k", false, false, 0, 3).unwrap();
    store.watch("/", true, true, 0, 4).unwrap();
    let (result, fired) = run(&mut store, set("/dir/k", "v"));
    let ids: Vec<WatcherId> = fired.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        [4, 2, 3],
        "root first, then ancestors, then the key itself"
    );
    assert_eq!(fired[0].1, result.unwrap().unwrap());
    assert_eq!(
        store.watcher_count(),
        2,
        "one-shots 2 and 3 removed; 1 (non-recursive dir) and stream 4 stay"
    );
    let (_, fired) = run(&mut store, set("/dir/k2", "v"));
    assert_eq!(fired.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [4]);
}

#[test]
fn live_recursive_watch_skips_hidden_below_but_not_watches_on_or_inside_hidden() {
    let mut store = Store::new();
    store.watch("/foo", true, true, 0, 1).unwrap();
    store.watch("/foo/_x", false, true, 0, 2).unwrap();
    store.watch("/foo/_x", true, true, 0, 3).unwrap();
    store.watch("/foo/_d", true, true, 0, 4).unwrap();
    let (_, fired) = run(&mut store, set("/foo/_x", "v"));
    assert_eq!(fired.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [2, 3]);
    let (_, fired) = run(&mut store, set("/foo/_d/deep", "v"));
    assert_eq!(fired.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [4]);
    let (_, fired) = run(&mut store, set("/foo/a/_b/c", "v"));
    assert!(fired.is_empty());
    let (_, fired) = run(&mut store, set("/foo/visible", "v"));
    assert_eq!(fired.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1]);
}

#[test]
fn history_scan_matches_hidden_keys_and_ancestor_deletes() {
    let mut store = Store::new();
    ok(&mut store, mkdir("/sdir"));
    ok(&mut store, set("/sdir/_hidden", "h"));
    let event = ready(store.watch("/sdir", true, false, 1, 1).unwrap());
    assert_eq!((event.node.key.as_str(), event.etcd_index), ("/sdir", 2));
    let event = ready(store.watch("/sdir", true, false, 2, 1).unwrap());
    assert_eq!(event.node.key, "/sdir/_hidden");
    ok(&mut store, set("/sdirx", "not a child"));
    ok(&mut store, delete("/sdir", false, true));
    let event = ready(
        store
            .watch("/sdir/_hidden/deeper", false, false, 3, 1)
            .unwrap(),
    );
    assert_eq!(
        (event.action, event.node.key.as_str()),
        (Action::Delete, "/sdir")
    );
    let _ = parked(store.watch("/sdirx/y", false, false, 4, 2).unwrap());
    let _ = parked(store.watch("/sdir", false, false, 5, 3).unwrap());
    assert_eq!(store.watcher_count(), 2);
}

#[test]
fn stream_watch_satisfied_from_history_is_not_registered() {
    let mut store = Store::new();
    ok(&mut store, set("/s", "1"));
    let event = ready(store.watch("/s", false, true, 1, 9).unwrap());
    assert_eq!(event.node.value.as_deref(), Some("1"));
    assert_eq!(store.watcher_count(), 0);
    let (_, fired) = run(&mut store, set("/s", "2"));
    assert!(fired.is_empty());
}

#[test]
fn future_wait_index_waits_for_that_index() {
    let mut store = Store::new();
    store.watch("/k", false, false, 3, 1).unwrap();
    let (_, fired) = run(&mut store, set("/k", "1"));
    assert!(fired.is_empty());
    ok(&mut store, set("/other", "2"));
    let (_, fired) = run(&mut store, set("/k", "3"));
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].1.node.modified_index, 3);
}

#[test]
fn deleting_an_ancestor_notifies_descendant_watchers_with_the_dir_event() {
    let mut store = Store::new();
    ok(&mut store, set("/a/b/c", "v"));
    ok(&mut store, set("/a/_h", "v"));
    store.watch("/a/b/c", false, false, 0, 1).unwrap();
    store.watch("/a/_h", false, false, 0, 2).unwrap();
    store.watch("/a/not-there", false, false, 0, 3).unwrap();
    store.watch("/a", false, true, 0, 4).unwrap();
    let (result, fired) = run(&mut store, delete("/a", true, true));
    let event = result.unwrap().unwrap();
    let mut ids: Vec<WatcherId> = fired.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [1, 2, 4, 4],
        "watchers on removed paths; the stream on the dir itself twice, as in etcd"
    );
    assert!(fired.iter().all(|(_, fired_event)| *fired_event == event));
    assert_eq!(store.watcher_count(), 2, "3 still waits, stream 4 stays");
}

#[test]
fn stream_watcher_on_a_deleted_key_gets_the_event_twice_like_etcd() {
    // etcd 3.4.23, verified live: `watch --stream /sw`, set /sw, delete /sw -> set, delete, delete.
    let mut store = Store::new();
    store.watch("/sw", false, true, 0, 1).unwrap();
    store.watch("/sw", false, false, 0, 2).unwrap();
    let (_, fired) = run(&mut store, set("/sw", "1"));
    assert_eq!(fired.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1, 2]);
    store.watch("/sw", false, false, 0, 3).unwrap();
    let (_, fired) = run(&mut store, delete("/sw", false, false));
    let ids: Vec<WatcherId> = fired.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [1, 3, 1], "the one-shot fires once, the stream twice");
    assert!(fired
        .iter()
        .all(|(_, event)| event.action == Action::Delete));
    assert_eq!(store.watcher_count(), 1);
}

#[test]
fn remove_watcher_forgets_it() {
    let mut store = Store::new();
    store.watch("/k", false, true, 0, 1).unwrap();
    store.watch("/k", false, true, 0, 2).unwrap();
    store.remove_watcher(1);
    store.remove_watcher(99);
    let (_, fired) = run(&mut store, set("/k", "v"));
    assert_eq!(fired.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [2]);
    assert!(store.stats_json().ends_with("\"watchers\":1}"));
}

// ---- internal writes and stats ------------------------------------------------------------

#[test]
fn internal_writes_consume_an_index_but_are_invisible() {
    let mut store = Store::new();
    store.watch("/", true, true, 0, 1).unwrap();
    let (result, fired) = run(
        &mut store,
        Command::Internal {
            key: "/0/members/1".into(),
            value: "m".into(),
        },
    );
    assert_eq!(
        (result, fired.len(), store.current_index()),
        (Ok(None), 0, 1)
    );
    assert_eq!(store.internal_value("/0/members/1"), Some("m"));
    assert!(store.get("/0", false, false).is_err());
    assert!(get(&store, "/", true).nodes.is_none());
    assert_eq!(
        parked(store.watch("/0/members/1", false, false, 1, 2).unwrap()),
        1
    );
    let event = ok(&mut store, set("/user", "v"));
    assert_eq!(event.node.modified_index, 2);
}

#[test]
fn stats_count_successes_and_failures_per_operation() {
    let mut store = Store::new();
    ok(&mut store, set("/a", "1"));
    fail(&mut store, update("/missing", "v", None));
    ok(&mut store, update("/a", "2", None));
    fail(&mut store, cas("/a", "x", Some("nope"), 0));
    fail(&mut store, cad("/a", Some("nope"), 0));
    ok(&mut store, delete("/a", false, false));
    store.get("/a", false, false).unwrap_err();
    store.get("/", false, false).unwrap();
    assert_eq!(
        store.stats_json(),
        "{\"getsSuccess\":1,\"getsFail\":1,\"setsSuccess\":1,\"setsFail\":0,\
         \"deleteSuccess\":1,\"deleteFail\":0,\"updateSuccess\":1,\"updateFail\":1,\
         \"createSuccess\":0,\"createFail\":0,\"compareAndSwapSuccess\":0,\
         \"compareAndSwapFail\":1,\"compareAndDeleteSuccess\":0,\"compareAndDeleteFail\":1,\
         \"expireCount\":0,\"watchers\":0}"
    );
}

#[test]
fn history_dir_delete_does_not_match_a_sibling_with_the_same_prefix() {
    let mut store = Store::new();
    ok(&mut store, mkdir("/foo"));
    ok(&mut store, delete("/foo", true, false));
    assert_eq!(
        parked(store.watch("/foobar", false, false, 2, 1).unwrap()),
        2
    );
    let event = ready(store.watch("/foo/bar", false, false, 2, 2).unwrap());
    assert_eq!(
        (event.action, event.node.key.as_str()),
        (Action::Delete, "/foo")
    );
}

#[test]
fn recursive_listing_of_a_deep_tree_is_built_without_recursion() {
    let mut store = Store::new();
    let depth = 3000;
    ok(&mut store, set(&"/a".repeat(depth), "leaf"));
    let mut node = get(&store, "/", true);
    let mut levels = 0;
    while let Some(mut children) = node.nodes.take() {
        assert_eq!(children.len(), 1);
        node = children.pop().expect("one child");
        levels += 1;
    }
    assert_eq!(levels, depth);
    assert_eq!(node.value.as_deref(), Some("leaf"));
}

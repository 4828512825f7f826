//! `raftkv`: the server. Takes etcd's flags (`--name`, `--data-dir`, `--listen-client-urls`, …)
//! in Go's `-flag`/`--flag` forms and as `ETCD_*` environment variables.

use std::process::ExitCode;

use raftkv::node::{Config, Node};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-version") {
        println!("raftkv Version: {}", env!("CARGO_PKG_VERSION"));
        println!(
            "etcd API compatibility: {}",
            raftkv::api::cluster::ETCD_SERVER_VERSION
        );
        return ExitCode::SUCCESS;
    }
    if args
        .iter()
        .any(|a| a == "--help" || a == "-help" || a == "-h")
    {
        println!("usage: raftkv [flags]\n\nraftkv takes etcd's flags, e.g. --name, --data-dir, --listen-client-urls,\n--advertise-client-urls, --listen-peer-urls, --initial-advertise-peer-urls,\n--initial-cluster, --initial-cluster-state, --initial-cluster-token, --snapshot-count,\nand ETCD_* environment variables. See README.md.");
        return ExitCode::SUCCESS;
    }
    limit_malloc_arenas();
    let config = match Config::from_args_and_env(&args, |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("raftkv: {error}");
            return ExitCode::from(2);
        }
    };
    for flag in &config.ignored_flags {
        eprintln!("raftkv: note: flag --{flag} is accepted for etcd compatibility and ignored");
    }
    if config.proxy != "off" {
        return run_proxy(&config);
    }
    let listen_urls = config.listen_client_urls.clone();
    let workers = config.max_client_workers;
    let node = match Node::start(config) {
        Ok(node) => node,
        Err(error) => {
            eprintln!("raftkv: cannot start: {error}");
            return ExitCode::from(1);
        }
    };
    if !node.wait_ready(std::time::Duration::from_secs(5)) {
        eprintln!(
            "raftkv: no quorum yet; serving client requests anyway (writes wait for a leader)"
        );
    }
    let mut servers = Vec::new();
    for url in &listen_urls {
        match raftkv::api::server::serve(node.clone(), url, workers) {
            Ok(server) => {
                eprintln!("raftkv: serving client requests on {}", server.local_addr);
                servers.push(server);
            }
            Err(error) => {
                eprintln!("raftkv: {error}");
                return ExitCode::from(1);
            }
        }
    }
    eprintln!(
        "raftkv: member {} (name {}) of cluster {} is ready",
        raftkv::node::ids::format_id(node.member_id),
        node.config.name,
        raftkv::node::ids::format_id(node.cluster_id)
    );
    // SIGTERM / SIGINT: stop cleanly so the WAL records a clean shutdown. A member removed
    // from the cluster stops too, as etcd's does (after a moment, so the reply to the removal
    // it may have served goes out).
    let removed = || node.removed_members.read().contains(&node.member_id);
    while !stop_requested() && !removed() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if removed() {
        eprintln!("raftkv: this member was removed from the cluster; stopping");
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    eprintln!("raftkv: stopping");
    node.shutdown();
    ExitCode::SUCCESS
}

/// `--proxy on|readonly`: forward client requests to the cluster, join no quorum.
fn run_proxy(config: &Config) -> ExitCode {
    match raftkv::api::proxy::start(config) {
        Ok(proxy) => {
            eprintln!(
                "raftkv: proxy serving client requests on {}, forwarding to {:?}",
                proxy.local_addr,
                proxy.endpoints()
            );
            while !stop_requested() {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("raftkv: cannot start the proxy: {error}");
            ExitCode::from(1)
        }
    }
}

/// glibc gives every thread that allocates under contention its own arena (up to 8 per core),
/// and memory freed in one arena is not reused by the others: with a worker pool of 128
/// threads that fragmentation, not live data, dominated resident memory. Two arenas keep
/// contention low on this kind of machine and the heap compact.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn stop_requested() -> bool {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(libc::SIGTERM, handler);
            libc::signal(libc::SIGINT, handler);
        }
    });
    STOP.load(std::sync::atomic::Ordering::SeqCst)
}

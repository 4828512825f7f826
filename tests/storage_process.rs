//! Durability on real processes: raftkv killed with SIGKILL at random moments under concurrent
//! writes (every acknowledged write is there after each restart, and nothing that was never
//! written appears), and a full disk (a small tmpfs): writes are refused with a clear error,
//! reads go on, and writes resume when space returns, with nothing lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raftkv::bench::process::free_port;
use raftkv::client::http::{encode_form, Deadlines, HttpClient, Request, Url};

/// A raftkv process, killed by PID when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(data_dir: &Path, client_port: u16, peer_port: u16, extra: &[&str]) -> Server {
    let client = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let child = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["--name", "s", "--data-dir"])
        .arg(data_dir)
        .args([
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("s={peer}")])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning raftkv");
    let server = Server { child };
    let deadline = Instant::now() + Duration::from_secs(15);
    while call(client_port, "GET", "/v2/keys/", None).map(|(s, _)| s) != Ok(200) {
        assert!(
            Instant::now() < deadline,
            "raftkv did not come up within 15 s in {}",
            data_dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// One request with its own connection; Err on any transport failure.
fn call(
    port: u16,
    method: &str,
    path: &str,
    form: Option<&[(&str, String)]>,
) -> Result<(u16, String), String> {
    let url =
        Url::parse(&format!("http://127.0.0.1:{port}{path}")).map_err(|e| format!("{e:?}"))?;
    let body = form.map(|pairs| encode_form(pairs).into_bytes());
    let mut headers = Vec::new();
    if body.is_some() {
        headers.push((
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ));
    }
    let request = Request {
        method: method.to_string(),
        url,
        headers,
        body,
    };
    let deadline = Some(Instant::now() + Duration::from_secs(10));
    let mut client = HttpClient::new(Some(Duration::from_secs(1)));
    let response = client
        .send(
            &request,
            Deadlines {
                headers: deadline,
                body: deadline,
            },
        )
        .map_err(|e| format!("{e:?}"))?;
    Ok((
        response.status,
        String::from_utf8_lossy(&response.body).into_owned(),
    ))
}

/// Every key → value under `dir` (recursive, one level of keys is enough here).
fn list(port: u16, dir: &str) -> BTreeMap<String, String> {
    let (status, body) =
        call(port, "GET", &format!("/v2/keys{dir}?recursive=true"), None).expect("listing");
    if status == 404 && body.contains("\"errorCode\":100") {
        return BTreeMap::new();
    }
    assert_eq!(status, 200, "listing {dir}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("listing is JSON");
    let mut out = BTreeMap::new();
    for node in json["node"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if let (Some(key), Some(value)) = (node["key"].as_str(), node["value"].as_str()) {
            out.insert(key.to_string(), value.to_string());
        }
    }
    out
}

/// A small seeded generator (splitmix64), so a failing run can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("raftkv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[derive(Default)]
struct Ledger {
    /// key → value of every write that was acknowledged (2xx).
    acknowledged: BTreeMap<String, String>,
    /// key → every value ever sent for it (acknowledged or not).
    attempted: BTreeMap<String, Vec<String>>,
}

#[test]
fn acknowledged_writes_survive_sigkill_at_random_moments() {
    let seed: u64 = std::env::var("RAFTKV_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed {seed} (replay with RAFTKV_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let data_dir = temp_dir("crash");
    let (client_port, peer_port) = (free_port(), free_port());
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let started = Instant::now();
    const CYCLES: usize = 20;
    for cycle in 0..CYCLES {
        let server = spawn(
            &data_dir,
            client_port,
            peer_port,
            &["--snapshot-count", "300"],
        );
        check(
            &ledger.lock().unwrap(),
            &list(client_port, "/crash"),
            seed,
            cycle,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|writer| {
                let ledger = ledger.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) && n < 2000 {
                        // Half new keys, half overwrites of a per-writer key.
                        let key = if n % 2 == 0 {
                            format!("/crash/c{cycle}-w{writer}-{n}")
                        } else {
                            format!("/crash/w{writer}")
                        };
                        let value = format!("c{cycle}-n{n}");
                        ledger
                            .lock()
                            .unwrap()
                            .attempted
                            .entry(key.clone())
                            .or_default()
                            .push(value.clone());
                        match call(
                            client_port,
                            "PUT",
                            &format!("/v2/keys{key}"),
                            Some(&[("value", value.clone())]),
                        ) {
                            Ok((status, _)) if status == 200 || status == 201 => {
                                ledger.lock().unwrap().acknowledged.insert(key, value);
                            }
                            _ => break,
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50 + rng.next() % 500));
        drop(server); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.join().unwrap();
        }
    }
    let server = spawn(&data_dir, client_port, peer_port, &[]);
    let ledger = ledger.lock().unwrap();
    check(&ledger, &list(client_port, "/crash"), seed, CYCLES);
    eprintln!(
        "{CYCLES} SIGKILL cycles, {} acknowledged writes checked, {:?}",
        ledger.acknowledged.len(),
        started.elapsed()
    );
    assert!(
        ledger.acknowledged.len() > CYCLES,
        "too few writes were acknowledged to test anything"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Every acknowledged write is present (an overwritten key holds the acknowledged value or a
/// later attempted one), and every present key and value was attempted.
fn check(ledger: &Ledger, found: &BTreeMap<String, String>, seed: u64, cycle: usize) {
    for (key, value) in &ledger.acknowledged {
        let attempts = &ledger.attempted[key];
        let acked_at = attempts
            .iter()
            .rposition(|v| v == value)
            .expect("acknowledged values were attempted");
        let Some(present) = found.get(key) else {
            panic!(
                "seed {seed}, after cycle {cycle}: acknowledged key {key} = {value} is missing ({} keys found, {} acknowledged)",
                found.len(),
                ledger.acknowledged.len()
            );
        };
        let present_at = attempts.iter().rposition(|v| v == present);
        assert!(
            present_at.is_some_and(|at| at >= acked_at),
            "seed {seed}, after cycle {cycle}: {key} is {present:?}, older than the acknowledged {value:?}"
        );
    }
    for (key, value) in found {
        let attempted = ledger
            .attempted
            .get(key)
            .is_some_and(|values| values.contains(value));
        assert!(
            attempted,
            "seed {seed}, after cycle {cycle}: {key} = {value} was never written"
        );
    }
}

/// Unmounts the tmpfs when dropped.
struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_full_disk_refuses_writes_serves_reads_and_recovers_when_space_returns() {
    let mount_point = temp_dir("fulldisk");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
        .arg(&mount_point)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root); CI runs as root");
        return;
    }
    let _mount = Mount(mount_point.clone());
    // Space we can give back later.
    let filler = mount_point.join("filler");
    std::fs::write(&filler, vec![1u8; 2 << 20]).unwrap();
    let data_dir = mount_point.join("data");
    let (client_port, peer_port) = (free_port(), free_port());
    let extra = [
        "--wal-segment-bytes",
        "524288",
        "--snapshot-count",
        "1000000",
    ];
    let server = spawn(&data_dir, client_port, peer_port, &extra);

    let value = "v".repeat(8 * 1024);
    let mut acknowledged = Vec::new();
    let mut refusal = None;
    let started = Instant::now();
    for n in 0..2000 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the disk never filled"
        );
        let key = format!("/full/k{n}");
        match call(
            client_port,
            "PUT",
            &format!("/v2/keys{key}"),
            Some(&[("value", value.clone())]),
        ) {
            Ok((200 | 201, _)) => acknowledged.push(key),
            Ok((status, body)) => {
                refusal = Some((status, body));
                break;
            }
            Err(e) => panic!("transport error while filling the disk: {e}"),
        }
    }
    let (status, body) = refusal.expect("2000 writes of 8 KiB fit in a 6 MiB tmpfs?");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("\"errorCode\":300"), "{body}");
    // Once the node knows the disk is full, a write is refused at once and says why.
    let quick = Instant::now();
    let (status, body) = call(
        client_port,
        "PUT",
        "/v2/keys/full/more",
        Some(&[("value", "x".to_string())]),
    )
    .unwrap();
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("no space"),
        "the refusal should say the disk is full: {body}"
    );
    assert!(
        quick.elapsed() < Duration::from_secs(2),
        "a refused write took {:?}",
        quick.elapsed()
    );
    // Reads go on.
    let (status, _) = call(
        client_port,
        "GET",
        &format!("/v2/keys{}", acknowledged[0]),
        None,
    )
    .unwrap();
    assert_eq!(status, 200);

    // Space returns: writes resume.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match call(
            client_port,
            "PUT",
            "/v2/keys/full/after",
            Some(&[("value", "back".to_string())]),
        ) {
            Ok((200 | 201, _)) => break,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("writes did not resume after space returned: {other:?}"),
        }
    }
    // Nothing acknowledged was lost or damaged, across a restart too.
    drop(server);
    let _server = spawn(&data_dir, client_port, peer_port, &extra);
    let found = list(client_port, "/full");
    for key in &acknowledged {
        assert_eq!(
            found.get(key),
            Some(&value),
            "acknowledged {key} lost after the disk filled"
        );
    }
    assert_eq!(found.get("/full/after").map(String::as_str), Some("back"));
}

#[test]
fn a_second_process_on_the_same_data_dir_is_refused_and_says_why() {
    let data_dir = temp_dir("locked");
    let (client_port, peer_port) = (free_port(), free_port());
    let _first = spawn(&data_dir, client_port, peer_port, &[]);
    let (other_client, other_peer) = (
        format!("http://127.0.0.1:{}", free_port()),
        format!("http://127.0.0.1:{}", free_port()),
    );
    let output = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["--name", "s", "--data-dir"])
        .arg(&data_dir)
        .args([
            "--listen-client-urls",
            &other_client,
            "--listen-peer-urls",
            &other_peer,
        ])
        .output()
        .expect("running a second raftkv");
    assert!(
        !output.status.success(),
        "a second process started on a locked data dir"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&data_dir.display().to_string()),
        "the refusal should name the data dir: {stderr}"
    );
    drop(_first);
    let _ = std::fs::remove_dir_all(&data_dir);
}

"""Drives python-etcd (0.4.5, Debian's python3-etcd) through the v2 API and prints what it
saw, with indexes made relative to the first write so two servers can be compared line by
line. Used by tests/python_etcd.rs against both etcd and raftkv.

usage: etcd_client_walk.py PORT PREFIX
"""
import sys
import threading
import time

import etcd

port, prefix = int(sys.argv[1]), sys.argv[2]
client = etcd.Client(host="127.0.0.1", port=port, read_timeout=5)
base = None
lines = []


def rel(index):
    return "-" if index is None else f"+{index - base}"


def show(label, result):
    if isinstance(result, etcd.EtcdResult):
        lines.append(
            f"{label}: action={result.action} key={result.key} value={result.value!r} dir={result.dir} "
            f"ttl={result.ttl} modified={rel(result.modifiedIndex)} created={rel(result.createdIndex)} "
            f"newKey={getattr(result, 'newKey', None)}"
        )
    else:
        lines.append(f"{label}: {result!r}")


def error(label, fn):
    try:
        fn()
        lines.append(f"{label}: no error")
    except etcd.EtcdException as e:
        text = str(e)
        # Error texts carry store indexes in brackets ([4 != 5]); keep their shape only.
        lines.append(f"{label}: {type(e).__name__}")
        del text


lines.append(f"version keys: {sorted(client.version and ['etcdserver', 'etcdcluster'])}")
lines.append(f"machines: {len(client.machines)}")
lines.append(f"members: {len(client.members)}")
lines.append(f"leader has name: {bool(client.leader.get('name'))}")
first = client.write(f"{prefix}/a", "1")
base = first.modifiedIndex
show("write", first)
show("read", client.read(f"{prefix}/a"))
show("write ttl", client.write(f"{prefix}/t", "x", ttl=60))
result = client.read(f"{prefix}/t")
result.value = "y"
show("update", client.update(result))
error("stale update", lambda: client.update(result))
show("test_and_set", client.test_and_set(f"{prefix}/a", "2", "1"))
error("test_and_set mismatch", lambda: client.test_and_set(f"{prefix}/a", "3", "1"))
show("refresh", client.refresh(f"{prefix}/t", ttl=30))
show("append", client.write(f"{prefix}/q", "job", append=True))
show("mkdir", client.write(f"{prefix}/d", None, dir=True, ttl=60))
show("dir ttl update", client.write(f"{prefix}/d", None, dir=True, ttl=120, prevExist=True))
error("not a file", lambda: client.write(f"{prefix}/d", "v"))
error("already exists", lambda: client.write(f"{prefix}/a", "v", prevExist=False))
error("key not found", lambda: client.read(f"{prefix}/missing"))
client.write(f"{prefix}/r/x/1", "one")
client.write(f"{prefix}/r/y", "two")
leaves = sorted(child.key for child in client.read(f"{prefix}/r", recursive=True, sorted=True).leaves)
lines.append(f"leaves: {leaves}")

seen = []


def watcher():
    seen.append(client.watch(f"{prefix}/w", timeout=5))


thread = threading.Thread(target=watcher)
thread.start()
time.sleep(0.3)
client.write(f"{prefix}/w", "fired")
thread.join()
show("watch", seen[0])
show("watch index", client.watch(f"{prefix}/a", index=base + 1, timeout=5))
error("watch timeout", lambda: client.watch(f"{prefix}/never", timeout=0.5))
show("delete recursive", client.delete(f"{prefix}/r", recursive=True))
lock = etcd.Lock(client, f"{prefix.strip('/')}-lock")
lock.acquire(lock_ttl=60)
lines.append(f"lock acquired: {lock.is_acquired}")
lock.release()
lines.append(f"lock released: {not lock.is_acquired}")
print("\n".join(lines))

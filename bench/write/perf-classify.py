#!/usr/bin/env python3
"""Sorts the samples of a `perf record -g` of the server into the parts of a request (the
first matching category of each sample's stack wins, in the order below) and prints each
part's share:

    perf record -F 2000 -g -p <server pid> -o perf.data -- sleep 8   # while wrk runs
    perf script -i perf.data | bench/write/perf-classify.py
"""
import sys, collections, re
# perf script output: header line then stack frames, blank line separates samples
cats = [
 ("sqlite commit (writer)", lambda c,s: c.startswith("store-writer")),
 ("checkpoint thread", lambda c,s: c.startswith("store-check")),
 ("md5", lambda c,s: "md5::" in s or "Md5" in s),
 ("crc/checksum", lambda c,s: "crc" in s.lower() and "crc" in s),
 ("sigv4/auth", lambda c,s: "sigv4" in s or "codeyard_wire::auth" in s or "hmac" in s.lower() or "sha2::" in s),
 ("iam eval", lambda c,s: "codeyard_iam" in s),
 ("store reads (sqlite on request thread)", lambda c,s: "sqlite3" in s or "rusqlite" in s),
 ("store hand-off (channel send/recv, wake)", lambda c,s: "mpmc" in s or "oneshot" in s),
 ("serde_json", lambda c,s: "serde_json" in s),
 ("socket write (response)", lambda c,s: "writev" in s or "libc_write" in s and "TcpStream" in s),
 ("socket read (request)", lambda c,s: "recv" in s and ("TcpStream" in s or "libc_recv" in s)),
 ("epoll/idle switch", lambda c,s: "epoll_wait" in s or "park" in s),
 ("s3s parse/ops", lambda c,s: "s3s::" in s),
 ("hyper/http", lambda c,s: "hyper" in s or "http::" in s),
 ("allocator", lambda c,s: re.search(r"\b(_int_malloc|_int_free|malloc|cfree|realloc|malloc_consolidate|unlink_chunk)", s) is not None),
 ("codeyard s3 engine/api", lambda c,s: "codeyard_s3" in s),
 ("other", lambda c,s: True),
]
counts = collections.Counter(); total = 0
def flush(comm, frames):
    global total
    if not comm: return
    s = "\n".join(frames)
    total += 1
    for name, f in cats:
        if f(comm, s): counts[name] += 1; break
comm=None; frames=[]
for line in sys.stdin:
    if not line.strip():
        flush(comm, frames); comm=None; frames=[]; continue
    if not line.startswith((" ", "\t")):
        comm = line.split()[0]; frames=[]
    else:
        frames.append(line.strip())
flush(comm, frames)
for name,_ in cats:
    if counts[name]: print(f"{100*counts[name]/total:5.1f}%  {name}")
print("samples", total)

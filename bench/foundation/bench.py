#!/usr/bin/env python3
"""Foundation benchmark: codeyard (release build) against moto_server, in one run.

Measures requests/s and p99 latency of STS GetCallerIdentity and IAM GetRole at concurrency
1 and 16, plus codeyard's start-up time to a healthy /_codeyard/health and its idle RSS.

The load generator signs each request once with botocore's SigV4 signer and replays it over
keep-alive connections from separate processes (one per concurrent client, so Python's GIL
is not the limit). Both servers are measured by the same client on the same machine in the
same run; the ratio is what matters, the absolute numbers depend on the machine.

Usage: bench.py [--codeyard PATH] [--seconds N]
"""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def signed(port, service, body):
    """Headers and body of a SigV4-signed awsQuery POST."""
    req = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials("test", "test"), service, "us-east-1").add_auth(req)
    return dict(req.headers.items()), body


def call(port, service, body):
    headers, body = signed(port, service, body)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/", body, headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def worker(port, headers, body, seconds, out):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    lat = []
    errors = 0
    end = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        if t0 >= end:
            break
        c.request("POST", "/", body, headers)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            errors += 1
        lat.append(time.perf_counter() - t0)
    out.put((lat, errors))


def load(port, service, body, concurrency, seconds):
    headers, body = signed(port, service, body)
    q = mp.Queue()
    procs = [mp.Process(target=worker, args=(port, headers, body, seconds, q)) for _ in range(concurrency)]
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    lat = sorted(x for r, _ in results for x in r)
    errors = sum(e for _, e in results)
    rps = len(lat) / seconds
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
    return rps, p99, errors


def wait_http(url, timeout=30.0):
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status < 500:
                    return time.perf_counter() - start
        except Exception as e:  # not up yet
            if hasattr(e, "code") and e.code < 500:
                return time.perf_counter() - start
        time.sleep(0.005)
    raise RuntimeError(f"{url} did not come up")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--codeyard", default=os.path.join(here, "../../target/release/codeyard"))
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()

    data_dir = tempfile.mkdtemp(prefix="codeyard-bench-")
    cy_port = free_port()
    t0 = time.perf_counter()
    cy = subprocess.Popen([args.codeyard, "serve", "--port", str(cy_port), "--data-dir", data_dir],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{cy_port}/_codeyard/health")
    startup_ms = (time.perf_counter() - t0) * 1000
    time.sleep(1.0)
    idle_rss = rss_kib(cy.pid)

    moto_port = free_port()
    moto = subprocess.Popen(["moto_server", "-p", str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{moto_port}/moto-api/")
    servers = {"codeyard": cy_port, "moto": moto_port}
    try:
        for name, port in servers.items():
            status, data = call(port, "iam", f"Action=CreateRole&Version=2010-05-08&RoleName=bench-role&AssumeRolePolicyDocument={urllib.parse.quote(TRUST, safe='')}")
            assert status == 200, (name, status, data[:300])
        ops = [
            ("STS GetCallerIdentity", "sts", "Action=GetCallerIdentity&Version=2011-06-15"),
            ("IAM GetRole", "iam", "Action=GetRole&Version=2010-05-08&RoleName=bench-role"),
        ]
        rows = []
        for label, service, body in ops:
            for conc in (1, 16):
                res = {name: load(port, service, body, conc, args.seconds) for name, port in servers.items()}
                rows.append((label, conc, res))
        loaded_rss = rss_kib(cy.pid)
    finally:
        moto.terminate()
        cy.terminate()
        moto.wait()
        cy.wait()
        shutil.rmtree(data_dir, ignore_errors=True)

    print(f"machine: {os.cpu_count()} cores; {args.seconds:.0f} s per measurement; client: presigned requests replayed by N processes\n")
    print("| operation | concurrency | codeyard req/s | moto req/s | ratio (req/s) | codeyard p99 ms | moto p99 ms | errors (cy/moto) |")
    print("|---|---|---|---|---|---|---|---|")
    for label, conc, res in rows:
        (c_rps, c_p99, c_err), (m_rps, m_p99, m_err) = res["codeyard"], res["moto"]
        print(f"| {label} | {conc} | {c_rps:,.0f} | {m_rps:,.0f} | {c_rps / m_rps:.1f}x | {c_p99:.2f} | {m_p99:.2f} | {c_err}/{m_err} |")
    print()
    print(f"codeyard start-up to healthy /_codeyard/health: {startup_ms:.0f} ms")
    print(f"codeyard idle RSS: {idle_rss / 1024:.1f} MiB (after the load: {loaded_rss / 1024:.1f} MiB)")


if __name__ == "__main__":
    import urllib.parse  # noqa: F401  (used above)
    main()

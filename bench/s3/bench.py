#!/usr/bin/env python3
"""S3 PUT/GET throughput of codeyard vs the disk's limit vs moto_server, in one run.

For 1 MiB and 100 MiB objects it measures, with the same bytes and the same client (boto3,
path-style, one connection, sequential requests):
  * limit:    write the bytes to a file on the same disk + fsync (PUT), read them back (GET);
  * codeyard: PutObject / GetObject against a codeyard server (release build);
  * moto:     PutObject / GetObject against moto_server (in-memory).
and prints MiB/s and the ratios codeyard/limit and codeyard/moto.

Usage: bench/s3/bench.py [path/to/codeyard binary]   (default: target/release/codeyard)
"""
import os, shutil, socket, subprocess, sys, tempfile, time

import boto3
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/codeyard")
CASES = [(1 << 20, 40), (100 << 20, 3)]  # (object size, objects per measurement)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} never opened")


def client(endpoint):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                      request_checksum_calculation="when_required", response_checksum_validation="when_required"))


def measure_s3(c, size, n, data):
    bucket = f"bench-{size}"
    try:
        c.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    except c.exceptions.BucketAlreadyOwnedByYou:
        pass
    t = time.perf_counter()
    for i in range(n):
        c.put_object(Bucket=bucket, Key=f"o{i}", Body=data)
    put = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(n):
        body = c.get_object(Bucket=bucket, Key=f"o{i}")["Body"]
        got = 0
        for chunk in body.iter_chunks(1 << 20):
            got += len(chunk)
        assert got == size
    get = time.perf_counter() - t
    return size * n / put / 2**20, size * n / get / 2**20


def measure_disk(dirpath, size, n, data):
    t = time.perf_counter()
    for i in range(n):
        p = os.path.join(dirpath, f"o{i}")
        with open(p + ".tmp", "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(p + ".tmp", p)
    fd = os.open(dirpath, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    put = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(n):
        with open(os.path.join(dirpath, f"o{i}"), "rb") as f:
            while f.read(1 << 20):
                pass
    get = time.perf_counter() - t
    return size * n / put / 2**20, size * n / get / 2**20


def main():
    work = tempfile.mkdtemp(prefix="codeyard-bench-", dir=os.path.join(ROOT, "target"))
    procs = []
    try:
        cport, mport = free_port(), free_port()
        procs.append(subprocess.Popen([BIN, "serve", "--port", str(cport), "--data-dir", os.path.join(work, "codeyard")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(["moto_server", "-p", str(mport)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(cport)
        wait_port(mport)
        cy, moto = client(f"http://127.0.0.1:{cport}"), client(f"http://127.0.0.1:{mport}")
        rows = []
        for size, n in CASES:
            data = os.urandom(size)
            disk_dir = os.path.join(work, f"disk-{size}")
            os.makedirs(disk_dir)
            d = measure_disk(disk_dir, size, n, data)
            c = measure_s3(cy, size, n, data)
            m = measure_s3(moto, size, n, data)
            rows.append((size, n, d, c, m))
        label = lambda s: f"{s >> 20} MiB"
        print("| object | n | op | disk+fsync MiB/s | codeyard MiB/s | moto MiB/s | codeyard/limit | codeyard/moto |")
        print("|---|---|---|---|---|---|---|---|")
        for size, n, d, c, m in rows:
            for k, op in enumerate(["PUT", "GET"]):
                print(f"| {label(size)} | {n} | {op} | {d[k]:.0f} | {c[k]:.0f} | {m[k]:.0f} | {c[k] / d[k]:.2f} | {c[k] / m[k]:.2f} |")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""EventBridge benchmark: PutEvents throughput and end-to-end matching throughput with 1, 100
and 10,000 rules on a bus (all but one rule non-matching), codeyard against moto_server in the
same run.

For each server and rule count it
  1. creates a bus with N rules: one matches 1 event in 10 and has a target; the other N-1 want
     `source` values that never occur (as on a real bus: most rules are for other sources);
  2. runs CLIENTS threads calling PutEvents (10 entries per call) for SECONDS seconds and reports
     accepted events/s;
  3. for codeyard, also waits until its ingress queue is drained (every accepted event matched
     against the bus's rules and its deliveries queued) and reports matched events/s end to end.

Usage: bench/events/run.py [--codeyard target/release/codeyard] [--rules 1,100,10000]
                           [--seconds 10] [--clients 4]
"""
import argparse, json, os, socket, subprocess, sys, tempfile, threading, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

REGION = "eu-west-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(service, endpoint):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(max_pool_connections=64, retries={"max_attempts": 0}),
    )


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception as e:  # noqa: BLE001
            if hasattr(e, "code"):  # an HTTP error answer means it is up
                return
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def setup_bus(ev, bus, n, target_arn):
    ev.create_event_bus(Name=bus)
    ev.put_rule(Name="match", EventBusName=bus,
                EventPattern=json.dumps({"source": ["bench.match"], "detail": {"kind": ["order"]}}))
    ev.put_targets(Rule="match", EventBusName=bus, Targets=[{"Id": "t", "Arn": target_arn}])

    def one(i):
        ev.put_rule(Name=f"other-{i:05d}", EventBusName=bus,
                    EventPattern=json.dumps({"source": [f"svc-{i}"], "detail-type": ["thing changed"],
                                             "detail": {"state": ["on"]}}))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(1, n)))


def entries(bus, k):
    out = []
    for j in range(10):
        matching = j == 0
        out.append({"EventBusName": bus, "Source": "bench.match" if matching else f"noise-{(k * 10 + j) % 997}",
                    "DetailType": "bench", "Detail": json.dumps({"kind": "order", "n": k * 10 + j})})
    return out


def put_events_load(endpoint, bus, seconds, clients):
    stop = time.time() + seconds
    counts = [0] * clients
    errors = [0] * clients

    def worker(w):
        ev = client("events", endpoint)
        k = 0
        while time.time() < stop:
            r = ev.put_events(Entries=entries(bus, w * 1_000_000 + k))
            counts[w] += 10 - r["FailedEntryCount"]
            errors[w] += r["FailedEntryCount"]
            k += 1
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    return sum(counts), sum(errors), elapsed, t0


def codeyard_queues(endpoint):
    return json.load(urllib.request.urlopen(f"{endpoint}/_codeyard/events/queues"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--codeyard", default="target/release/codeyard")
    ap.add_argument("--rules", default="1,100,10000")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    counts = [int(x) for x in args.rules.split(",")]

    data = tempfile.mkdtemp(prefix="codeyard-bench-events-")
    cy = subprocess.Popen([args.codeyard, "serve", "--port", "0", "--data-dir", data],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    cy_endpoint = cy.stdout.readline().split()[3]
    moto_port = free_port()
    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    moto_endpoint = f"http://127.0.0.1:{moto_port}"
    wait_http(f"{cy_endpoint}/_codeyard/health")
    wait_http(moto_endpoint)
    results = []
    try:
        for n in counts:
            bus = f"bench-{n}"
            # codeyard: an SQS target is accepted and each delivery recorded (codeyard runs no SQS).
            cy_ev = client("events", cy_endpoint)
            setup_bus(cy_ev, bus, n, f"arn:aws:sqs:{REGION}:000000000000:bench")
            accepted, failed, elapsed, t0 = put_events_load(cy_endpoint, bus, args.seconds, args.clients)
            while True:
                q = codeyard_queues(cy_endpoint)
                if q["ingress"] == 0:
                    break
                time.sleep(0.05)
            drained = time.time() - t0
            results.append(("codeyard", n, accepted / elapsed, accepted / drained, failed))

            moto_ev = client("events", moto_endpoint)
            sqs = client("sqs", moto_endpoint)
            qurl = sqs.create_queue(QueueName=f"bench-{n}")["QueueUrl"]
            qarn = sqs.get_queue_attributes(QueueUrl=qurl, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            setup_bus(moto_ev, bus, n, qarn)
            accepted, failed, elapsed, _ = put_events_load(moto_endpoint, bus, args.seconds, args.clients)
            # moto matches and delivers inside the PutEvents call: accepted/s is end to end.
            results.append(("moto_server", n, accepted / elapsed, accepted / elapsed, failed))
            print(f"rules={n}: {results[-2]} {results[-1]}", file=sys.stderr, flush=True)
    finally:
        cy.terminate()
        moto.terminate()
        cy.wait()
        moto.wait()

    print("| server | rules on bus | PutEvents accepted events/s | matched end-to-end events/s | failed entries |")
    print("|---|---|---|---|---|")
    for s, n, put, e2e, failed in results:
        print(f"| {s} | {n} | {put:.0f} | {e2e:.0f} | {failed} |")
    print()
    print("| rules on bus | codeyard/moto PutEvents | codeyard/moto end-to-end |")
    print("|---|---|---|")
    for n in counts:
        c = next(r for r in results if r[0] == "codeyard" and r[1] == n)
        m = next(r for r in results if r[0] == "moto_server" and r[1] == n)
        print(f"| {n} | {c[2] / m[2]:.1f}x | {c[3] / m[3]:.1f}x |")


if __name__ == "__main__":
    main()

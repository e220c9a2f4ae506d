#!/usr/bin/env python3
"""Second phase of scripts/bench-orders.sh: accept -> ship -> confirm on orders just placed.

Usage: bench-orders-transitions.py BASE_URL TOKENS ORDERS SECONDS

TOKENS: lines "phone<TAB>access token"; ORDERS: lines "order id<TAB>seller phone<TAB>buyer
phone". One thread per buyer (closed loop): it walks its orders, each through accept and ship
(the seller shop's operator) and confirm (the buyer), until its orders are done or SECONDS have
passed. Standard library only. Prints transitions/s, p50/p99 per action, statuses, and the CPU
this client used (it shares the machine with the server and PostgreSQL).
"""

import collections
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
import uuid


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    base, tokens_path, orders_path, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    url = urllib.parse.urlparse(base)
    tokens = dict(line.rstrip("\n").split("\t") for line in open(tokens_path) if line.strip())
    by_buyer = collections.defaultdict(list)
    for line in open(orders_path):
        if line.strip():
            order, seller, buyer = line.rstrip("\n").split("\t")
            by_buyer[buyer].append((order, seller))
    lock = threading.Lock()
    latencies = collections.defaultdict(list)
    statuses = collections.Counter()
    deadline = time.monotonic() + seconds
    steps = [
        ("accept", "seller", {}),
        ("ship", "seller", {"courier_name": "Kurir Bench", "courier_phone": "+6281399990001"}),
        ("confirm", "buyer", {}),
    ]

    def buyer_loop(buyer, orders):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        mine = collections.defaultdict(list)
        counts = collections.Counter()
        for order, seller in orders:
            for action, who, body in steps:
                if time.monotonic() >= deadline:
                    break
                token = tokens[seller if who == "seller" else buyer]
                payload = json.dumps(body)
                headers = {
                    "Authorization": "Bearer " + token,
                    "Content-Type": "application/json",
                    "Idempotency-Key": str(uuid.uuid4()),
                }
                t0 = time.perf_counter()
                try:
                    conn.request("POST", f"/api/v1/orders/{order}/{action}", payload, headers)
                    resp = conn.getresponse()
                    resp.read()
                    status = str(resp.status)
                except (OSError, http.client.HTTPException) as e:
                    status = type(e).__name__
                    conn.close()
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                mine[action].append(time.perf_counter() - t0)
                counts[f"{action} {status}"] += 1
                if status != "200":
                    break
        conn.close()
        with lock:
            for k, v in mine.items():
                latencies[k].extend(v)
            statuses.update(counts)

    cpu0 = os.times()
    start = time.monotonic()
    threads = [threading.Thread(target=buyer_loop, args=(b, o)) for b, o in by_buyer.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    cpu1 = os.times()
    total = sum(len(v) for v in latencies.values())
    ok = sum(n for k, n in statuses.items() if k.endswith(" 200"))
    print(f"transitions answered: {total} in {wall:.1f} s ({len(threads)} buyers, "
          f"{sum(len(o) for o in by_buyer.values())} orders offered)")
    print(f"transitions 200/s: {ok / wall:.1f}")
    for action, _, _ in steps:
        v = latencies.get(action, [])
        print(f"  {action}: {len(v)} requests, p50 {percentile(v, 50) * 1000:.1f} ms, "
              f"p99 {percentile(v, 99) * 1000:.1f} ms")
    print("responses by action and status: " + ", ".join(f"{k}: {n}" for k, n in sorted(statuses.items())))
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    print(f"client CPU: {cpu:.1f} s over {wall:.1f} s wall ({100 * cpu / wall:.0f} % of one core)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A natmatrix peer agent in Python (standard library only): an example of an external agent.

It speaks the same signed wire protocol as agents/udp-punch (so it pairs through the shipped TypeScript
rendezvous) and obeys the agent contract in README.md: environment in, one JSON verdict line on stdout,
logs on stderr, exit 0 connected / 1 no direct path / 2 bad environment.

Run a scenario with it:  sudo npm run scenario symmetric-vs-cone -- --agent agents/examples/udp_punch_peer.py
"""
import hashlib
import hmac
import json
import os
import select
import socket
import sys
import time

PING_INTERVAL = 0.020
REG_INTERVAL = 0.050
MAX_SKEW_MS = 30_000


def log(msg):
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} [py-{os.environ.get('NMX_ROLE', '?')}] {msg}\n")


def verdict(ok, code, **fields):
    print(json.dumps({"ok": ok, "path": "direct-udp" if ok else None, **fields}), flush=True)
    sys.exit(code)


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None or value == "":
        sys.stderr.write(f"bad environment: {name} is not set\n")
        sys.exit(2)
    return value


def endpoint(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def main():
    role = env("NMX_ROLE")
    if role not in ("a", "b"):
        sys.stderr.write(f"bad environment: NMX_ROLE must be a or b, not {role!r}\n")
        sys.exit(2)
    session, secret = env("NMX_SESSION"), env("NMX_SECRET").encode()
    rendezvous = endpoint(env("NMX_RENDEZVOUS"))
    port = int(env("NMX_LOCAL_PORT"))
    window = int(env("NMX_TIMEOUT_MS", "1000")) / 1000
    wait = int(env("NMX_WAIT_MS", "10000")) / 1000
    seq = 0

    def send(kind, to, **extra):
        nonlocal seq
        seq += 1
        # field order and compact separators match the TypeScript agents' JSON.stringify
        body = json.dumps({"t": kind, "s": session, "r": role, "ts": int(time.time() * 1000), "n": seq, **extra}, separators=(",", ":")).encode()
        sock.sendto(hmac.new(secret, body, hashlib.sha256).hexdigest().encode() + b"." + body, to)

    def receive(timeout):
        """One verified message of our session from the other side, or None."""
        ready, _, _ = select.select([sock], [], [], max(0.0, timeout))
        if not ready:
            return None, None
        data, src = sock.recvfrom(4096)
        sig, dot, body = data.partition(b".")
        if not dot or not hmac.compare_digest(sig, hmac.new(secret, body, hashlib.sha256).hexdigest().encode()):
            log(f"dropped an unsigned or forged datagram from {src}")
            return None, None
        try:
            msg = json.loads(body)
        except ValueError:
            return None, None
        if msg.get("s") != session or msg.get("r") == role or abs(msg.get("ts", 0) - time.time() * 1000) > MAX_SKEW_MS:
            return None, None
        return msg, src

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    log(f"bound 0.0.0.0:{port}; registering with {rendezvous[0]}:{rendezvous[1]}")

    # 1. register until the rendezvous tells us where the other peer is
    started, target, next_reg = time.monotonic(), None, 0.0
    while target is None:
        now = time.monotonic()
        if now - started > wait:
            verdict(False, 1, peer=None, reason=f"the rendezvous did not pair us within {int(wait * 1000)} ms")
        if now >= next_reg:
            send("reg", rendezvous)
            next_reg = now + REG_INTERVAL
        msg, src = receive(next_reg - time.monotonic())
        if msg and msg["t"] == "peer" and src == rendezvous:
            target = endpoint(msg["ep"])
    paired = time.monotonic()
    log(f"paired: peer at {target[0]}:{target[1]}; punching for up to {int(window * 1000)} ms")

    # 2. punch: ping the peer, answer pings at the source they came from (peer-reflexive), confirm on pong
    next_ping, pings = 0.0, 0
    while time.monotonic() - paired < window:
        now = time.monotonic()
        if now >= next_ping:
            send("ping", target)
            pings += 1
            next_ping = now + PING_INTERVAL
        msg, src = receive(min(next_ping, paired + window) - time.monotonic())
        if not msg:
            continue
        if msg["t"] == "ping":
            send("pong", src)
            target = src
        elif msg["t"] in ("pong", "close"):
            ttd = round((time.monotonic() - paired) * 1000, 1)
            for _ in range(3):
                send("close", src)
                time.sleep(0.010)
            log(f"direct path to {src[0]}:{src[1]} after {ttd} ms")
            verdict(True, 0, peer=f"{src[0]}:{src[1]}", timeToDirectMs=ttd)
    verdict(False, 1, peer=None, reason=f"no pong within {int(window * 1000)} ms of learning peer {target[0]}:{target[1]} (sent {pings} pings)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The real client across a node failure in a three-node cluster (issue 8).

Run by ci/cluster.sh with CHATBOX_TEST_POSTGRES and CHATBOX_TEST_REDIS set (ci/services.sh) and
the paths of the release server and client. Starts three `chatbox-server` nodes on 127.0.0.1
sharing one PostgreSQL database (created here, dropped at the end), one Redis bus and one
server.key. Alice chats with `chatbox-client chat --plain --server n1,n2,n3` and
CHATBOX_TOTP_SECRET; Bob is on n2. n1 is killed with SIGKILL while Alice is logged in there and
while she has a line in flight: her client must reconnect to another node by itself, log in
again with a fresh code it computes, rejoin her rooms, re-send the line the server never
acknowledged, and keep chatting; Bob must get every line Alice typed; ONLINE must show Alice on
her new node once n1's lease is reaped; both clients exit 0 at end of input. TOTP codes for
registration come from `oathtool`. Everything talks to 127.0.0.1 and every wait is bounded.
"""

import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

import clientproc
from clientproc import free_port, totp

SERVER, CLIENT = sys.argv[1], sys.argv[2]
PG, REDIS = os.environ["CHATBOX_TEST_POSTGRES"], os.environ["CHATBOX_TEST_REDIS"]
T = tempfile.mkdtemp(prefix="chatbox-cluster-client-")
DATA, HOME = f"{T}/data", f"{T}/home"
DB_NAME = f"cb_client_{random.randrange(16**8):08x}"
DB_URL = f"{PG.rsplit('/', 1)[0]}/{DB_NAME}"
BUS = f"{REDIS.rstrip('/')}/{random.randrange(1, 16)}"
ENV = dict(os.environ, CHATBOX_HOME=HOME, NO_COLOR="1")
PROCS = []


def drop_database():
    subprocess.run(["psql", PG, "-qAtc", f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"],
                   capture_output=True)


def show_server_output():
    for f in sorted(os.listdir(T)):
        if f.endswith(".out"):
            print(f"--- {f}\n{open(os.path.join(T, f)).read()[-3000:]}")


check = clientproc.Checks("cluster_client", T, PROCS, cleanup=drop_database,
                          on_keep=show_server_output)
finish = check.finish


def sql(q):
    r = subprocess.run(["psql", DB_URL, "-qAtc", q], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"psql {q}: {r.stderr.strip()}") if r.returncode else None
    return r.stdout.strip()


def start_node(name):
    port = free_port()
    p = clientproc.start_listening(
        [SERVER, "--listen", f"127.0.0.1:{port}", "--data-dir", DATA, "--log-dir", f"{T}/log-{name}",
         "--database", DB_URL, "--bus", BUS, "--node-id", name, "--lease-secs", "3"],
        port, f"{T}/{name}.out", T, ENV, PROCS)
    if p:
        return p, f"127.0.0.1:{port}"
    check(False, f"node {name} started and listens")


def fingerprint(name):
    """The key fingerprint node `name` printed (its stdout may lag its listening socket)."""
    deadline = time.time() + 10
    while time.time() < deadline:
        m = re.search(r"SHA256:[A-Za-z0-9+/]{43}", open(f"{T}/{name}.out").read())
        if m:
            return m.group(0)
        time.sleep(0.1)
    return None


class Proc(clientproc.Proc):
    """The client with --server servers, CHATBOX_PASSWORD and maybe CHATBOX_TOTP_SECRET."""

    def __init__(self, servers, args, password, secret=None):
        env = dict(ENV, CHATBOX_PASSWORD=password)
        if secret:
            env["CHATBOX_TOTP_SECRET"] = secret
        super().__init__([CLIENT, "--server", ",".join(servers)] + args, env, PROCS)

    def close(self, timeout=60):
        return super().close(timeout)


def register(server, user, password):
    c = Proc([server], ["register", "--user", user], password)
    uri = c.wait_line(r"^otpauth://totp/")
    check(uri is not None, f"register {user} on {server}: otpauth URI printed")
    secret = re.search(r"secret=([A-Z2-7]+)", uri).group(1)
    c.send(totp(secret))
    rc = c.close()
    check(rc == 0, f"register {user}: exit 0 (stderr: {' | '.join(c.err[-2:])})")
    return secret


def main():
    r = subprocess.run(["psql", PG, "-qAtc", f"CREATE DATABASE {DB_NAME}"], capture_output=True,
                       text=True)
    check(r.returncode == 0, f"database {DB_NAME} created ({r.stderr.strip()})")
    # The Redis database holds the per-address login counters shared by the nodes: the cargo
    # cluster tests run just before may have left failures from 127.0.0.1 in this one.
    r = subprocess.run(["redis-cli", "-u", BUS, "FLUSHDB"], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0 and r.stdout.strip() == "OK",
          f"Redis database {BUS} emptied ({(r.stdout + r.stderr).strip()})")
    os.makedirs(DATA)
    n1, a1 = start_node("n1")  # the first node creates server.key; the others load it
    (n2, a2), (n3, a3) = start_node("n2"), start_node("n3")
    print(f"cluster_client: nodes n1={a1} n2={a2} n3={a3}, temp dir {T}")
    fps = {fingerprint(n) for n in ("n1", "n2", "n3")}
    check(len(fps) == 1 and None not in fps, f"the three nodes present one server key ({len(fps)})")

    pw = {"alice": "alice-Pa55word!", "bob": "bob's long passphrase"}
    alice_secret = register(a1, "alice", pw["alice"])
    bob_secret = register(a2, "bob", pw["bob"])
    # The registration spent the current step: start both logins in the next one, well inside
    # it, so the clients compute their own codes (CHATBOX_TOTP_SECRET) from then on.
    time.sleep(30 - time.time() % 30 + 1)

    alice = Proc([a1, a2, a3], ["chat", "--user", "alice", "--plain"], pw["alice"], alice_secret)
    check(alice.wait_line(r"^login alice") is not None,
          f"alice logged in on the first address, n1 ({' | '.join(alice.err[-2:])})")
    bob = Proc([a2], ["chat", "--user", "bob", "--plain"], pw["bob"], bob_secret)
    check(bob.wait_line(r"^login bob") is not None, f"bob logged in on n2 ({' | '.join(bob.err[-2:])})")
    check(sql("SELECT node || '/' || client_id FROM online WHERE statut = 'online' ORDER BY 1")
          == "n1/alice\nn2/bob", "ONLINE: alice on n1, bob on n2")
    alice.send("/join #ops")
    bob.send("/join #ops")
    check(alice.wait_line(r"^presence #ops bob join") is not None, "alice (n1) sees bob (n2) join #ops")
    alice.send("before the crash")
    check(bob.wait_line(r"^say #ops alice before the crash$") is not None,
          "bob (n2) gets alice's line from n1")

    # n1 dies with a line of alice's possibly in flight; she keeps typing during the outage.
    n1.send_signal(signal.SIGKILL)
    n1.wait()
    t_kill = time.time()
    alice.send("typed as n1 died")
    line = alice.wait_line(r"^reconnected to ", timeout=60)
    check(line is not None and a1 not in line,
          f"alice's client reconnected by itself to another node: {line!r} "
          f"({' | '.join(alice.err[-3:])})")
    took = time.time() - t_kill
    new_addr = line.split()[-1]
    new_node = {a2: "n2", a3: "n3"}.get(new_addr)
    check(new_node is not None, f"reconnected to a live node ({new_addr})")
    check(alice.wait_line(r"^login alice", after=alice.lines.index(line)) is not None,
          "alice logged in again with a code her client computed")
    check(bob.wait_line(r"^say #ops alice typed as n1 died$", timeout=30) is not None,
          "the line typed as n1 died reached bob (re-sent after the reconnect)")
    alice.send("after the failover")
    check(bob.wait_line(r"^say #ops alice after the failover$") is not None,
          "alice's line after the failover reaches bob in the rejoined #ops")
    bob.send("welcome back")
    check(alice.wait_line(r"^say #ops bob welcome back$") is not None,
          "bob's reply reaches alice on her new node")

    deadline = time.time() + 20
    while time.time() < deadline and sql("SELECT count(*) FROM online WHERE node = 'n1'") != "0":
        time.sleep(0.2)
    online = sql("SELECT node || '/' || client_id FROM online WHERE statut = 'online' ORDER BY 1")
    check(online == "\n".join(sorted([f"{new_node}/alice", "n2/bob"])),
          f"n1's rows reaped; ONLINE shows alice on {new_node}: {online!r}")
    stored = sql("SELECT count(*) FROM messages WHERE target = '#ops' AND sender = 'alice' "
                 "AND text = 'typed as n1 died'")
    check(stored == "1", f"the in-flight line is stored exactly once ({stored} copies)")

    check(alice.close() == 0, f"alice exits 0 at end of input ({' | '.join(alice.err[-2:])})")
    check(bob.close() == 0, "bob exits 0 at end of input")
    print(f"cluster_client: alice back on {new_node} {took:.1f} s after n1's SIGKILL")
    for p in (n2, n3):
        p.send_signal(signal.SIGTERM)
        p.wait(30)
    finish()


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as e:  # a crash in the script is a failed check, with cleanup
        check(False, f"unexpected {type(e).__name__}: {e}")

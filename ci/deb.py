#!/usr/bin/env python3
"""The installed packages as an operator runs them (issue 15), after ci/deb.sh's dpkg -i.

Starts /usr/bin/chatbox-server --config /etc/chatbox/chatbox.toml as the chatbox user
(setpriv: CI has no systemd), with CHATBOX_LISTEN, CHATBOX_METRICS and fewer PBKDF2
iterations from the environment (they override the file, which is what is being checked
too), registers two users and chats with /usr/bin/chatbox-client (codes from oathtool),
scrapes /metrics and /healthz with urllib, checks owners and modes under /var/lib/chatbox and
/var/log/chatbox, that every setting is documented in the conffile, and takes a backup."""

import grp
import os
import pwd
import re
import stat
import subprocess
import tempfile
import urllib.request

import clientproc
from clientproc import free_port, totp

SERVER, CLIENT, CONF = "/usr/bin/chatbox-server", "/usr/bin/chatbox-client", "/etc/chatbox/chatbox.toml"
T = tempfile.mkdtemp(prefix="chatbox-deb-")
PROCS = []
check = clientproc.Checks("deb", T, PROCS, on_keep=lambda: print(open(f"{T}/server.out").read()))
PORT, MPORT = free_port(), free_port()
ADDR = f"127.0.0.1:{PORT}"
ENV = dict(os.environ, CHATBOX_HOME=f"{T}/home", NO_COLOR="1")


def mode_owner(path):
    st = os.stat(path)
    return stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name


class Client(clientproc.Proc):
    def __init__(self, args, password):
        super().__init__([CLIENT, "--server", ADDR] + args, dict(ENV, CHATBOX_PASSWORD=password), PROCS)


def register(user, password):
    c = Client(["register", "--user", user], password)
    uri = c.wait_line(r"^otpauth://totp/")
    check(uri is not None, f"register {user} with the packaged client")
    secret = re.search(r"secret=([A-Z2-7]+)", uri).group(1)
    c.send(totp(secret))
    check(c.close() == 0, f"register {user}: confirmed (stderr: {' | '.join(c.err[-2:])})")
    scratch = [l.strip() for l in c.lines if re.fullmatch(r"\d{8}", l.strip())]
    check(len(scratch) == 10, f"register {user}: 10 scratch codes")
    return secret, scratch


def get(path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{MPORT}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def main():
    print(f"deb: server {ADDR}, metrics 127.0.0.1:{MPORT}, temp dir {T}")
    check(mode_owner(CONF) == (0o640, "root", "chatbox"), f"{CONF} is root:chatbox 0640")
    for d in ("/var/lib/chatbox", "/var/log/chatbox"):
        check(mode_owner(d) == (0o700, "chatbox", "chatbox"), f"{d} is chatbox:chatbox 0700")
    # Every setting of `serve` has its (commented) line in the conffile.
    out = subprocess.run([SERVER, "config", "check", "--config", CONF], capture_output=True,
                         text=True, cwd="/")
    check(out.returncode == 0, f"config check of the shipped file passes ({out.stderr.strip()})")
    keys = [l.split()[0] for l in out.stdout.splitlines() if l and not l.startswith("#") and " = " in l]
    conf = open(CONF).read()
    missing = [k for k in keys if not re.search(rf"^#? ?{re.escape(k)} = ", conf, re.M)]
    check(keys and not missing, f"every serve setting is documented in {CONF} (missing: {missing})")

    env = dict(os.environ, CHATBOX_LISTEN=ADDR, CHATBOX_METRICS=str(MPORT),
               CHATBOX_PBKDF2_ITERATIONS="10000")
    # setpriv execs the server itself (no parent in between), as systemd's User= would.
    cmd = ["setpriv", "--reuid=chatbox", "--regid=chatbox", "--init-groups", "--", SERVER, "--config", CONF]
    server = clientproc.start_listening(cmd, PORT, f"{T}/server.out", "/var/lib/chatbox", env, PROCS)
    check(server is not None, "packaged server started as chatbox with --config " + CONF)
    text = open(f"{T}/server.out").read()
    check("data: /var/lib/chatbox  logs: /var/log/chatbox" in text, "data and log dirs from the file")

    (a_secret, a_scratch), (b_secret, _) = register("alice", "alice-Pa55word!"), register("bob", "bob's long passphrase")
    alice = Client(["chat", "--user", "alice", "--otp", totp(a_secret, 30), "--plain"], "alice-Pa55word!")
    check(alice.wait_line(r"^login alice") is not None, "alice logged in")
    bob = Client(["chat", "--user", "bob", "--otp", totp(b_secret, 30), "--plain"], "bob's long passphrase")
    check(bob.wait_line(r"^login bob") is not None, "bob logged in")
    check(alice.wait_line(r"^presence #lobby bob join") is not None, "alice sees bob join")
    alice.send("hello from the package")
    check(bob.wait_line(r"^say #lobby alice hello from the package$") is not None, "bob gets alice's line")

    status, body = get("/metrics")
    check(status == 200, "GET /metrics is 200")
    def val(series):
        m = re.search(rf"^{re.escape(series)} (\S+)$", body, re.M)
        return float(m.group(1)) if m else None
    check(val('chatbox_logins_total{result="ok"}') == 2, "chatbox_logins_total{result=\"ok\"} 2")
    check(val("chatbox_registrations_total") == 2, "chatbox_registrations_total 2")
    check(val("chatbox_messages_total") == 1, "chatbox_messages_total 1")
    check(val('chatbox_connections{state="authenticated"}') == 2, "two authenticated connections")
    check(get("/healthz") == (200, "ok\n"), "GET /healthz is 200")
    check(alice.close() == 0 and bob.close() == 0, "clients exit 0")

    # What the server wrote: its user's, private.
    for d, names in (("/var/lib/chatbox", ["chatbox.db", "server.key"]),
                     ("/var/log/chatbox", ["sql.log", "info.log", "credentials.log", "chat.log"])):
        present = sorted(os.listdir(d))
        check(all(n in present for n in names), f"{d} holds {names} ({present})")
        bad = [(n, oct(m), u, g) for n in present for (m, u, g) in [mode_owner(f"{d}/{n}")]
               if (m, u, g) != (0o600, "chatbox", "chatbox")]
        check(not bad, f"every file in {d} is chatbox:chatbox 0600 ({bad})")

    # A backup while it runs, as root, to a new file.
    b = subprocess.run([SERVER, "backup", "--data-dir", "/var/lib/chatbox", f"{T}/backup.db"],
                       capture_output=True, text=True)
    check(b.returncode == 0 and "2 accounts, 1 messages" in b.stdout, f"backup: {b.stdout.strip()} {b.stderr.strip()}")
    check(stat.S_IMODE(os.stat(f"{T}/backup.db").st_mode) == 0o600, "backup is 0600")
    verify = subprocess.run(["setpriv", "--reuid=chatbox", "--regid=chatbox", "--init-groups", "--", SERVER, "verify-log", "--data-dir",
                             "/var/lib/chatbox", "/var/log/chatbox/chat.log"], capture_output=True, text=True)
    check(verify.returncode == 0, f"verify-log: {verify.stdout.strip()}")
    # Rotation as logrotate does it (postrotate's SIGHUP: pkill here, no systemd), when this
    # server reopens its logs on SIGHUP (verify-log then takes several files).
    usage = subprocess.run([SERVER, "verify-log", "--help"], capture_output=True, text=True).stdout
    if re.search(r"^Usage: .*\.\.\.", usage, re.M):
        r = subprocess.run(["logrotate", "-f", "-s", f"{T}/logrotate.state", "/etc/logrotate.d/chatbox-server"],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"logrotate -f ({r.stderr.strip()})")
        check(os.path.exists("/var/log/chatbox/chat.log.1"), "chat.log rotated to chat.log.1")
        # A scratch code: the next TOTP step may not have come yet.
        alice = Client(["chat", "--user", "alice", "--otp", a_scratch[0], "--plain"], "alice-Pa55word!")
        check(alice.wait_line(r"^login alice") is not None, "alice logs in after the rotation")
        alice.send("after the rotation")
        check(alice.wait_line(r"^say #lobby alice after the rotation$") is not None, "chat goes on after SIGHUP")
        check(alice.close() == 0, "alice exits 0")
        check(server.poll() is None, "server still running after SIGHUP")
        both = subprocess.run([SERVER, "verify-log", "--data-dir", "/var/lib/chatbox",
                               "/var/log/chatbox/chat.log.1", "/var/log/chatbox/chat.log"],
                              capture_output=True, text=True)
        check(both.returncode == 0, f"verify-log chat.log.1 chat.log as one chain: {both.stdout.strip()}")
        m, u, g = mode_owner("/var/log/chatbox/chat.log")
        check((m, u, g) == (0o600, "chatbox", "chatbox"), f"new chat.log is chatbox 0600 ({oct(m)} {u}:{g})")
    else:
        print("  (this server does not reopen its logs on SIGHUP yet: rotation step skipped)")
    server.terminate()
    check(server.wait(20) == 0, "server stops cleanly on SIGTERM")
    clientproc.Checks.finish(check)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""End-to-end test, as a person would run ChatBox (issue 6).

Builds nothing itself: ci/e2e.sh builds the release binaries and passes their paths. Starts the
real server in a temp dir on 127.0.0.1, registers users with the real client's scriptable mode
(TOTP codes from `oathtool`, an independent implementation), chats, checks what the other side
printed, the SQLite tables as the seed shows them, the four log files (expected lines, no
secrets), verify-log on the real and a tampered chat.log, SIGTERM + restart keeping accounts and
history, and finally drives the interactive menu under tmux and decodes the QR code on screen
with zbarimg. Everything talks to 127.0.0.1 only and every wait is bounded.
"""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import clientproc
from clientproc import free_port, totp

SERVER, CLIENT = sys.argv[1], sys.argv[2]
T = tempfile.mkdtemp(prefix="chatbox-e2e-")
DATA, LOGS, HOME = f"{T}/data", f"{T}/log", f"{T}/home"
PROCS = []
check = clientproc.Checks(
    "e2e", T, PROCS, cleanup=lambda: subprocess.run(["tmux", "kill-server"], capture_output=True))
finish = check.finish


PORT = free_port()
ADDR = f"127.0.0.1:{PORT}"
ENV = dict(os.environ, CHATBOX_HOME=HOME, NO_COLOR="1")


def start_server():
    p = clientproc.start_listening([SERVER, "--listen", ADDR, "--data-dir", DATA, "--log-dir", LOGS],
                                   PORT, f"{T}/server.out", T, ENV, PROCS)
    if p:
        return p
    print(open(f"{T}/server.out").read())
    check(False, "server started and listens")


class Proc(clientproc.Proc):
    """The client against ADDR with CHATBOX_PASSWORD=password."""

    def __init__(self, args, password):
        super().__init__([CLIENT, "--server", ADDR] + args, dict(ENV, CHATBOX_PASSWORD=password),
                         PROCS)


def register(user, password):
    c = Proc(["register", "--user", user], password)
    uri = c.wait_line(r"^otpauth://totp/")
    check(uri is not None, f"register {user}: otpauth URI printed on its own line")
    secret = re.search(r"secret=([A-Z2-7]+)", uri).group(1)
    check(f"issuer=ChatBox" in uri and "digits=6" in uri and "period=30" in uri,
          f"register {user}: URI names issuer, digits, period")
    code = totp(secret)
    c.send(code)
    rc = c.close()
    scratch = [l for l in c.lines if re.fullmatch(r"\d{8}", l.strip())]
    check(rc == 0, f"register {user}: exit 0 (stderr: {' | '.join(c.err[-2:])})")
    check(len(scratch) == 10, f"register {user}: 10 scratch codes printed")
    return secret, code, scratch


def main():
    print(f"e2e: server {ADDR}, temp dir {T}")
    server = start_server()
    fp = re.search(r"SHA256:[A-Za-z0-9+/]{43}", open(f"{T}/server.out").read())
    check(fp is not None, "server printed its fingerprint")
    check(oct(os.stat(f"{DATA}/server.key").st_mode & 0o777) == "0o600", "server.key is 0600")

    pw = {"alice": "alice-Pa55word!", "bob": "bob's long passphrase"}
    alice_secret, alice_code, alice_scratch = register("alice", pw["alice"])
    bob_secret, bob_code, _ = register("bob", pw["bob"])

    # Registering an existing name: error, non-zero exit, the seed's behaviour.
    dup = Proc(["register", "--user", "alice"], "whatever-password")
    rc = dup.close()
    check(rc not in (0, None), "registering an existing name fails")

    # A pending registration is an anonymous ONLINE row, and is discarded when it ends.
    carol = Proc(["register", "--user", "carol"], "carol-password")
    check(carol.wait_line(r"^otpauth://") is not None, "carol's registration started")
    db = sqlite3.connect(f"file:{DATA}/chatbox.db?mode=ro", uri=True)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    check({"ONLINE", "REGISTERED"} <= tables, f"tables ONLINE and REGISTERED exist ({sorted(tables)})")
    rows = db.execute("SELECT Client_Id, ip_port, statut FROM ONLINE").fetchall()
    check(any(r[2] == "anonyme" and r[1].startswith("127.0.0.1:") for r in rows),
          f"ONLINE shows the pending client as anonyme: {rows}")
    carol.p.kill()
    carol.p.wait()

    # Log in both with codes for the next step (the current one was spent confirming).
    alice = Proc(["chat", "--user", "alice", "--otp", totp(alice_secret, 30), "--plain"], pw["alice"])
    check(alice.wait_line(r"^login alice") is not None, "alice logged in")
    bob = Proc(["chat", "--user", "bob", "--otp", totp(bob_secret, 30), "--plain"], pw["bob"])
    check(bob.wait_line(r"^login bob") is not None, "bob logged in")
    check(alice.wait_line(r"^presence #lobby bob join") is not None, "alice sees bob join #lobby")

    rows = db.execute("SELECT Client_Id, statut FROM ONLINE ORDER BY Client_Id").fetchall()
    check(("alice", "online") in rows and ("bob", "online") in rows, f"ONLINE: {rows}")
    reg = dict(db.execute("SELECT User, statut FROM REGISTERED").fetchall())
    check(reg.get("alice") == "ok" and reg.get("bob") == "ok" and "carol" not in reg,
          f"REGISTERED statut: {reg}")
    online = dict(db.execute("SELECT User, online FROM REGISTERED").fetchall())
    check(online.get("alice") == "ok", f"REGISTERED online flag: {online}")
    pwcol = db.execute("SELECT password FROM REGISTERED WHERE User='alice'").fetchone()[0]
    check(pwcol.startswith("$pbkdf2-sha256$i=600000,l=32$"), "password stored as PBKDF2 PHC string")
    last = db.execute("SELECT ip_port_last FROM REGISTERED WHERE User='alice'").fetchone()[0]
    check(last and last.startswith("127.0.0.1:"), f"ip_port_last recorded ({last})")

    alice.send("hello from alice")
    check(bob.wait_line(r"^say #lobby alice hello from alice$") is not None, "bob sees alice's line")
    bob.send("/msg alice psst, bob here")
    check(alice.wait_line(r"^private alice bob psst, bob here$") is not None,
          "alice gets bob's private message")
    alice.send("/me waves")
    check(bob.wait_line(r"^action #lobby alice waves$") is not None, "bob sees alice's /me")
    alice.send("/join #rust")
    check(alice.wait_line(r"^names #rust .*alice") is not None, "alice joined #rust (names listed)")
    bob.send("/join #rust")
    check(alice.wait_line(r"^presence #rust bob join") is not None, "alice sees bob join #rust")
    bob.send("rust room line")
    check(alice.wait_line(r"^say #rust bob rust room line$") is not None, "room message in #rust")
    check(alice.close() == 0, "alice exits 0 at EOF")
    check(bob.close() == 0, "bob exits 0 at EOF")

    # Wrong code: generic error, non-zero exit.
    bad = Proc(["chat", "--user", "bob", "--otp", "000000" if totp(bob_secret) != "000000" else "111111",
                "--plain"], pw["bob"])
    rc = bad.close()
    check(rc not in (0, None), f"wrong code refused (exit {rc}; {' | '.join(bad.err[-1:])})")

    # Logs: expected lines, and no secret anywhere.
    time.sleep(0.5)
    logs = {n: open(f"{LOGS}/{n}").read() for n in ["sql.log", "info.log", "credentials.log", "chat.log"]}
    check(fp.group(0) in logs["info.log"] and str(PORT) in logs["info.log"],
          "info.log has the fingerprint and listen address")
    cred = logs["credentials.log"]
    check(re.search(r"alice", cred) and re.search(r"regist", cred, re.I), "credentials.log has registrations")
    check(re.search(r"bob", cred) and re.search(r"fail", cred, re.I), "credentials.log has the failed login")
    check("hello from alice" in logs["chat.log"] and "psst, bob here" in logs["chat.log"],
          "chat.log has room and private messages")
    check(re.search(r"insert", logs["sql.log"], re.I) and "REGISTERED" in logs["sql.log"],
          "sql.log records database actions")
    secrets = [pw["alice"], pw["bob"], alice_secret, bob_secret] + alice_scratch
    everything = "\n".join(logs.values())
    leaked = [s for s in secrets if s in everything]
    leaked += [c for c in (alice_code, bob_code) if re.search(rf"(?<![0-9]){c}(?![0-9])", everything)]
    check(not leaked, f"no password, TOTP secret, code or scratch code in any log ({len(leaked)} found)")

    # verify-log: the real file verifies, a tampered copy fails at the right line.
    r = subprocess.run([SERVER, "verify-log", "--data-dir", DATA, f"{LOGS}/chat.log"],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"verify-log passes on chat.log ({r.stdout.strip()[:120]})")
    lines = logs["chat.log"].splitlines(keepends=True)
    check(len(lines) >= 3, f"chat.log has {len(lines)} lines")
    lines[1] = lines[1].replace("psst", "PSST") if "psst" in lines[1] else lines[1].replace("a", "b", 1)
    open(f"{T}/tampered.log", "w").write("".join(lines))
    r = subprocess.run([SERVER, "verify-log", "--data-dir", DATA, f"{T}/tampered.log"],
                       capture_output=True, text=True)
    out = r.stdout + r.stderr
    check(r.returncode != 0 and re.search(r"\b2\b", out), f"tampered copy fails at line 2 ({out.strip()[:120]})")

    # SIGTERM: clean exit; restart keeps accounts and history; a scratch code logs in once.
    server.send_signal(signal.SIGTERM)
    try:
        rc = server.wait(20)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, f"server exits 0 on SIGTERM (got {rc})")
    server = start_server()
    alice = Proc(["chat", "--user", "alice", "--otp", alice_scratch[0], "--plain"], pw["alice"])
    check(alice.wait_line(r"^login alice") is not None, "after restart alice logs in with a scratch code")
    check(alice.wait_line(r"^history #lobby \d+ alice say hello from alice$") is not None,
          "history after restart has alice's line")
    check(alice.close() == 0, "alice exits 0")
    again = Proc(["chat", "--user", "alice", "--otp", alice_scratch[0], "--plain"], pw["alice"])
    check(again.close() not in (0, None), "the same scratch code is refused the second time")
    db = sqlite3.connect(f"file:{DATA}/chatbox.db?mode=ro", uri=True)
    n = db.execute("SELECT COUNT(*) FROM REGISTERED WHERE statut='ok'").fetchone()[0]
    check(n == 2, f"accounts kept across restart ({n})")

    tmux_register()
    server.send_signal(signal.SIGTERM)
    server.wait(20)
    finish()


def screen():
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", "e2e"], capture_output=True,
                          text=True).stdout


def wait_screen(pattern, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = screen()
        if re.search(pattern, s):
            return s
        time.sleep(0.2)
    print(screen())
    return None


def decode_qr(text):
    """Renders the half-block cells on screen to images (both polarities) and asks zbarimg."""
    rows = [l for l in text.splitlines() if re.search("[▀▄█]", l)]
    if not rows:
        return None
    width = max(len(l) for l in rows)
    modules = []
    for l in rows:
        top, bottom = [], []
        for ch in l.ljust(width):
            top.append(ch in "▀█")
            bottom.append(ch in "▄█")
        modules += [top, bottom]
    for invert in (False, True):
        scale, pad = 6, 8
        h, w = len(modules), width
        pix = [[1 if (invert ^ m) else 0 for m in row] for row in modules]
        path = f"{T}/qr-{int(invert)}.pbm"
        with open(path, "w") as f:
            W, H = (w + 2 * pad) * scale, (h + 2 * pad) * scale
            f.write(f"P1\n{W} {H}\n")
            border = 1 if not invert else 0
            for y in range(-pad, h + pad):
                line = []
                for x in range(-pad, w + pad):
                    v = pix[y][x] if 0 <= y < h and 0 <= x < w else 0
                    line += [str(v)] * scale
                for _ in range(scale):
                    f.write(" ".join(line) + "\n")
        r = subprocess.run(["zbarimg", "-q", "--raw", path], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip()
    return None


def tmux_register():
    cmd = f"env CHATBOX_HOME={HOME} {CLIENT} --server {ADDR}"
    subprocess.run(["tmux", "kill-server"], capture_output=True)
    subprocess.run(["tmux", "new-session", "-d", "-s", "e2e", "-x", "220", "-y", "80", cmd], check=True)
    keys = lambda *k: subprocess.run(["tmux", "send-keys", "-t", "e2e", *k], check=True)
    check(wait_screen(r"1\).*Register") is not None, "tmux: the seed's menu is shown")
    keys("1", "Enter")
    check(wait_screen(r"(?i)user") is not None, "tmux: asks for a user name")
    keys("dave", "Enter")
    check(wait_screen(r"(?i)password") is not None, "tmux: asks for a password")
    keys("dave-password-1", "Enter")
    time.sleep(0.3)
    keys("dave-password-1", "Enter")
    s = wait_screen(r"otpauth://totp/\S+", 30)
    check(s is not None, "tmux: the otpauth URI is on screen")
    uri = re.search(r"otpauth://totp/\S+", s).group(0)
    check("dave-password-1" not in s, "tmux: the password was not echoed")
    decoded = decode_qr(s)
    check(decoded == uri, f"tmux: the QR code on screen decodes to the URI (got {decoded!r})")
    secret = re.search(r"secret=([A-Z2-7]+)", uri).group(1)
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    check(grouped in s, "tmux: the secret is shown in groups of four")
    keys(totp(secret), "Enter")
    s = wait_screen(r"\b\d{8}\b", 20)
    check(s is not None and len(re.findall(r"\b\d{8}\b", s)) >= 10, "tmux: scratch codes shown")
    open(f"{T}/tmux-register.txt", "w").write(s or "")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # a crash of the test itself is a failure, with its reason
        import traceback
        traceback.print_exc()
        check(False, f"e2e script error: {e}")

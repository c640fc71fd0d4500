#!/usr/bin/env python3
"""The Cortex-M device client against the real server (issue 18).

ci/device.sh builds the firmware and the release binaries and passes their paths, the firmware's
static RAM and the RAM budget. This script starts two real servers on 127.0.0.1 (A and B, each
with its own key), registers accounts with the real client's scriptable mode (TOTP codes from
oathtool), and boots the firmware under qemu-system-arm (mps2-an386) with its UART0 joined to a
server by `-serial tcp:` and its settings on the semihosting command line; its defmt output is
decoded by defmt-print. Then:

1. on A, with a real plain client in #devices: the hello, `!ping`/`pong` round trips, `!echo`
   of 1 000 bytes, `!stats`, and `!bye` → exit 0 within a time bound; peak stack within budget;
2. against B with A's key pinned: exit 3, and B never saw a login;
3. on A with a wrong password: exit 4;
4. against a stand-in server that sends a zero-length frame: exit 2;
5. on B (its own account, ping=2), B killed with SIGKILL mid-chat: exit 2 once the Pong is
   overdue.

Everything talks to 127.0.0.1, every wait is bounded, and every process is killed at the end.
"""

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import clientproc
from clientproc import free_port, totp

SERVER, CLIENT, ELF = sys.argv[1], sys.argv[2], sys.argv[3]
STATIC_RAM, RAM_BUDGET = int(sys.argv[4]), int(sys.argv[5])
T = tempfile.mkdtemp(prefix="chatbox-device-")
HOME = f"{T}/home"
PROCS = []
check = clientproc.Checks("device", T, PROCS)
ENV = dict(os.environ, CHATBOX_HOME=HOME, NO_COLOR="1")
ROOM = "#devices"
# Passed as semihosting words: no spaces, and no commas (QEMU's option syntax).
DEVICE_PW = "device-Passw0rd!"
DEVICE2_PW = "second-device-pw"
TESTER_PW = "tester's passphrase"


class Server:
    """A real chatbox-server in its own data directory under T, on a free port."""

    def __init__(self, name):
        self.name, self.port = name, free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.dir = f"{T}/{name}"
        os.makedirs(self.dir)
        self.out = f"{self.dir}/server.out"
        self.p = clientproc.start_listening(
            [SERVER, "--listen", self.addr, "--data-dir", "data", "--log-dir", "log",
             "--pbkdf2-iterations", "10000"], self.port, self.out, self.dir, ENV, PROCS)
        if self.p is None:
            print(open(self.out).read())
        check(self.p is not None, f"server {name} listens on {self.addr}")
        m = re.search(r"SHA256:[A-Za-z0-9+/]{43}", open(self.out).read())
        check(m is not None, f"server {name} printed its key fingerprint")
        self.key = m.group(0)

    def credentials_log(self):
        try:
            return open(f"{self.dir}/log/credentials.log").read()
        except OSError:
            return ""


def client(server, args, password):
    return clientproc.Proc([CLIENT, "--server", server.addr] + args,
                           dict(ENV, CHATBOX_PASSWORD=password), PROCS)


def register(server, user, password, previous_step=False):
    """Registers `user` on `server`; returns the TOTP secret. With `previous_step`, the
    confirmation code is the previous step's (the server accepts steps -1..+1 and records the
    step used), so that a login with the current step's code right after is fresh: that is
    what the device sends."""
    if previous_step and time.time() % 30 > 26:
        time.sleep(30 - time.time() % 30 + 0.5)  # not across a step boundary
    c = client(server, ["register", "--user", user], password)
    uri = c.wait_line(r"^otpauth://totp/")
    check(uri is not None, f"register {user} on {server.name}: otpauth URI printed")
    secret = re.search(r"secret=([A-Z2-7]+)", uri).group(1)
    c.send(totp(secret, -30 if previous_step else 0))
    rc = c.close()
    check(rc == 0, f"register {user} on {server.name}: exit 0 ({' | '.join(c.err[-2:])})")
    return secret


class Board:
    """The firmware on qemu-system-arm mps2-an386, UART0 joined to 127.0.0.1:`port`, the
    semihosting command line `words`; its defmt output decoded by defmt-print, line by line."""

    def __init__(self, name, port, words):
        self.name = name
        for w in words:
            assert "," not in w and " " not in w, w
        cmd = ["qemu-system-arm", "-cpu", "cortex-m4", "-machine", "mps2-an386",
               "-display", "none", "-monitor", "none",
               "-serial", f"tcp:127.0.0.1:{port},nodelay=on",
               "-semihosting-config", "enable=on,target=native," + ",".join(f"arg={w}" for w in words),
               "-kernel", ELF]
        self.started = time.monotonic()
        self.qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        PROCS.append(self.qemu)
        self.decoder = subprocess.Popen(["defmt-print", "-e", ELF], stdin=self.qemu.stdout,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        PROCS.append(self.decoder)
        self.qemu.stdout.close()  # the decoder holds it now
        self.lines = []
        self.cv = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.decoder.stdout:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()

    def wait_line(self, pattern, timeout=30):
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        with self.cv:
            while True:
                for line in self.lines:
                    if rx.search(line):
                        return line
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.cv.wait(min(left, 0.2))

    def wait_exit(self, timeout):
        """QEMU's exit status (the firmware's semihosting exit code) and the seconds since boot;
        None if it is still running after `timeout` s (then it is killed)."""
        try:
            rc = self.qemu.wait(timeout)
        except subprocess.TimeoutExpired:
            self.qemu.kill()
            self.qemu.wait()
            rc = None
        took = time.monotonic() - self.started
        try:
            self.decoder.wait(10)
        except subprocess.TimeoutExpired:
            self.decoder.kill()
        self.reader.join(5)
        err = self.qemu.stderr.read().decode(errors="replace").strip()
        with open(f"{T}/{self.name}.log", "w") as f:
            f.write("\n".join(self.lines) + "\n")
        if err:
            print(f"  ({self.name}: qemu stderr: {err[:300]})")
        return rc, took

    def show(self):
        for line in self.lines:
            print(f"    | {line}")


def device_words(user, password, secret, key, **extra):
    words = [f"user={user}", f"password={password}", f"totp={secret}", f"key={key}"]
    return words + [f"{k}={v}" for k, v in extra.items()]


def stand_in_server(reply):
    """A TCP listener on 127.0.0.1 that answers its one connection with `reply` and keeps it
    open for a while; returns the port."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(30)

    def serve():
        try:
            conn, _ = ls.accept()
            with conn:
                conn.sendall(reply)
                conn.settimeout(20)
                try:
                    while conn.recv(4096):
                        pass
                except OSError:
                    pass
        except OSError:
            pass
        finally:
            ls.close()

    threading.Thread(target=serve, daemon=True).start()
    return ls.getsockname()[1]


def main():
    print(f"device: temp dir {T}")
    check(DEVICE_PW.encode() not in open(ELF, "rb").read(),
          "nothing of the configuration is compiled into the firmware")
    a, b = Server("a"), Server("b")
    check(a.key != b.key, "servers a and b have different keys")
    device_secret = register(a, "device", DEVICE_PW, previous_step=True)
    device2_secret = register(b, "device2", DEVICE2_PW, previous_step=True)
    tester_secret = register(a, "tester", TESTER_PW)

    # 1. The whole conversation on A, watched by a real plain client.
    tester = client(a, ["chat", "--user", "tester", "--otp", totp(tester_secret, 30), "--plain"],
                    TESTER_PW)
    check(tester.wait_line(r"^login tester") is not None, "tester logged in (plain client)")
    tester.send(f"/join {ROOM}")
    check(tester.wait_line(rf"^names {ROOM} ") is not None, f"tester joined {ROOM}")
    # No room= word: the device's default room is #devices. "firmware" has no `=`: ignored.
    board = Board("device", a.port, ["firmware"] + device_words(
        "device", DEVICE_PW, device_secret, a.key, ping=2))
    hello = tester.wait_line(rf"^say {ROOM} device hello from device$", 60)
    if hello is None:
        board.show()
    check(hello is not None, "tester sees the device's `hello from device`")
    check(board.wait_line(r"logged in as device") is not None, "the device logged itself in")

    rtts = []
    for _ in range(5):
        after = len(tester.lines)
        t0 = time.monotonic()
        tester.send("!ping")
        got = tester.wait_line(rf"^say {ROOM} device pong$", 20, after)
        rtts.append((time.monotonic() - t0) * 1000)
        check(got is not None, f"`!ping` answered with `pong` ({rtts[-1]:.1f} ms)")
    text = "".join("abcdefghijklmnopqrstuvwxyz0123456789-_.:!?"[(i * 7 + i // 13) % 42]
                   for i in range(1000))
    after = len(tester.lines)
    t0 = time.monotonic()
    tester.send(f"!echo {text}")
    got = tester.wait_line(rf"^say {ROOM} device ", 30, after)
    echo_ms = (time.monotonic() - t0) * 1000
    check(got == f"say {ROOM} device {text}",
          f"`!echo` of {len(text)} bytes comes back byte for byte ({echo_ms:.1f} ms)")
    after = len(tester.lines)
    tester.send("!stats")
    got = tester.wait_line(rf"^say {ROOM} device records ", 20, after)
    m = got and re.fullmatch(
        rf"say {ROOM} device records sent=(\d+) received=(\d+) stack=(\d+) bytes", got)
    check(m is not None, f"`!stats` answers `records sent=N received=M stack=B bytes` ({got})")
    sent, received, stats_stack = (int(x) for x in m.groups())
    # Sent before the answer: Login, Join, hello, 5 pongs, the echo (and keepalive Pings).
    check(sent >= 9 and received >= 8 and 0 < stats_stack < RAM_BUDGET,
          f"`!stats` counts: sent={sent} received={received} stack={stats_stack}")

    check(board.wait_line(r"^pong 1 after \d+ ms", 10) is not None,
          "the device's keepalive Ping (every 2 s here) was answered")
    tester.send("!bye")
    rc, took = board.wait_exit(30)
    board.show()
    check(rc == 0, f"`!bye`: the device sent Bye and exited 0 (status {rc}, {took:.1f} s after boot)")
    check(took < 60, f"the whole device session took {took:.1f} s (bound 60 s)")
    check(tester.wait_line(rf"^presence {ROOM} device quit", 10) is not None,
          "tester sees the device leave")
    peak = next((int(x) for x in re.findall(r"peak stack (\d+) bytes", "\n".join(board.lines))), None)
    check(peak is not None and peak >= stats_stack,
          f"the device reported its peak stack ({peak} bytes)")
    check(STATIC_RAM + peak <= RAM_BUDGET,
          f"RAM: {STATIC_RAM} static + {peak} peak stack = {STATIC_RAM + peak} bytes "
          f"<= {RAM_BUDGET} ({RAM_BUDGET // 1024} KiB)")
    pongs = [int(x) for x in re.findall(r"pong \d+ after (\d+) ms", "\n".join(board.lines))]
    check(tester.close() == 0, "tester exits 0")

    # 2. Another server's key: exit 3, and not a byte of the login goes to it.
    board = Board("wrong-key", b.port, device_words("device", DEVICE_PW, device_secret, a.key))
    rc, took = board.wait_exit(30)
    board.show()
    check(rc == 3, f"server b's key with a's pinned: exit 3 (status {rc}, {took:.1f} s)")
    check(board.wait_line(r"server key mismatch", 1) is not None, "the device says the key differs")
    time.sleep(0.5)
    check(re.search(r"user=device(?![\w.-])", b.credentials_log()) is None,
          "server b never saw a login from the device")

    # 3. A refused login: exit 4.
    board = Board("refused", a.port, device_words("device", "not-the-password", device_secret,
                                                   a.key))
    rc, took = board.wait_exit(30)
    board.show()
    check(rc == 4, f"wrong password: exit 4 (status {rc}, {took:.1f} s)")

    # 4. A protocol error: exit 2.
    port = stand_in_server(b"\x00\x00")
    board = Board("bad-frame", port, device_words("device", DEVICE_PW, device_secret, a.key))
    rc, took = board.wait_exit(30)
    board.show()
    check(rc == 2, f"a zero-length frame instead of the handshake: exit 2 (status {rc}, {took:.1f} s)")

    # 5. The connection lost mid-chat: exit 2 when the Pong is overdue.
    board = Board("lost", b.port, device_words("device2", DEVICE2_PW, device2_secret, b.key,
                                               ping=2))
    check(board.wait_line(r"joined #devices", 60) is not None, "device2 is chatting on server b")
    t0 = time.monotonic()
    b.p.send_signal(signal.SIGKILL)
    b.p.wait(10)
    rc, _ = board.wait_exit(60)
    took = time.monotonic() - t0
    board.show()
    check(rc == 2, f"server b killed: exit 2 (status {rc}) {took:.1f} s later (ping=2: due by 14 s)")
    check(took < 30, f"connection loss noticed within 30 s ({took:.1f} s)")

    print(f"device: !ping round trips (tester -> server -> UART -> device -> server -> tester): "
          f"min {min(rtts):.1f} / median {statistics.median(rtts):.1f} / max {max(rtts):.1f} ms; "
          f"!echo 1000 bytes {echo_ms:.1f} ms; device Ping -> Pong over the UART {pongs} ms")
    a.p.send_signal(signal.SIGTERM)
    a.p.wait(20)
    check.finish()


def interrupted(signum, _frame):
    raise RuntimeError(f"signal {signum} (time limit?)")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, interrupted)
    try:
        main()
    except SystemExit:
        raise
    except BaseException as e:
        print(f"  FAIL unexpected {type(e).__name__}: {e}")
        check.failed += 1
        check.finish()

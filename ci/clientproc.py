"""Helpers shared by the end-to-end scripts (ci/e2e.py, ci/cluster_client.py): free loopback
ports, TOTP codes from oathtool (an implementation independent of ChatBox's), client processes
whose output lines are collected in threads, and the ok/FAIL check list with its clean-up."""

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def totp(secret, offset=0):
    """TOTP code (now + offset seconds) computed by oathtool, not by ChatBox."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() + offset))
    return subprocess.run(["oathtool", "--totp", "-b", "--now", when, secret],
                          capture_output=True, text=True, check=True).stdout.strip()


class Proc:
    """A process (`cmd`, environment `env`) with its stdout and stderr lines collected in
    threads; added to `procs` so that the caller can kill what is left at the end."""

    def __init__(self, cmd, env, procs):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        procs.append(self.p)
        self.lines, self.err = [], []
        self.cv = threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(stream, into), daemon=True)
                        for stream, into in ((self.p.stdout, self.lines), (self.p.stderr, self.err))]
        for t in self.readers:
            t.start()

    def _read(self, stream, into):
        for line in stream:
            with self.cv:
                into.append(line.rstrip("\n"))
                self.cv.notify_all()

    def wait_line(self, pattern, timeout=20, after=0):
        """The first stdout line from index `after` on that matches, or None after `timeout` s."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        with self.cv:
            while True:
                for line in self.lines[after:]:
                    if rx.search(line):
                        return line
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.cv.wait(min(left, 0.2))

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def close(self, timeout=20):
        """Ends stdin and waits for the exit status (None: killed after `timeout` s) and for the
        last output lines to be collected."""
        self.p.stdin.close()
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = None
        for t in self.readers:
            t.join(5)
        return rc


class Checks:
    """The checks of a script run: `checks(cond, what)` prints `ok`/`FAIL`; the
    first failure ends the run. `finish()` kills what is left in `procs`, runs `cleanup`, prints
    `NAME: P passed, F failed`, keeps the temp dir `tmp` on failure or with KEEP set (after
    `on_keep()`, e.g. to print server output) and removes it otherwise, and exits 1 on failure."""

    def __init__(self, name, tmp, procs, cleanup=lambda: None, on_keep=lambda: None):
        self.name, self.tmp, self.procs = name, tmp, procs
        self.cleanup, self.on_keep = cleanup, on_keep
        self.passed = self.failed = 0

    def __call__(self, cond, what):
        if cond:
            self.passed += 1
            print(f"  ok   {what}", flush=True)
        else:
            self.failed += 1
            print(f"  FAIL {what}", flush=True)
            self.finish()

    def finish(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        self.cleanup()
        print(f"{self.name}: {self.passed} passed, {self.failed} failed")
        if self.failed or os.environ.get("KEEP"):
            self.on_keep()
            print(f"(artifacts left in {self.tmp})")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        sys.exit(1 if self.failed else 0)


def start_listening(cmd, port, out_path, cwd, env, procs, within=30):
    """Starts a server process (`cmd`, output appended to `out_path`) and waits until it accepts
    connections on 127.0.0.1:`port`. The process (added to `procs`), or None if it exited or did
    not listen within `within` seconds."""
    with open(out_path, "a") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    procs.append(p)
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p
        except OSError:
            if p.poll() is not None:
                return None
            time.sleep(0.1)
    return None

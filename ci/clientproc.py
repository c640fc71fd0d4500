"""Helpers shared by the end-to-end scripts (ci/e2e.py, ci/cluster_client.py): free loopback
ports, TOTP codes from oathtool (an implementation independent of ChatBox's) and client
processes whose output lines are collected in threads."""

import re
import socket
import subprocess
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

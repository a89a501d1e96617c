#!/usr/bin/python3
"""Run doku-snapsim and doku-bridged for a client test, on loopback.

As a program:
    harness.py --bridged BIN --snapsim BIN --mkcreds SCRIPT [--workdir DIR] -- CMD ARGS...
starts the sandbox (waits for its "ready" line), writes a configuration,
starts the daemon (waits for READY=1 on its $NOTIFY_SOCKET), runs CMD with
    DOKU_BRIDGE_SOCKET     the daemon's socket
    DOKU_SNAPSIM_CONTROL   the sandbox's control API, "127.0.0.1:PORT"
    DOKU_SNAPSIM_HTTPS     the sandbox's https address
    DOKU_TEST_CLIENT_ID    the merchant's client id
    DOKU_TEST_DIR          a scratch directory
    DOKU_BRIDGED_PID       the daemon's pid (a test may stop it)
and stops both. Its exit status is CMD's (125 when the setup failed).

As a module (pytest): Bridge(...).start() / .stop_daemon() / .stop().
Everything synchronises on readiness, never on sleeps; every wait is bounded.
"""
import argparse
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

READY_TIMEOUT = 60.0   # seconds for each of sandbox and daemon to become ready
STOP_TIMEOUT = 20.0    # seconds for a process to exit after SIGTERM
RUN_TIMEOUT = 900.0    # seconds for the command under test

# The daemon's configuration: a default profile, a "restricted" one the test
# client may not use (for PERMISSION_DENIED), and room for 1,000+ calls in
# flight on one connection.
CONFIG = """\
[bridge]
socket = {socket}
state_dir = {state}
max_calls_per_connection = 4096
default_timeout_ms = 30000

[profile.default]
base_url = https://{https}
client_id = {client_id}
client_secret_file = {creds}/client-secret
private_key_file = {creds}/partner.key
ca_file = {creds}/ca.pem

[profile.restricted]
base_url = https://{https}
client_id = {client_id}
client_secret_file = {creds}/client-secret
private_key_file = {creds}/partner.key
ca_file = {creds}/ca.pem

[client.tests]
uids = {uid}
methods = *
profiles = default
"""


class SetupError(Exception):
    pass


class _Pump(threading.Thread):
    """Copies a child's output to a log file after its ready line."""

    def __init__(self, src, log):
        super().__init__(daemon=True)
        self.src, self.log = src, log

    def run(self):
        for line in iter(self.src.readline, b""):
            self.log.write(line)
            self.log.flush()


class Bridge:
    def __init__(self, bridged, snapsim, mkcreds, workdir=None):
        self.bridged, self.snapsim, self.mkcreds = bridged, snapsim, mkcreds
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="dokubridge-it-")
        os.makedirs(self.dir, exist_ok=True)
        self.creds = os.path.join(self.dir, "creds")
        self.socket = os.path.join(self.dir, "run", "bridge.sock")
        self.config = os.path.join(self.dir, "bridged.conf")
        self.sim = self.daemon = None
        self.https = self.control = None
        self.client_id = None
        self._logs = []

    # ---- processes -------------------------------------------------------------------

    def _log(self, name):
        f = open(os.path.join(self.dir, name + ".log"), "ab")
        self._logs.append(f)
        return f

    def start_sandbox(self):
        subprocess.run(["bash", self.mkcreds, self.creds], check=True, timeout=120)
        with open(os.path.join(self.creds, "client-id")) as f:
            self.client_id = f.read().strip()
        log = self._log("snapsim")
        self.sim = subprocess.Popen(
            [self.snapsim, "--listen", "127.0.0.1:0",
             "--tls-cert", os.path.join(self.creds, "server.pem"),
             "--tls-key", os.path.join(self.creds, "server.key"),
             "--client-id", self.client_id,
             "--client-secret-file", os.path.join(self.creds, "client-secret"),
             "--partner-public-key", os.path.join(self.creds, "partner.pub"),
             "--control", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT
        line = b""
        while not line.startswith(b"doku-snapsim ready"):
            left = deadline - time.monotonic()
            if left <= 0 or self.sim.poll() is not None:
                raise SetupError("doku-snapsim did not become ready (see %s)" % log.name)
            r, _, _ = select.select([self.sim.stdout], [], [], left)
            if r:
                line = self.sim.stdout.readline()
                if not line and self.sim.poll() is not None:
                    raise SetupError("doku-snapsim exited (see %s)" % log.name)
                log.write(line)
        for word in line.decode().split():
            if word.startswith("https="):
                self.https = word[len("https="):]
            elif word.startswith("control="):
                self.control = word[len("control="):]
        if not self.https or not self.control:
            raise SetupError("doku-snapsim's ready line lacks addresses: %r" % line)
        _Pump(self.sim.stdout, log).start()

    def write_config(self):
        run = os.path.dirname(self.socket)
        os.makedirs(run, mode=0o700, exist_ok=True)
        os.chmod(run, 0o700)
        state = os.path.join(self.dir, "state")
        os.makedirs(state, mode=0o700, exist_ok=True)
        with open(self.config, "w") as f:
            f.write(CONFIG.format(socket=self.socket, state=state, https=self.https,
                                  client_id=self.client_id, creds=self.creds,
                                  uid=os.getuid()))
        os.chmod(self.config, 0o600)

    def start_daemon(self):
        notify_path = os.path.join(self.dir, "notify.sock")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        log = self._log("bridged")
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        try:
            self.daemon = subprocess.Popen([self.bridged, "--config", self.config], env=env,
                                           stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + READY_TIMEOUT
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SetupError("doku-bridged sent no READY=1 (see %s)" % log.name)
                if self.daemon.poll() is not None:
                    raise SetupError("doku-bridged exited with %d (see %s)"
                                     % (self.daemon.returncode, log.name))
                r, _, _ = select.select([notify], [], [], min(left, 0.5))
                if r and b"READY=1" in notify.recv(4096).split(b"\n"):
                    return
        finally:
            notify.close()
            os.unlink(notify_path)

    def start(self):
        self.start_sandbox()
        self.write_config()
        self.start_daemon()
        return self

    @staticmethod
    def _stop(proc):
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)

    def stop_daemon(self):
        """Stop the daemon and wait for it to exit."""
        self._stop(self.daemon)

    def stop(self):
        self._stop(self.daemon)
        self._stop(self.sim)
        if self.sim is not None and self.sim.stdout:
            self.sim.stdout.close()
        for f in self._logs:
            f.close()

    def cleanup(self):
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def env(self):
        return dict(os.environ, DOKU_BRIDGE_SOCKET=self.socket, DOKU_SNAPSIM_CONTROL=self.control,
                    DOKU_SNAPSIM_HTTPS=self.https, DOKU_TEST_CLIENT_ID=self.client_id,
                    DOKU_TEST_DIR=self.dir, DOKU_BRIDGED_PID=str(self.daemon.pid))

    def dump_logs(self, out=sys.stderr):
        for name in ("snapsim", "bridged"):
            path = os.path.join(self.dir, name + ".log")
            if os.path.exists(path):
                with open(path, "rb") as f:
                    data = f.read()[-8000:]
                out.write("---- %s (last %d bytes) ----\n%s\n" % (name, len(data),
                                                                  data.decode("utf-8", "replace")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bridged", required=True)
    ap.add_argument("--snapsim", required=True)
    ap.add_argument("--mkcreds", required=True)
    ap.add_argument("--workdir")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no command")
    workdir = a.workdir
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    b = Bridge(a.bridged, a.snapsim, a.mkcreds, workdir)
    status = 125
    try:
        b.start()
        try:
            status = subprocess.run(cmd, env=b.env(), timeout=RUN_TIMEOUT).returncode
        except subprocess.TimeoutExpired:
            print("harness: %s ran over %d s" % (cmd[0], RUN_TIMEOUT), file=sys.stderr)
            status = 124
    except SetupError as e:
        print("harness: %s" % e, file=sys.stderr)
    finally:
        b.stop()
        if status != 0:
            b.dump_logs()
        b.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""doku-bridged started the way systemd starts it from doku-bridged.socket:
  socket_activation.py DOKU-BRIDGED DOKUCTL MKCREDS

The test binds and listens on a Unix socket and starts the daemon with it as
fd 3 (LISTEN_FDS=1, LISTEN_PID) and with a NOTIFY_SOCKET (Type=notify). Then:
- the daemon says READY=1;
- dokuctl health succeeds through the inherited socket, and the socket path
  of the configuration is never created;
- after SIGHUP (ExecReload=) Health still succeeds;
- SIGTERM stops it with status 0, leaving the inherited socket in place;
- a caller that connected while no daemon ran is served by the next daemon
  started on the same socket (a restart refuses no caller).
Every wait is bounded; nothing sleeps."""
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile

WAIT = 20  # seconds, for any one step
running = set()  # daemons started and not yet reaped: killed when the test ends


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def start(daemon, config, listener, notify_path):
    """Fork and exec the daemon with listener as fd 3, as systemd does."""
    pid = os.fork()
    if pid == 0:
        try:
            if listener.fileno() != 3:
                os.dup2(listener.fileno(), 3)
            os.set_inheritable(3, True)
            env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()),
                       LISTEN_FDNAMES="doku-bridged.socket", NOTIFY_SOCKET=notify_path)
            os.execve(daemon, [daemon, "--config", config], env)
        finally:
            os._exit(127)
    running.add(pid)
    return pid


def wait_ready(notify, pid):
    """Read notifications until READY=1; fail if the daemon exits first."""
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            ready, _, _ = select.select([notify, pidfd], [], [], WAIT)
            if not ready:
                fail(f"no READY=1 within {WAIT} s (does the daemon call sd_notify?)")
            if notify in ready:
                if b"READY=1" in notify.recv(4096).split(b"\n"):
                    return
            elif pidfd in ready:
                fail(f"the daemon exited before READY=1: {stop_status(pid)}")
    finally:
        os.close(pidfd)


def stop_status(pid, sig=None):
    """Send sig (if any), wait (bounded) for the daemon, return its status."""
    pidfd = os.pidfd_open(pid)
    try:
        if sig is not None:
            os.kill(pid, sig)
        if not select.select([pidfd], [], [], WAIT)[0]:
            fail(f"the daemon did not exit within {WAIT} s")
    finally:
        os.close(pidfd)
    running.discard(pid)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def health(dokuctl, path):
    try:
        r = subprocess.run([dokuctl, "--socket", path, "--timeout", str(WAIT * 1000), "health"],
                           capture_output=True, text=True, timeout=WAIT)
    except subprocess.TimeoutExpired:
        fail(f"dokuctl health had no answer within {WAIT} s")
    if r.returncode != 0:
        fail(f"dokuctl health: exit {r.returncode}: {r.stdout}{r.stderr}")
    return r.stdout


def varint(data, i):
    """The varint at data[i:], and the index after it."""
    value = shift = 0
    while True:
        b = data[i]
        value |= (b & 0x7F) << shift
        shift += 7
        i += 1
        if b < 0x80:
            return value, i


def raw_health_call(conn):
    """Send a Health Call (id 1) as one frame of the wire protocol on conn."""
    method = b"/doku.wallet.v1.Wallet/Health"
    call = b"\x08\x01" + b"\x12" + bytes([len(method)]) + method  # id = 1, method
    conn.sendall(b"\x00" + len(call).to_bytes(4, "big") + call)


def raw_reply_code(conn):
    """Read one Reply frame from conn; its (id, code)."""
    data = b""
    while len(data) < 5 or len(data) < 5 + int.from_bytes(data[1:5], "big"):
        chunk = conn.recv(65536)
        if not chunk:
            fail("the connection closed before a reply")
        data += chunk
    body, i, fields = data[5:], 0, {}
    while i < len(body):
        key, i = varint(body, i)
        if key & 7 == 0:
            fields[key >> 3], i = varint(body, i)
        elif key & 7 == 2:
            n, i = varint(body, i)
            i += n
        else:
            fail(f"unexpected wire type in the reply: {key & 7}")
    return fields.get(1, 0), fields.get(2, 0)


def main():
    daemon, dokuctl, mkcreds = (os.path.realpath(a) for a in sys.argv[1:4])
    with tempfile.TemporaryDirectory() as tmp:
        creds = os.path.join(tmp, "creds")
        subprocess.run(["bash", mkcreds, creds], check=True, timeout=WAIT)
        with open(os.path.join(creds, "client-id")) as f:
            client_id = f.read()
        configured = os.path.join(tmp, "configured.sock")
        state = os.path.join(tmp, "state")
        os.mkdir(state, 0o700)
        config = os.path.join(tmp, "doku-bridged.conf")
        with open(config, "w") as f:
            f.write(f"""[bridge]
socket = {configured}
state_dir = {state}

[profile.default]
base_url = https://127.0.0.1:9
client_id = {client_id}
client_secret_file = {creds}/client-secret
private_key_file = {creds}/partner.key
ca_file = {creds}/ca.pem
""")
        activated = os.path.join(tmp, "activated.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(activated)
        listener.listen(16)
        notify_path = os.path.join(tmp, "notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)

        print("== READY=1, then Health through the inherited socket")
        pid = start(daemon, config, listener, notify_path)
        wait_ready(notify, pid)
        if os.path.exists(configured):
            fail("the daemon bound the configured socket instead of using the inherited one")
        print(health(dokuctl, activated), end="")

        print("== SIGHUP (reload), then Health")
        os.kill(pid, signal.SIGHUP)
        health(dokuctl, activated)

        print("== SIGTERM: exit 0, the inherited socket left in place")
        status = stop_status(pid, signal.SIGTERM)
        if status != 0:
            fail(f"the daemon exited with {status} on SIGTERM")
        if not os.path.exists(activated):
            fail("the daemon removed the inherited socket's path")

        print("== a caller that connected while no daemon ran is served by the next one")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as waiting:
            waiting.settimeout(WAIT)
            waiting.connect(activated)  # into the backlog: nobody accepts yet
            raw_health_call(waiting)
            pid = start(daemon, config, listener, notify_path)
            try:
                call_id, code = raw_reply_code(waiting)
            except socket.timeout:
                fail(f"no reply within {WAIT} s to the caller that waited")
            if (call_id, code) != (1, 0):
                fail(f"the caller that waited got id {call_id}, code {code}")
        status = stop_status(pid, signal.SIGTERM)
        if status != 0:
            fail(f"the second daemon exited with {status} on SIGTERM")
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    finally:
        for pid in running:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)

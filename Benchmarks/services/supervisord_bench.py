"""The supervisord side of the services benchmark, driven through its XML-RPC on a private unix socket.

    supervisord_bench.py DIR STARTS CRASHES MANY

Writes DIR/supervisord.conf (programs one, crash, s000.. in group "many", all startsecs=0, autostart=false),
starts supervisord 4.x in the foreground from the same venv, and prints "starts <us>", "crash <us>", "many <us>"
and "rss_kib <kib>" lines (one sample per line)."""

import os
import signal
import subprocess
import sys
import time
import xmlrpc.client

from supervisor.xmlrpc import SupervisorTransport


def main() -> None:
    folder, starts, crashes, many = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    sock = os.path.join(folder, "supervisor.sock")
    names = [f"s{i:03d}" for i in range(many)]
    program = "command=sleep 300\nautostart=false\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n"
    conf = f"""[unix_http_server]
file={sock}
[supervisord]
logfile={folder}/supervisord.log
pidfile={folder}/supervisord.pid
childlogdir={folder}
nodaemon=true
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:one]
{program}autorestart=false
[program:crash]
{program}autorestart=true
""" + "".join(f"[program:{n}]\n{program}autorestart=false\n" for n in names) + f"[group:many]\nprograms={','.join(names)}\n"
    path = os.path.join(folder, "supervisord.conf")
    with open(path, "w") as f:
        f.write(conf)
    output = open(os.path.join(folder, "supervisord.out"), "w")
    daemon = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "supervisord"), "-c", path], stdout=output, stderr=output)
    try:
        def connect():
            return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=SupervisorTransport(None, None, "unix://" + sock))

        deadline = time.monotonic() + 30
        while True:
            proxy = connect()
            try:
                if proxy.supervisor.getState()["statename"] == "RUNNING":
                    break
            except Exception:  # not listening yet; the transport is spoiled after a failure, so make a new one
                pass
            if time.monotonic() > deadline:
                raise SystemExit("supervisord did not come up")
            time.sleep(0.01)
        rpc = proxy.supervisor
        for _ in range(starts):
            t0 = time.monotonic_ns()
            rpc.startProcess("one", True)
            print(f"starts {(time.monotonic_ns() - t0) // 1000}", flush=True)
            rpc.stopProcess("one", True)
        rpc.startProcess("crash", True)
        for _ in range(crashes):
            old = rpc.getProcessInfo("crash")["pid"]
            t0 = time.monotonic_ns()
            os.kill(old, signal.SIGKILL)
            while True:
                info = rpc.getProcessInfo("crash")
                if info["pid"] not in (0, old) and info["statename"] == "RUNNING":
                    break
            print(f"crash {(time.monotonic_ns() - t0) // 1000}", flush=True)
        t0 = time.monotonic_ns()
        rpc.startProcessGroup("many", True)
        while any(p["statename"] != "RUNNING" for p in rpc.getAllProcessInfo() if p["group"] == "many"):
            pass
        print(f"many {(time.monotonic_ns() - t0) // 1000}", flush=True)
        with open(f"/proc/{daemon.pid}/status") as f:
            rss = next(line for line in f if line.startswith("VmRSS:")).split()[1]
        print(f"rss_kib {rss}", flush=True)
        rpc.stopAllProcesses(True)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)


if __name__ == "__main__":
    main()

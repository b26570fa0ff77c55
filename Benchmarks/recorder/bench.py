#!/usr/bin/env python3
"""Recorder benchmarks through a real berthd (release build) on a private dbus-daemon.

Each scenario writes a raw fixture, configures the recorder with an inline ALSA `type file` PCM that plays it
(not paced: read as fast as it goes, `wait_for_writer: true` so nothing is dropped), starts a continuous
deployment with busctl, waits for N files, stops, and measures:

  cpu   berthd's CPU time (utime + stime from /proc/PID/stat, the whole daemon) from StartDeployment to the end of
        StopDeployment, divided by the seconds of audio saved (sum of ListRecordings durations): capture + WAV +
        SQLite + rename/fsync.
  rss   berthd's VmRSS sampled along the way: first (after the first file), last, max.
  gap   every saved file's samples compared with the fixture: the files, in order, must concatenate to the
        fixture with no sample missing, repeated or shifted (frames lost = 0).
"""
import json, os, random, shutil, signal, subprocess, sys, tempfile, time

BUILD = os.environ.get("BUILD", ".build/release")
TICK = os.sysconf("SC_CLK_TCK")
PATH, IFACE = "/org/berth/Berth1/recorder", "org.berth.Berth1.Recorder"


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class World:
    def __init__(self, root):
        self.root = root
        conf = os.path.join(root, "bus.conf")
        open(conf, "w").write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path={root}/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/>
<allow own="*"/></policy></busconfig>""")
        self.bus = subprocess.Popen(["dbus-daemon", "--config-file", conf, "--nofork", "--print-address"],
                                    stdout=subprocess.PIPE, text=True)
        self.address = self.bus.stdout.readline().strip()
        # The runtime folder on tmpfs, as XDG_RUNTIME_DIR (/run/user/UID) and systemd's RuntimeDirectory are.
        self.run_dir = tempfile.mkdtemp(prefix="berth-recbench-run-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.env = dict(os.environ, XDG_CONFIG_HOME=f"{root}/config", XDG_STATE_HOME=f"{root}/state",
                        XDG_RUNTIME_DIR=self.run_dir, HOME=root, DBUS_SESSION_BUS_ADDRESS=self.address)
        for d in ["config/berth", "state", "plugins"]:
            os.makedirs(f"{root}/{d}", exist_ok=True)
        os.symlink(os.path.abspath(f"{BUILD}/libRecorderPlugin.so"), f"{root}/plugins/libRecorderPlugin.so")
        self.daemon = None

    def busctl(self, *args, json_out=False):
        argv = ["busctl", f"--address={self.address}"] + (["--json=short"] if json_out else []) + list(args)
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        return json.loads(out) if json_out else out

    def call(self, member, signature="", *args, json_out=False):
        sig = [signature] if signature else []
        return self.busctl("call", "org.berth.Berth1", PATH, IFACE, member, *sig, *map(str, args), json_out=json_out)

    def prop(self, name):
        return self.busctl("get-property", "org.berth.Berth1", PATH, IFACE, name, json_out=True)["data"]

    def start(self, config):
        open(f"{self.root}/config/berth/berth.yaml", "w").write(config)
        self.daemon = subprocess.Popen([f"{BUILD}/berthd", "--address", self.address, "--plugin-dir",
                                        f"{self.root}/plugins"], env=self.env, stdout=subprocess.DEVNULL,
                                       stderr=open(f"{self.root}/berthd.log", "a"))
        for _ in range(2000):
            names = self.busctl("list", "--acquired", "--no-legend")
            if "org.berth.Berth1" in names:
                return
            time.sleep(0.01)
        raise SystemExit("berthd did not start; see " + self.root + "/berthd.log")

    def stop(self):
        self.daemon.send_signal(signal.SIGTERM)
        self.daemon.wait(30)

    def close(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.kill()
        self.bus.kill()
        shutil.rmtree(self.run_dir, ignore_errors=True)


def fixture(path, rate, seconds):
    rng = random.Random(rate)
    with open(path, "wb") as f:
        remaining = int(rate * seconds) * 2
        while remaining:
            n = min(remaining, 1 << 20)
            f.write(rng.randbytes(n))
            remaining -= n


def wav_data(path):
    b = open(path, "rb").read()
    pos = 12
    while pos + 8 <= len(b):
        cid, size = b[pos:pos + 4], int.from_bytes(b[pos + 4:pos + 8], "little")
        if cid == b"data":
            return b[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise ValueError(path + " has no data chunk")


def scenario(name, rate, duration, files, fixture_seconds, sample_every):
    root = tempfile.mkdtemp(prefix="berth-recbench-")
    w = World(root)
    try:
        raw = f"{root}/fixture.raw"
        fixture(raw, rate, fixture_seconds)
        alsa = f'pcm.fixture {{ type file slave {{ pcm {{ type null }} }} file "/dev/null" infile "{raw}" format raw }}'
        w.start(f"""recorder:
  device: fixture
  alsa_config: '{alsa}'
  sample_rate: {rate}
  channels: 1
  format: S16_LE
  min_free_bytes: 0
  wait_for_writer: true
  heartbeat_interval: 60
  schedule: {{duration: {duration}, continuous: true}}
""")
        pid = w.daemon.pid
        idle_rss = rss_kib(pid)
        cpu0 = cpu_seconds(pid)
        w.call("StartDeployment", "sdda{sv}", "bench", 0, 0, 0)
        samples, count = [], 0
        while count < files:
            count = w.prop("RecordingsCount")
            if count and (not samples or count - samples[-1][0] >= sample_every):
                samples.append((count, rss_kib(pid)))
            time.sleep(0.05)
        w.call("StopDeployment")
        cpu = cpu_seconds(pid) - cpu0
        samples.append((w.prop("RecordingsCount"), rss_kib(pid)))
        rows = w.call("ListRecordings", "tu", 0, 100000, json_out=True)["data"][0]
        audio = sum(r[3] for r in rows) / 1e6
        # Gap check: the files, oldest first, concatenate to the fixture.
        fixture_bytes = open(raw, "rb").read()
        offset, lost, checked = 0, 0, 0
        for r in rows:
            data = wav_data(r[1])
            if offset + len(data) > len(fixture_bytes):
                break  # past the fixture's end the file PCM repeats stale data
            if data != fixture_bytes[offset:offset + len(data)]:
                lost += 1
            offset += len(data)
            checked += 1
        w.stop()
        rss = [s[1] for s in samples]
        return dict(name=name, rate=rate, segment_s=duration, files=len(rows), audio_s=round(audio, 3),
                    cpu_s=round(cpu, 3), cpu_ms_per_audio_s=round(cpu * 1000 / audio, 3),
                    realtime_x=round(audio / cpu) if cpu else None, idle_rss_kib=idle_rss, rss_first_kib=rss[0],
                    rss_last_kib=rss[-1], rss_max_kib=max(rss), rss_samples=len(rss), gap_files_checked=checked,
                    gap_files_mismatched=lost, gap_frames_checked=offset // 2,
                    rss_trace=[list(x) for x in samples])
    finally:
        w.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    which = sys.argv[1:] or ["cpu48", "cpu384", "rss"]
    plans = {
        "cpu48": ("48 kHz mono S16_LE, 3 s files", 48000, 3, 100, 330, 10),
        "cpu384": ("384 kHz mono S16_LE, 3 s files", 384000, 3, 30, 100, 5),
        "rss": ("48 kHz mono S16_LE, 0.05 s files", 48000, 0.05, 10000, 520, 250),
    }
    for key in which:
        print(json.dumps(scenario(*plans[key])), flush=True)

#!/usr/bin/env python3
"""Recorder processing benchmarks (issue 17) through a real berthd (release build) on a private dbus-daemon.

One run, three scenarios on the same fixture (0.05 s files of 8 kHz mono S16_LE from an inline ALSA `type file`
PCM, not paced, `wait_for_writer: true`), each recording N files in a continuous deployment, then stopping and
waiting until the processing queue is empty (Status: recordings_pending == 0, processors_running == 0):

  baseline   no processor: berthd's CPU per recording (capture, WAV, SQLite, rename).
  noop       one no-op processor (`/bin/sh -c 'printf <one detection>'`), concurrency 1: berthd's CPU per recording;
             minus the baseline = berth's own overhead per processed recording (spawn through the supervisor,
             waiting, reading the output, the detection and the run's row in one transaction, the saving decision,
             the Detection signal). The processor's own CPU is its own (the children's time is not in
             berthd's utime + stime). Also recordings per second through the no-op processor: N / (time from
             StartDeployment to an empty queue), with the wall time per processed recording.
  delete     the no-op processor and `saving: {min_score: 2}` (no detection passes, so every recording is
             deleted after processing): counts recordings deleted before their processing finished (a deleted
             row whose run is not `done`, or whose deletion is older than its run's end) — must be 0.
"""
import json, os, shutil, sqlite3, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import World, cpu_seconds, fixture  # noqa: E402

NOOP = "printf '{\"label\": \"noop\", \"score\": 1, \"start_s\": 0, \"end_s\": 0.05}\\n'"


def status(w):
    data = w.call("Status", json_out=True)["data"][0]
    return {k: v["data"] for k, v in data.items()}


def scenario(name, files, processors, saving=""):
    root = tempfile.mkdtemp(prefix="berth-procbench-")
    w = World(root)
    try:
        raw = f"{root}/fixture.raw"
        fixture(raw, 8000, 30)
        alsa = f'pcm.fixture {{ type file slave {{ pcm {{ type null }} }} file "/dev/null" infile "{raw}" format raw }}'
        w.start(f"""recorder:
  device: fixture
  alsa_config: '{alsa}'
  sample_rate: 8000
  channels: 1
  format: S16_LE
  min_free_bytes: 0
  wait_for_writer: true
  heartbeat_interval: 60
  schedule: {{duration: 0.05, continuous: true}}
{processors}{saving}""")
        pid = w.daemon.pid
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        w.call("StartDeployment", "sdda{sv}", "bench", 51.5, 0.1, 0)
        while w.prop("RecordingsCount") < files:
            time.sleep(0.02)
        w.call("StopDeployment")
        recorded = w.prop("RecordingsCount")
        t_recorded = time.monotonic() - t0
        while True:
            s = status(w)
            if s["recordings_pending"] == 0 and s["processors_running"] == 0:
                break
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(pid) - cpu0
        db = sqlite3.connect(f"{root}/state/berth/recorder/metadata.db")
        early = db.execute("""
            SELECT count(*) FROM recording r WHERE r.deleted_usec IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM processing_task t WHERE t.recording_id = r.id AND t.state = 'done'
                AND t.updated_usec <= r.deleted_usec)""").fetchone()[0]
        deleted = db.execute("SELECT count(*) FROM recording WHERE deleted_usec IS NOT NULL").fetchone()[0]
        detections = db.execute("SELECT count(*) FROM detection").fetchone()[0]
        outputs = db.execute("SELECT count(*) FROM model_output").fetchone()[0]
        db.close()
        w.stop()
        return dict(name=name, recordings=recorded, seconds_to_record=round(t_recorded, 3),
                    seconds_to_empty_queue=round(elapsed, 3), berthd_cpu_s=round(cpu, 3),
                    cpu_ms_per_recording=round(cpu * 1000 / recorded, 3),
                    recordings_per_s=round(recorded / elapsed, 1), processed=s["recordings_processed"],
                    model_outputs=outputs, detections=detections, deleted=deleted,
                    deleted_before_processing_finished=early)
    finally:
        w.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    quoted = NOOP.replace('\\', '\\\\').replace('"', '\\"')
    noop = f"""  processing:
    concurrency: 1
    processors:
      - name: noop
        command: [/bin/sh, -c, "{quoted}", noop]
        timeout: 30
"""
    base = scenario("baseline", n, "")
    proc = scenario("noop", n, noop)
    dele = scenario("delete", n, noop, "  saving: {min_score: 2}\n")
    for r in (base, proc, dele):
        print(json.dumps(r), flush=True)
    overhead = proc["cpu_ms_per_recording"] - base["cpu_ms_per_recording"]
    print(json.dumps(dict(
        overhead_cpu_ms_per_processed_recording=round(overhead, 3), goal_ms=5,
        noop_recordings_per_s=proc["recordings_per_s"],
        noop_wall_ms_per_recording=round(proc["seconds_to_empty_queue"] * 1000 / proc["recordings"], 2),
        deleted_before_processing_finished=dele["deleted_before_processing_finished"],
        deleted=dele["deleted"])), flush=True)

#!/usr/bin/env python3
"""A processor for berth's recorder, standard library only: finds tone bursts in a 16-bit PCM WAV file and prints
each as one JSON line on stdout: label, score, start_s, end_s, low_hz, high_hz and a freq_hz tag.

The file is cut into analysis frames of FRAME seconds (0.05 s unless TONES_FRAME says otherwise). A frame whose
peak is above a tenth of full scale is "on"; a run of "on" frames is one burst, from the start of its first frame
to the end of its last, so a tone that starts and stops on the frame grid is reported exactly. Its frequency comes
from zero crossings (rounded to 10 Hz); its score is the peak amplitude as a fraction of full scale, to 2 places.

Test knobs: TONES_LOG appends "<recording id> <pid>" per run to that file (to count runs); TONES_SLEEP sleeps that
many seconds first (a slow model, or one that hangs); TONES_FAIL exits with status 3 after printing to stderr.
"""
import array
import json
import os
import sys
import time
import wave


def bursts(path, frame_seconds):
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            raise SystemExit(f"tones.py: {path}: only 16-bit PCM is supported")
        rate, channels = w.getframerate(), w.getnchannels()
        samples = array.array("h", w.readframes(w.getnframes()))
    if sys.byteorder != "little":
        samples.byteswap()
    mono = samples[::channels]
    size = max(1, round(frame_seconds * rate))
    found, current = [], None
    for index in range(0, len(mono) // size):
        chunk = mono[index * size:(index + 1) * size]
        peak = max(abs(s) for s in chunk)
        if peak > 3276:
            if current is None:
                current = {"first": index, "last": index, "peak": peak, "crossings": 0, "samples": 0}
            # Crossings inside the burst, the one between this frame and the previous one included.
            joined = chunk if index == current["first"] else mono[index * size - 1:(index + 1) * size]
            current["last"] = index
            current["peak"] = max(current["peak"], peak)
            current["crossings"] += sum(1 for a, b in zip(joined, joined[1:]) if (a < 0) != (b < 0))
            current["samples"] += len(chunk)
        elif current is not None:
            found.append(current)
            current = None
    if current is not None:
        found.append(current)
    for b in found:
        freq = round(b["crossings"] / 2 / (b["samples"] / rate) / 10) * 10
        yield {
            "label": "tone",
            "score": round(b["peak"] / 32767, 2),
            "start_s": round(b["first"] * size / rate, 6),
            "end_s": round((b["last"] + 1) * size / rate, 6),
            "low_hz": freq - 50,
            "high_hz": freq + 50,
            "freq_hz": freq,
        }


def main():
    path = sys.argv[-1]
    log = os.environ.get("TONES_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{os.environ.get('BERTH_RECORDING_ID', '?')} {os.getpid()}\n")
    time.sleep(float(os.environ.get("TONES_SLEEP", "0")))
    if os.environ.get("TONES_FAIL"):
        print("tones.py: failing as asked (TONES_FAIL)", file=sys.stderr)
        return 3
    print(f"tones.py: analysing {path}", file=sys.stderr)
    for b in bursts(path, float(os.environ.get("TONES_FRAME", "0.05"))):
        print(json.dumps(b), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

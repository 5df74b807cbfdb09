"""The wall's alarm sounds, generated (no recording, no download), 16-bit mono PCM WAV: the
ordinary top-priority alarm (two alternating tones, ``alarm.wav``) and the home alarm from a
resident's SOS/gas/smoke device (three fast high beeps and a low one, ``home-alarm.wav``), so the
room tells them apart by ear. ``python -m maps.alarm_sound`` writes both into
``maps/static/wall/``; tests/maps/test_wall.py checks the committed files are exactly what this makes."""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

RATE = 22050
TONES = ((880.0, 0.22), (0.0, 0.06), (660.0, 0.22), (0.0, 0.30))  # (Hz, seconds); 0 Hz = silence
VOLUME = 0.45
HOME_TONES = (
    (1320.0, 0.09),
    (0.0, 0.05),
    (1320.0, 0.09),
    (0.0, 0.05),
    (1320.0, 0.09),
    (0.0, 0.08),
    (520.0, 0.35),
    (0.0, 0.4),
)
PATH = Path(__file__).resolve().parent / "static" / "wall" / "alarm.wav"
HOME_PATH = PATH.with_name("home-alarm.wav")


def alarm_wav_bytes(tones: tuple[tuple[float, float], ...] = TONES) -> bytes:
    frames = bytearray()
    for hz, seconds in tones:
        n = int(RATE * seconds)
        for i in range(n):
            # a 5 ms fade in and out of each tone: no click
            envelope = min(1.0, i / (RATE * 0.005), (n - i) / (RATE * 0.005))
            sample = VOLUME * envelope * math.sin(2 * math.pi * hz * i / RATE) if hz else 0.0
            frames += struct.pack("<h", int(sample * 32767))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(frames))
    return out.getvalue()


def home_alarm_wav_bytes() -> bytes:
    return alarm_wav_bytes(HOME_TONES)


if __name__ == "__main__":
    PATH.write_bytes(alarm_wav_bytes())
    HOME_PATH.write_bytes(home_alarm_wav_bytes())
    print(PATH, HOME_PATH)

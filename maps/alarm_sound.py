"""The wall's alarm sound, generated (no recording, no download): two alternating tones, 16-bit
mono PCM WAV. ``python -m maps.alarm_sound`` writes ``maps/static/wall/alarm.wav``;
tests/maps/test_wall.py checks the committed file is exactly what this makes."""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

RATE = 22050
TONES = ((880.0, 0.22), (0.0, 0.06), (660.0, 0.22), (0.0, 0.30))  # (Hz, seconds); 0 Hz = silence
VOLUME = 0.45
PATH = Path(__file__).resolve().parent / "static" / "wall" / "alarm.wav"


def alarm_wav_bytes() -> bytes:
    frames = bytearray()
    for hz, seconds in TONES:
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


if __name__ == "__main__":
    PATH.write_bytes(alarm_wav_bytes())
    print(PATH)

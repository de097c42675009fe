#!/usr/bin/env bash
# Regenerates the caller-speech fixtures that the voice-activity and
# turn-detection tests play through a simulated Media Stream. The results are
# committed, so tests and CI never need these tools; run this only to change
# the fixtures.
#
# Every file is what Twilio would send: 8 kHz mono G.711 μ-law (8 KB a second),
# in a WAV wrapper so the format travels with the bytes. Speech is trimmed to
# the first and last voiced sample, so a test that pads a clip with silence
# or noise knows exactly where the words start and stop.
#
# Needs: espeak-ng, sox (Debian: apt-get install -y espeak-ng sox)
set -euo pipefail

out_dir="$(cd "$(dirname "$0")/.." && pwd)/test/fixtures/speech"
work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT
mkdir -p "$out_dir"

# name | espeak voice | words per minute | text
# The two backchannels are timed like conversational ones (around 0.3–0.4 s
# for "uh-huh" and "mm-hm"); at espeak's default pace they come out longer.
phrases=(
  "book-a-table|en-us|165|I would like to book a table for two people tonight"
  "my-name-is-anna|en-gb|160|My name is Anna"
  "yes-please|en-us+f3|170|Yes please"
  "mhm|en-us|260|mhm"
  "uh-huh|en-us+f2|200|uh huh"
  "no-thanks-goodbye|en-gb+f2|165|No thanks, goodbye"
  "wait-actually|en-us+m3|185|Wait, actually, can I change that"
)

# The phone network passes roughly 300–3400 Hz; band-limiting here makes the
# clips sound like a call rather than a studio.
telephone=(sinc 300-3400)
# Trim leading and trailing silence: the first and last 10 ms above 1 % of
# full scale mark the edges of the speech.
trim=(silence 1 0.01 1% reverse silence 1 0.01 1% reverse)

for entry in "${phrases[@]}"; do
  IFS='|' read -r name voice speed text <<< "$entry"
  espeak-ng -v "$voice" -s "$speed" -w "$work_dir/$name.wav" "$text"
  # -R (repeatable) and -D (no dither) keep the bytes identical across runs.
  sox -R -D "$work_dir/$name.wav" -r 8000 -c 1 -e u-law -b 8 "$out_dir/$name.wav" \
    "${trim[@]}" "${telephone[@]}" norm -6
done

# Line noise between words: low-level brown noise, as a quiet room on a
# handset sounds. -R seeds the generator the same way every run.
sox -R -D -n -r 8000 -c 1 -e u-law -b 8 "$out_dir/noise.wav" synth 6 brownnoise vol 0.03 "${telephone[@]}"

# A cough or handset knock: a 150 ms burst of pink noise with a fast attack
# and decay, not speech, which a turn detector must not take for a turn.
sox -R -D -n -r 8000 -c 1 -e u-law -b 8 "$out_dir/cough.wav" synth 0.15 pinknoise fade q 0.01 0.15 0.09 "${telephone[@]}" norm -8

ls -l "$out_dir"

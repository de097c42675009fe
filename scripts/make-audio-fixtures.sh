#!/usr/bin/env bash
# Regenerates the small encoded speech files the fake OpenAI server serves for
# the mp3, opus, aac and flac formats. The results are committed, so tests and
# CI never need these tools; run this only to change the fixtures.
#
# Needs: espeak-ng, sox, ffmpeg (Debian: apt-get install -y espeak-ng sox ffmpeg)
set -euo pipefail

text="${1:-Hello from callme.}"
out_dir="$(cd "$(dirname "$0")/.." && pwd)/test/fixtures/audio"
work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT

mkdir -p "$out_dir"

# OpenAI's speech endpoint produces 24 kHz mono, so the fixtures match that.
espeak-ng -v en-us -s 175 -w "$work_dir/voice.wav" "$text"
# Trimming the silence espeak leaves around the words and cutting the hiss
# above the telephone band keep the FLAC (lossless, so it grows with noise)
# under 30 KB.
sox -D -R "$work_dir/voice.wav" -r 24000 -c 1 -b 16 "$work_dir/source.wav" \
  silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse lowpass 3800

# bitexact and no metadata keep the bytes stable across runs and ffmpeg builds
# as far as the encoders allow, so regenerating does not churn the diff.
common=(-loglevel error -y -i "$work_dir/source.wav" -map_metadata -1 -fflags +bitexact -flags:a +bitexact)
ffmpeg "${common[@]}" -c:a libmp3lame -b:a 48k "$out_dir/speech.mp3"
ffmpeg "${common[@]}" -c:a libopus -b:a 24k -f ogg "$out_dir/speech.opus"
ffmpeg "${common[@]}" -c:a aac -b:a 48k -f adts "$out_dir/speech.aac"
ffmpeg "${common[@]}" -c:a flac -compression_level 8 -sample_fmt s16 "$out_dir/speech.flac"

# The fake paces each file's bytes by its duration, so it needs to know it.
# Decoding and counting samples is exact for every format; ffprobe's container
# duration is only a bitrate estimate for ADTS.
duration() {
  local bytes
  bytes="$(ffmpeg -loglevel error -i "$1" -ac 1 -ar 24000 -f s16le - | wc -c)"
  awk -v bytes="$bytes" 'BEGIN { printf "%.3f", bytes / 48000 }'
}
{
  printf '{\n'
  printf '  "text": "%s",\n' "$text"
  printf '  "durationSeconds": {\n'
  printf '    "mp3": %s,\n' "$(duration "$out_dir/speech.mp3")"
  printf '    "opus": %s,\n' "$(duration "$out_dir/speech.opus")"
  printf '    "aac": %s,\n' "$(duration "$out_dir/speech.aac")"
  printf '    "flac": %s\n' "$(duration "$out_dir/speech.flac")"
  printf '  }\n'
  printf '}\n'
} > "$out_dir/manifest.json"

ls -l "$out_dir"

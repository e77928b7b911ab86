#!/usr/bin/env bash
# On the GPU machine: keep the DALI part(s) this call carried (.gpu_carry/dali/part-NN, from
# scripts/gpu_dali_prepare.sh) in /tmp/dali-parts; once every part listed in SHA256SUMS is there and checks out,
# unpack them into /tmp/site-dali and import nvidia.dali from it. Prints what is still missing. Parts survive
# between calls only while the machine stays warm (~30 s idle): send them back to back.
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=.gpu_carry/dali
DST=/tmp/dali-parts
SITE=/tmp/site-dali
mkdir -p "$DST"
[ -f "$SRC/SHA256SUMS" ] && cp "$SRC/SHA256SUMS" "$DST/"
for p in "$SRC"/part-*; do
  [ -f "$p" ] && cp "$p" "$DST/" && echo "received $(basename "$p") ($(du -m "$p" | cut -f1) MB)"
done
if [ ! -f "$DST/SHA256SUMS" ]; then
  echo "no SHA256SUMS yet: carry .gpu_carry/dali/SHA256SUMS with a part"
  exit 3
fi
missing=$(cd "$DST" && awk '{print $2}' SHA256SUMS | while read -r f; do [ -f "$f" ] || echo "$f"; done)
if [ -n "$missing" ]; then
  echo "still missing: $(echo $missing)"
  exit 0
fi
if ! (cd "$DST" && sha256sum -c --quiet SHA256SUMS); then
  echo "a part is damaged: send it again"
  exit 4
fi
if [ ! -d "$SITE/nvidia/dali" ]; then
  rm -rf "$SITE" && mkdir -p "$SITE"
  cat $(cd "$DST" && awk -v d="$DST" '{print d "/" $2}' SHA256SUMS) | xz -d -T0 | tar -C "$SITE" -xf - || {
    echo "unpacking failed"
    exit 5
  }
fi
PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" python3 -c \
  'import nvidia.dali as d, sys; print("DALI", d.__version__, "ready in", sys.argv[1])' "$SITE"

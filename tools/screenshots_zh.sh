#!/bin/bash
# Screenshots of the main screens in Chinese under Xvfb.
set -u
BIN=${BIN:-target/release/lantern}
OUT=${OUT:-docs}
mkdir -p "$OUT"
# A display of our own: stop only a server this script started before (its lock names it).
[ -f /tmp/.X99-lock ] && kill "$(tr -d ' ' < /tmp/.X99-lock)" 2>/dev/null; sleep 0.5
Xvfb :99 -screen 0 1400x900x24 -nolisten tcp & XV=$!
export DISPLAY=:99; unset WAYLAND_DISPLAY
sleep 1
shot() { xwd -silent -id "$1" | xwdtopnm 2>/dev/null | pnmtopng > "$2"; }

# 1. First start, no model: the welcome screen.
D1=$(mktemp -d); echo '{"language":"zh-CN"}' > $D1/settings.json
LANTERN_DATA_DIR=$D1 HF_HUB_CACHE=$D1/hf $BIN & P=$!
W=$(xdotool search --sync --name 'Lantern' | head -1); sleep 4
shot $W "$OUT/screenshot-zh-welcome.png"
kill $P; wait $P 2>/dev/null

# 2. With the fixture model: generate one picture.
# The prompt comes from the settings: xdotool types CJK characters unreliably (it dropped and
# doubled some), and a screenshot must show what was meant.
D2=$(mktemp -d); echo '{"language":"zh-CN","params":{"width":256,"height":256,"steps":8,"prompt":"(masterpiece:1.2), 灯塔, oil painting","batch_size":1}}' > $D2/settings.json
LANTERN_DATA_DIR=$D2 $BIN --model tests/fixtures/sd1-tiny & P=$!
W=$(xdotool search --sync --name 'Lantern' | head -1); sleep 5
xdotool windowfocus --sync $W
sleep 0.5
xdotool key ctrl+Return
sleep 40
shot $W "$OUT/screenshot-zh-create.png"
# 3. The history tab.
xdotool mousemove --window $W 110 14 click 1
sleep 3
shot $W "$OUT/screenshot-zh-history.png"
kill $P; wait $P 2>/dev/null
kill $XV

#!/usr/bin/env bash
# Installs the .deb from tools/package.sh into a clean Debian chroot and starts the window
# there, under Xvfb, from the desktop entry's Exec command; takes a screenshot.
#
#   sudo tools/test_deb.sh [dist/lantern_<version>_<arch>.deb]
#
# Needs root (chroot, bind mounts), debootstrap, Xvfb, xdotool, xwd, xprop, netpbm, and the
# Debian mirror. The chroot (ROOTFS, default /tmp/deb-root) is made once with
# `debootstrap --variant=minbase bookworm` and reused; each run installs into a throwaway
# copy of it, so every run starts clean.
#   RECOMMENDS=1   install the package's Recommends too (fonts-noto-cjk: ~60 MB more)
#   LANG_UI=zh-CN  start the window in Chinese (with RECOMMENDS=1 to see the glyphs)
#   OUT            where the screenshot and logs go (default /tmp/lantern-deb-test)
set -euo pipefail
cd "$(dirname "$0")/.."
DEB=${1:-$(ls -t dist/lantern_*.deb 2>/dev/null | head -1)}
[ -f "$DEB" ] || { echo "test_deb.sh: no .deb (run tools/package.sh)" >&2; exit 1; }
BASE=${ROOTFS:-/tmp/deb-root}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
OUT=${OUT:-/tmp/lantern-deb-test}
DISPLAY_NUM=${DISPLAY_NUM:-97}
mkdir -p "$OUT"

if [ ! -x "$BASE/usr/bin/apt-get" ]; then
    debootstrap --variant=minbase "$SUITE" "$BASE" "$MIRROR"
fi

# A fresh copy of the base system for this run: an overlay on the base whose writable layer
# is in memory (tmpfs), so a run leaves nothing on disk; a plain copy where overlays fail.
T=$(mktemp -d /tmp/lantern-chroot.XXXXXX)
R=$T/root
XV=
cleanup() {
    set +e
    [ -n "$XV" ] && kill "$XV" 2>/dev/null
    for m in tmp/.X11-unix dev/pts dev proc sys; do
        mountpoint -q "$R/$m" && umount -l "$R/$m"
    done
    mountpoint -q "$R" && umount -l "$R"
    mountpoint -q "$T" && umount -l "$T"
    grep -q " $T" /proc/mounts || rm -rf --one-file-system "$T"
}
trap cleanup EXIT
if mount -t tmpfs -o size=4g tmpfs "$T" && mkdir -p "$T/upper" "$T/work" "$R" &&
    mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$T/upper,workdir=$T/work" "$R"; then
    :
else
    echo "   (no overlay here: copying the base system)"
    mountpoint -q "$T" && umount -l "$T"
    mkdir -p "$R"
    cp -a "$BASE/." "$R/"
fi
mount --bind /proc "$R/proc"
mount --bind /sys "$R/sys"
mount --bind /dev "$R/dev"
mount --bind /dev/pts "$R/dev/pts"
cp /etc/resolv.conf "$R/etc/resolv.conf"
cp "$DEB" "$R/tmp/"
in_root() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    DEBIAN_FRONTEND=noninteractive "$@"; }

echo "== install $(basename "$DEB") into a clean $SUITE (minbase)"
before=$(in_root dpkg-query -W -f '${Package}\n' | sort)
in_root apt-get update -qq
rec=--no-install-recommends
[ "${RECOMMENDS:-0}" = 1 ] && rec=
in_root apt-get install -y -q $rec "/tmp/$(basename "$DEB")" > "$OUT/apt.log" 2>&1 ||
    { tail -30 "$OUT/apt.log"; exit 1; }
after=$(in_root dpkg-query -W -f '${Package}\n' | sort)
comm -13 <(echo "$before") <(echo "$after") > "$OUT/installed-packages.txt"
echo "   $(wc -l < "$OUT/installed-packages.txt") packages installed (list: $OUT/installed-packages.txt)"
in_root dpkg -L lantern > "$OUT/lantern-files.txt"

# The command a desktop runs: the entry's Exec line without field codes (%f, %U, ...).
EXEC=$(sed -n 's/^Exec=//p' "$R/usr/share/applications/lantern.desktop" | head -1 |
    sed 's/ *%[a-zA-Z]//g')
echo "== desktop entry: Exec=$EXEC, Icon=$(sed -n 's/^Icon=//p' "$R/usr/share/applications/lantern.desktop")"
in_root sh -c "$EXEC --help" > "$OUT/help.txt" 2>&1 || { cat "$OUT/help.txt"; exit 1; }
echo "   '$EXEC --help' runs ($(wc -l < "$OUT/help.txt") lines)"

# The packaged binary makes a picture with the repository's tiny SD1 checkpoint (CLI, no display).
if [ -d tests/fixtures/sd1-tiny ]; then
    cp -r tests/fixtures/sd1-tiny "$R/tmp/sd1-tiny"
    in_root sh -c "LANTERN_DATA_DIR=\$(mktemp -d) lantern generate --model /tmp/sd1-tiny \
        --prompt 'a red fox' --steps 4 --width 128 --height 128 --seed 1 --output /tmp/fox.png" \
        > "$OUT/generate.log" 2>&1 || { cat "$OUT/generate.log"; exit 1; }
    cp "$R/tmp/fox.png" "$OUT/generate-fixture.png"
    echo "   'lantern generate' with tests/fixtures/sd1-tiny wrote a PNG ($(stat -c %s "$OUT/generate-fixture.png") bytes)"
fi

# Xvfb runs outside; its socket is bind-mounted into the chroot.
rm -f "/tmp/.X11-unix/X$DISPLAY_NUM" "/tmp/.X$DISPLAY_NUM-lock"
Xvfb ":$DISPLAY_NUM" -screen 0 1400x900x24 -nolisten tcp > "$OUT/xvfb.log" 2>&1 &
XV=$!
for _ in $(seq 50); do [ -S "/tmp/.X11-unix/X$DISPLAY_NUM" ] && break; sleep 0.1; done
mkdir -p "$R/tmp/.X11-unix"
mount --bind /tmp/.X11-unix "$R/tmp/.X11-unix"
export DISPLAY=":$DISPLAY_NUM"

DATA=$(in_root mktemp -d /tmp/lantern-data.XXXXXX)
if [ -n "${LANG_UI:-}" ]; then echo "{\"language\":\"$LANG_UI\"}" > "$R$DATA/settings.json"; fi
echo "== start the window: LANTERN_DATA_DIR=$DATA $EXEC"
chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    DISPLAY=":$DISPLAY_NUM" LANTERN_DATA_DIR="$DATA" HF_HUB_CACHE="$DATA/hf" \
    sh -c "exec $EXEC" > "$OUT/lantern.log" 2>&1 &
P=$!
W=$(timeout 60 xdotool search --sync --name '^Lantern' | head -1) || true
if [ -z "$W" ]; then
    echo "   no window within 60 s; the app's log:"; cat "$OUT/lantern.log"
    kill "$P" 2>/dev/null; exit 1
fi
sleep 5
kill -0 "$P" 2>/dev/null || { echo "   the app exited:"; cat "$OUT/lantern.log"; exit 1; }
xwd -silent -id "$W" | xwdtopnm 2>/dev/null | pnmtopng > "$OUT/screenshot.png"
echo "   window $W: $(xdotool getwindowname "$W")"
echo "   $(xprop -id "$W" WM_CLASS)"
xprop -id "$W" -len 1000000 -notype 32c _NET_WM_ICON > "$OUT/net-wm-icon.txt" || true
icon=$(head -c 200 "$OUT/net-wm-icon.txt" | tr -d '\n')
case "$icon" in
    *"= 256, 256"*)
        # The icon as the window manager gets it (ARGB words), over grey, as a PNG to look at.
        tr -d ' \n' < "$OUT/net-wm-icon.txt" | sed 's/^[^=]*=//' | tr ',' '\n' | awk '
            NR == 1 { w = $1; next } NR == 2 { print "P3\n" w " " $1 "\n255"; next }
            { a = int($1 / 16777216) % 256; r = int($1 / 65536) % 256; g = int($1 / 256) % 256
              b = $1 % 256; k = a / 255
              printf "%d %d %d\n", r * k + 128 * (1 - k), g * k + 128 * (1 - k), b * k + 128 * (1 - k) }' |
            pnmtopng > "$OUT/window-icon.png" 2>/dev/null
        echo "   _NET_WM_ICON: 256x256 set (as the window manager sees it: $OUT/window-icon.png)" ;;
    *) echo "   _NET_WM_ICON: missing ($icon)"; kill "$P"; exit 1 ;;
esac
grep -i "renderer\|error\|warn" "$OUT/lantern.log" | head -5 | sed 's/^/   log: /' || true
kill "$P"; wait "$P" 2>/dev/null || true
echo "== screenshot: $OUT/screenshot.png"

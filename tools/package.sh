#!/usr/bin/env bash
# Builds Lantern's release packages from a checkout.
#
#   tools/package.sh              # Linux: dist/lantern_<version>_<arch>.deb
#                                 #        dist/lantern-<version>-linux-<machine>.tar.gz
#                                 # macOS: dist/Lantern-<version>-macos-<machine>.dmg (Metal build)
#
# Environment:
#   CARGO_TARGET_DIR   where cargo builds (default: target/)
#   DIST               where packages go (default: dist/)
#   NO_BUILD=1         package the binary already in $CARGO_TARGET_DIR/release (no cargo call)
#   FEATURES           cargo features (default: none on Linux, "metal" on macOS)
#   MAINTAINER         the .deb's Maintainer field (default: a placeholder address)
#
# Needs: cargo (unless NO_BUILD=1); on Linux dpkg-deb, tar, gzip (strip if present);
# on macOS iconutil, hdiutil, codesign (all part of the OS).
# Windows packages are made by .github/workflows/release.yml (a .zip).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# The [package] table's version, the first `version = "..."` line of Cargo.toml.
VERSION=$(awk -F'"' '/^\[/{p=($0=="[package]")} p && /^version *=/{print $2; exit}' Cargo.toml)
[ -n "$VERSION" ] || { echo "package.sh: no version in Cargo.toml" >&2; exit 1; }
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DIST=${DIST:-$ROOT/dist}
OS=$(uname -s)
MAINTAINER=${MAINTAINER:-The Lantern contributors <lantern@invalid>}
MACHINE=$(uname -m)
case "$OS" in
    Darwin) FEATURES=${FEATURES-metal} ;;
    *) FEATURES=${FEATURES-} ;;
esac

# Timestamps inside the archives: the last commit's, so the same commit gives the same files.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    echo "package.sh: warning: the checkout has uncommitted changes; they go into the package" >&2
fi

if [ "${NO_BUILD:-0}" != 1 ]; then
    args=(build --release --locked)
    [ -n "$FEATURES" ] && args+=(--features "$FEATURES")
    echo "package.sh: cargo ${args[*]}" >&2
    cargo "${args[@]}"
fi
BIN=$TARGET_DIR/release/lantern
[ -x "$BIN" ] || { echo "package.sh: no binary at $BIN" >&2; exit 1; }
mkdir -p "$DIST"

# A staging folder, removed on exit.
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/lantern-pkg.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT

install_binary() { # $1 = destination; a stripped copy (symbols are a third of the file)
    install -m 0755 "$BIN" "$1"
    if command -v strip >/dev/null; then
        if [ "$OS" = Darwin ]; then strip -x "$1"; else strip --strip-unneeded "$1"; fi
    fi
}

linux_packages() {
    local arch
    arch=$(dpkg --print-architecture 2>/dev/null || true)
    if [ -z "$arch" ]; then
        case "$MACHINE" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$MACHINE ;; esac
    fi

    # ---- .deb ----
    local name="lantern_${VERSION}_${arch}"
    local deb=$STAGE/$name
    install -d "$deb/DEBIAN" "$deb/usr/bin" "$deb/usr/share/applications" \
        "$deb/usr/share/doc/lantern"
    install_binary "$deb/usr/bin/lantern"
    install -m 0644 assets/linux/lantern.desktop "$deb/usr/share/applications/lantern.desktop"
    for png in assets/icon/lantern-*.png; do
        local n=${png##*-}; n=${n%.png}
        install -d "$deb/usr/share/icons/hicolor/${n}x${n}/apps"
        install -m 0644 "$png" "$deb/usr/share/icons/hicolor/${n}x${n}/apps/lantern.png"
    done
    install -m 0644 README.md "$deb/usr/share/doc/lantern/README.md"
    {
        echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
        echo "Upstream-Name: lantern"
        echo
        echo "Files: *"
        echo "Copyright: $(git log --reverse --format=%cd --date=format:%Y 2>/dev/null | head -1) The Lantern contributors"
        echo "License: MIT or Apache-2.0"
        echo " The MIT license and the Apache License 2.0 follow in full."
        echo
        echo "License: MIT"
        sed -e 's/^$/./' -e 's/^/ /' LICENSE-MIT
        echo
        echo "License: Apache-2.0"
        echo " On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0."
    } > "$deb/usr/share/doc/lantern/copyright"
    chmod 0644 "$deb/usr/share/doc/lantern/copyright"
    {
        echo "lantern (${VERSION}) unstable; urgency=medium"
        echo
        echo "  * Release ${VERSION}; the changes are listed on the project's releases page."
        echo
        echo " -- ${MAINTAINER}  $(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
    } | gzip -n -9 > "$deb/usr/share/doc/lantern/changelog.gz"
    chmod 0644 "$deb/usr/share/doc/lantern/changelog.gz"

    # The C libraries the binary links (libc, libm, libgcc_s: `objdump -p`), and those that
    # eframe (glow renderer through glutin, winit's X11 and Wayland backends) and rfd load
    # with dlopen at run time; `strings` on the binary lists them. GLX via libgl1 and EGL via
    # libegl1 (glvnd; they pull in Mesa or a vendor driver); libXrandr is not loaded (winit
    # 0.30 speaks RandR through x11rb). libdbus (rfd's portal dialogs) is optional: without
    # it the window asks for paths itself.
    local glibc
    glibc=$(objdump -T "$BIN" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
    local depends="libc6 (>= ${glibc}), libgcc-s1, libgl1, libegl1, libx11-6, libx11-xcb1, libxcb1, libxcursor1, libxi6, libxrender1, libxkbcommon0, libxkbcommon-x11-0, libwayland-client0, libwayland-egl1"
    local size
    size=$(du -sk --exclude=DEBIAN "$deb" | cut -f1)
    cat > "$deb/DEBIAN/control" <<EOF
Package: lantern
Version: ${VERSION}
Architecture: ${arch}
Maintainer: ${MAINTAINER}
Installed-Size: ${size}
Depends: ${depends}
Recommends: fonts-noto-cjk, fontconfig, libdbus-1-3
Suggests: xdg-desktop-portal, fonts-symbola
Section: graphics
Priority: optional
Description: local text-to-image desktop app (Stable Diffusion)
 Lantern makes pictures from a text prompt with Stable Diffusion on your own
 computer, with no cloud and no Python: type a prompt, watch the image form,
 and find every picture again in a searchable history. Each image is saved as
 a PNG that remembers how it was made (AUTOMATIC1111's parameters text).
 .
 The window speaks English and Simplified Chinese. Models (SD 1.x, SD 2.x,
 SDXL, SD-Turbo) are downloaded from the window or read from the Hugging Face
 cache. fonts-noto-cjk draws Chinese, Japanese and Korean text.
EOF
    find "$deb" -type d -exec chmod 0755 {} +
    rm -f "$DIST/$name.deb"
    dpkg-deb --root-owner-group -Zxz --build "$deb" "$DIST/$name.deb" >/dev/null
    echo "$DIST/$name.deb"

    # ---- portable .tar.gz ----
    local tname="lantern-${VERSION}-linux-${MACHINE}"
    local t=$STAGE/$tname
    install -d "$t/icons"
    install_binary "$t/lantern"
    install -m 0644 assets/linux/lantern.desktop "$t/lantern.desktop"
    install -m 0644 assets/icon/lantern-256.png "$t/lantern.png"
    for png in assets/icon/lantern-*.png; do install -m 0644 "$png" "$t/icons/"; done
    install -m 0644 README.md LICENSE-MIT LICENSE-APACHE "$t/"
    cat > "$t/install.sh" <<'EOF'
#!/bin/sh
# Installs Lantern for the current user: ~/.local/bin/lantern, the desktop entry and icons.
# Uninstall: sh install.sh --uninstall
set -e
cd "$(dirname "$0")"
BIN=${XDG_BIN_HOME:-$HOME/.local/bin}
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
if [ "${1:-}" = --uninstall ]; then
    rm -f "$BIN/lantern" "$DATA/applications/lantern.desktop"
    rm -f "$DATA"/icons/hicolor/*/apps/lantern.png
    echo "Lantern removed (your pictures and history in $DATA/lantern are kept)."
    exit 0
fi
mkdir -p "$BIN" "$DATA/applications"
cp lantern "$BIN/lantern"
for png in icons/lantern-*.png; do
    n=${png##*-}; n=${n%.png}
    mkdir -p "$DATA/icons/hicolor/${n}x${n}/apps"
    cp "$png" "$DATA/icons/hicolor/${n}x${n}/apps/lantern.png"
done
sed "s|^Exec=lantern|Exec=$BIN/lantern|" lantern.desktop > "$DATA/applications/lantern.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$DATA/applications" 2>/dev/null || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$DATA/icons/hicolor" 2>/dev/null || true
echo "Lantern installed: $BIN/lantern, and in your applications menu."
EOF
    chmod 0755 "$t/install.sh"
    cat > "$t/INSTALL.txt" <<EOF
Lantern ${VERSION} for Linux (${MACHINE}), portable build
============================================

Run it in place:        ./lantern
Install for your user:  sh install.sh      (~/.local/bin, the applications menu, icons)
Uninstall:              sh install.sh --uninstall

On Debian or Ubuntu the .deb of the same release installs it system-wide, with its
dependencies:  sudo apt install ./lantern_${VERSION}_${arch}.deb

The window needs the libraries every Linux desktop has: OpenGL (libGL or libEGL, from
Mesa or your GPU driver), and X11 (libX11, libXcursor, libXi, libxkbcommon-x11) or
Wayland (libwayland-client, libwayland-egl, libxkbcommon). On Debian/Ubuntu:
    sudo apt install libgl1 libegl1 libx11-6 libx11-xcb1 libxcursor1 libxi6 \\
        libxkbcommon0 libxkbcommon-x11-0 libwayland-client0 libwayland-egl1
Optional: fonts-noto-cjk (Chinese, Japanese and Korean text), xdg-desktop-portal (the
system's file dialogs).

This build needs glibc ${glibc} or newer and a 64-bit x86 CPU (AVX2/AVX-512 are used
when present). The command line (lantern --help) works without a display.
Your pictures, history and settings live in ~/.local/share/lantern
(or wherever LANTERN_DATA_DIR points). See README.md for models and usage.
EOF
    find "$t" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
        -C "$STAGE" -cf - "$tname" | gzip -n -9 > "$DIST/$tname.tar.gz"
    echo "$DIST/$tname.tar.gz"
}

macos_package() {
    local app=$STAGE/dmg/Lantern.app
    install -d "$app/Contents/MacOS" "$app/Contents/Resources"
    install_binary "$app/Contents/MacOS/lantern"
    # The icon: an .iconset folder of our PNGs, turned into .icns by iconutil.
    local set=$STAGE/lantern.iconset
    mkdir -p "$set"
    for n in 16 32 128 256 512; do
        cp "assets/icon/lantern-$n.png" "$set/icon_${n}x${n}.png"
    done
    for n in 16 32 128 256; do
        cp "assets/icon/lantern-$((n * 2)).png" "$set/icon_${n}x${n}@2x.png"
    done
    iconutil -c icns "$set" -o "$app/Contents/Resources/lantern.icns"
    cat > "$app/Contents/Info.plist" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
    <key>CFBundleName</key><string>Lantern</string>
    <key>CFBundleDisplayName</key><string>Lantern</string>
    <key>CFBundleIdentifier</key><string>org.lantern-app.lantern</string>
    <key>CFBundleVersion</key><string>${VERSION}</string>
    <key>CFBundleShortVersionString</key><string>${VERSION}</string>
    <key>CFBundlePackageType</key><string>APPL</string>
    <key>CFBundleExecutable</key><string>lantern</string>
    <key>CFBundleIconFile</key><string>lantern</string>
    <key>CFBundleInfoDictionaryVersion</key><string>6.0</string>
    <key>CFBundleDevelopmentRegion</key><string>en</string>
    <key>CFBundleLocalizations</key><array><string>en</string><string>zh-Hans</string></array>
    <key>LSMinimumSystemVersion</key><string>11.0</string>
    <key>LSApplicationCategoryType</key><string>public.app-category.graphics-design</string>
    <key>NSHighResolutionCapable</key><true/>
</dict>
</plist>
EOF
    # Unsigned: an ad-hoc signature keeps Apple silicon willing to run it.
    codesign --force --deep --sign - "$app" 2>/dev/null || true
    cp README.md LICENSE-MIT LICENSE-APACHE "$STAGE/dmg/"
    ln -s /Applications "$STAGE/dmg/Applications"
    local dmg="$DIST/Lantern-${VERSION}-macos-${MACHINE}.dmg"
    rm -f "$dmg"
    hdiutil create -volname "Lantern ${VERSION}" -srcfolder "$STAGE/dmg" -ov -format UDZO "$dmg" >/dev/null
    echo "$dmg"
}

case "$OS" in
    Linux) linux_packages ;;
    Darwin) macos_package ;;
    *) echo "package.sh: $OS is packaged by .github/workflows/release.yml" >&2; exit 1 ;;
esac

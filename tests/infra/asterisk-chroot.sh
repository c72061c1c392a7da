#!/bin/sh
# Build (once) the Debian sid chroot with Asterisk 22 that the Asterisk tests run.
#
# The chroot lives in a cache directory that survives between runs:
#   ${SIPCTL_TEST_CACHE:-/var/cache/sipctl-test}/asterisk-sid
# It is built under a temporary name and renamed only when complete, so a half-built
# chroot is never used. The mirror is the one this system's apt already uses: no mirror
# host is written into the repository. Exit 0 when the chroot is ready.
set -eu

CACHE="${SIPCTL_TEST_CACHE:-/var/cache/sipctl-test}"
DEST="$CACHE/asterisk-sid"
TMP="$DEST.tmp"
LOG="$CACHE/asterisk-sid.debootstrap.log"

say() { printf 'asterisk-chroot: %s\n' "$*" >&2; }

# The first Debian mirror of the system's apt sources (deb822 first, then sources.list).
find_mirror() {
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f"
    done | grep -v -e security -e '^cdrom:' | head -n 1 | grep . && return 0
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f"
    done | grep -v security | head -n 1 | grep .
}

# Nothing inside the chroot may resolve a name through the network.
seal_network() {
    printf 'nameserver 127.0.0.1\n' > "$1/etc/resolv.conf"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$1/etc/hosts"
}

is_complete() {
    [ -x "$1/usr/sbin/asterisk" ] && [ -f "$1/etc/asterisk/asterisk.conf" ] \
        && [ -f "$1/.sipctl-complete" ]
}

if [ -d "$DEST" ] && is_complete "$DEST"; then
    seal_network "$DEST"
    exit 0
fi

mkdir -p "$CACHE"
if [ -d "$DEST" ]; then
    say "$DEST is incomplete; building it again"
    rm -rf --one-file-system "$DEST"
fi

# A complete build left under the temporary name (e.g. made by hand) is reused.
if [ -d "$TMP" ] && [ -x "$TMP/usr/sbin/asterisk" ] && [ -f "$TMP/etc/asterisk/asterisk.conf" ] \
    && [ -f "$TMP/var/lib/dpkg/status" ] && grep -q '^Package: asterisk$' "$TMP/var/lib/dpkg/status"
then
    : # reuse
else
    command -v debootstrap >/dev/null 2>&1 || { say "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
    MIRROR="$(find_mirror)" || { say "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"; exit 1; }
    rm -rf --one-file-system "$TMP"
    say "building Debian sid with Asterisk in $DEST (about a minute, once)"
    if ! debootstrap --variant=minbase --include=asterisk sid "$TMP" "$MIRROR" >"$LOG" 2>&1; then
        say "debootstrap of Debian sid from $MIRROR failed; the end of its log ($LOG):"
        tail -n 20 "$LOG" >&2
        [ -f "$TMP/debootstrap/debootstrap.log" ] && tail -n 20 "$TMP/debootstrap/debootstrap.log" >&2
        exit 1
    fi
fi

seal_network "$TMP"
touch "$TMP/.sipctl-complete"
mv "$TMP" "$DEST"
say "ready: $DEST"

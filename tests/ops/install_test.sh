#!/usr/bin/env bash
# `make install`'s layout, into a DESTDIR: ferryd in sbin, ferryctl in bin, libferry and its
# header and ferry.pc, the three man pages, ferryd.service (ExecStart= at the installed ferryd,
# `systemd-analyze verify` clean), the example /etc/ferry/ferryd.json (valid for ferryd --check;
# an edited one is kept by a second install). Also the unit of a /usr install (the package's).
#
# Usage: install_test.sh BUILD_DIR. Exit 0 pass, 1 fail.
set -euo pipefail
build=$1
work=$(mktemp -d /var/tmp/ferry-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

install_to() {  # DESTDIR PREFIX
  DESTDIR=$1 cmake --install "$build" --prefix "$2" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log"; fail "cmake --install --prefix $2"; }
}

root=$work/local
install_to "$root" /usr/local
for f in sbin/ferryd bin/ferryctl lib/libferry.so.1 include/ferry/ferry.h lib/pkgconfig/ferry.pc \
         share/man/man8/ferryd.8.gz share/man/man8/ferryctl.8.gz share/man/man5/ferryd.json.5.gz \
         lib/systemd/system/ferryd.service; do
  [ -e "$root/usr/local/$f" ] || fail "make install did not install /usr/local/$f"
done
[ -x "$root/usr/local/sbin/ferryd" ] || fail "ferryd is not executable"
unit=$root/usr/local/lib/systemd/system/ferryd.service
grep -qx 'ExecStart=/usr/local/sbin/ferryd --config /etc/ferry/ferryd.json --admin-socket /run/ferry/ferryd.sock' \
  "$unit" || fail "ExecStart= of the installed unit: $(grep ExecStart= "$unit")"
[ "$(stat -c %a "$unit")" = 644 ] || fail "the unit's mode is $(stat -c %a "$unit")"
grep -qE '@[A-Z_]+@' "$unit" && fail "the unit has an unsubstituted @VARIABLE@"
config=$root/etc/ferry/ferryd.json
[ -f "$config" ] || fail "no example /etc/ferry/ferryd.json"
"$root/usr/local/sbin/ferryd" --check --config "$config" >/dev/null ||
  fail "ferryd --check refuses the installed example"
zcat "$root/usr/local/share/man/man8/ferryd.8.gz" >"$work/ferryd.8"
grep -q '^\.TH "FERRYD" "8"' "$work/ferryd.8" ||
  fail "ferryd.8.gz is not a man page"

# systemd-analyze verify on the installed unit, its ExecStart= pointed at the ferryd installed
# under DESTDIR (the host has no /usr/local/sbin/ferryd). The man pages of Documentation= are
# checked by the package test, which installs them where man(1) looks.
if command -v systemd-analyze >/dev/null; then
  mkdir "$work/verify"
  sed "s|^ExecStart=/usr/local/sbin/ferryd |ExecStart=$root/usr/local/sbin/ferryd |" "$unit" \
    >"$work/verify/ferryd.service"
  systemd-analyze verify --man=no "$work/verify/ferryd.service" >"$work/verify.log" 2>&1 ||
    { cat "$work/verify.log"; fail "systemd-analyze verify on the installed unit"; }
  [ -s "$work/verify.log" ] && { cat "$work/verify.log"; fail "systemd-analyze verify warns"; }
fi

# A second install keeps an edited configuration.
echo '{}' >"$config"
install_to "$root" /usr/local
[ "$(cat "$config")" = '{}' ] || fail "make install overwrote an existing /etc/ferry/ferryd.json"

# Prefix /usr (the package): the unit goes to /lib/systemd/system and starts /usr/sbin/ferryd.
install_to "$work/usr" /usr
grep -q '^ExecStart=/usr/sbin/ferryd ' "$work/usr/lib/systemd/system/ferryd.service" ||
  fail "no /lib/systemd/system/ferryd.service starting /usr/sbin/ferryd for prefix /usr"
[ -e "$work/usr/usr/sbin/ferryd" ] || fail "no /usr/sbin/ferryd for prefix /usr"
echo "PASS"

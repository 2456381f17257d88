#!/usr/bin/env bash
# The Debian package end to end: `make deb` from the given build, install, install again,
# upgrade to a bumped version (a locally edited conffile is kept without a prompt), the
# installed unit passes systemd-analyze verify, the installed ferryd validates the example
# configuration and serves it (a login on a test port, state in a temporary directory), then
# remove and purge leave nothing behind (Debian policy: remove keeps conffiles, purge takes
# them, /etc/ferry, ferryd's state and the unit's enablement).
#
# Usage: package_test.sh SOURCE_DIR BUILD_DIR. Root only (dpkg -i); exit 77 = skipped. Refuses
# to run (exit 1) when a ferry package, or files it would own, are already on the system.
set -euo pipefail
src=$1 build=$2

skip() { echo "SKIPPED: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "dpkg -i needs root"
for t in dpkg dpkg-deb cpack iscsi-inq python3; do
  command -v "$t" >/dev/null || skip "$t is missing"
done

status=$(dpkg-query -W -f='${Status}' ferry 2>/dev/null || true)
if [ -n "$status" ] && [ "$status" != "unknown ok not-installed" ]; then
  echo "FAIL: the package ferry is on this system already ($status): not touching it." >&2
  echo "      Remove it first (dpkg --purge ferry) to run this test." >&2
  exit 1
fi
for f in /usr/sbin/ferryd /usr/bin/ferryctl /etc/ferry /lib/systemd/system/ferryd.service; do
  if [ -e "$f" ]; then
    echo "FAIL: $f exists but no ferry package owns it: not overwriting it." >&2
    exit 1
  fi
done

work=$(mktemp -d /var/tmp/ferry-package-XXXXXX)
pid="" installed=0
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ $installed = 1 ] && dpkg --purge ferry >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [ -f "$work/ferryd.log" ] && tail -20 "$work/ferryd.log" >&2
  exit 1
}
step() { echo "== $* ($(( $(date +%s) - t0 )) s)"; }
t0=$(date +%s)

step "make deb"
make -C "$src" deb BUILD="$build" JOBS=2 >"$work/make-deb.log" 2>&1 ||
  { tail -30 "$work/make-deb.log"; fail "make deb failed"; }
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")
deb=$(ls "$build"/packages/ferry_"$version"_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "make deb made no ferry_${version}_*.deb in $build/packages"
# The same package as the next version, for the upgrade.
dpkg-deb -R "$deb" "$work/next"
sed -i "s/^Version: .*/Version: $version+1/" "$work/next/DEBIAN/control"
deb_next=$work/ferry_next.deb
dpkg-deb -Zgzip -z1 -b "$work/next" "$deb_next" >/dev/null || fail "dpkg-deb -b (next version)"
dpkg-deb --info "$deb" >"$work/info"
grep -q '^ Depends: .*libsystemd0' "$work/info" || fail "no Depends: from dpkg-shlibdeps: $(cat "$work/info")"
dpkg-deb --ctrl-tarfile "$deb" | tar -t >"$work/control-files"
grep -qx ./conffiles "$work/control-files" || fail "no conffiles in $deb"

step "dpkg -i $(basename "$deb")"
installed=1
dpkg -i "$deb" </dev/null >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
dpkg -L ferry | sort >"$work/files"
for f in /usr/sbin/ferryd /usr/bin/ferryctl /usr/share/man/man8/ferryd.8.gz \
         /usr/share/man/man8/ferryctl.8.gz /usr/share/man/man5/ferryd.json.5.gz \
         /lib/systemd/system/ferryd.service /etc/ferry/ferryd.json /usr/include/ferry/ferry.h; do
  grep -qx "$f" "$work/files" || fail "the package does not hold $f"
  [ -e "$f" ] || fail "$f is not installed"
done
ls /usr/lib/libferry.so.1 >/dev/null || fail "libferry.so.1 is not installed"
[ "$(dpkg-query -W -f='${Conffiles}' ferry | awk '{print $1}')" = /etc/ferry/ferryd.json ] ||
  fail "conffiles: $(dpkg-query -W -f='${Conffiles}' ferry)"
[ "$(stat -c %a /var/lib/ferry)" = 700 ] || fail "/var/lib/ferry is not a 0700 directory"
grep -q '^ExecStart=/usr/sbin/ferryd ' /lib/systemd/system/ferryd.service ||
  fail "the unit does not start /usr/sbin/ferryd"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify /lib/systemd/system/ferryd.service ||
    fail "systemd-analyze verify on the installed unit"
fi
/usr/sbin/ferryd --check --config /etc/ferry/ferryd.json || fail "ferryd --check on the example"

step "serve the example configuration from the installed ferryd"
# The example, on a free port of 127.0.0.1, with its state and socket here.
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
c = json.load(open("/etc/ferry/ferryd.json"))
c["state_dir"] = work + "/state"
c["admin_socket"] = work + "/ferryd.sock"
for t in c["targets"].values():
    for g in t["portal_groups"]:
        g["portals"] = ["127.0.0.1:0"]
json.dump(c, open(work + "/ferryd.json", "w"))
PY
/usr/sbin/ferryd --config "$work/ferryd.json" >"$work/ferryd.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
  grep -qs "^Stop with" "$work/ferryd.log" && break
  kill -0 $pid 2>/dev/null || fail "the installed ferryd exited at start"
  sleep 0.1
done
port=$(sed -n 's/^ferryd: serving \([^ ]*\) on 127\.0\.0\.1:\([0-9]*\) .*/\2/p' "$work/ferryd.log" | head -1)
iqn=$(sed -n 's/^ferryd: serving \([^ ]*\) on .*/\1/p' "$work/ferryd.log" | head -1)
[ -n "$port" ] || fail "the installed ferryd did not report its port"
iscsi-inq "iscsi://127.0.0.1:$port/$iqn/0" >"$work/inq" 2>&1 || fail "login: $(cat "$work/inq")"
/usr/bin/ferryctl --socket "$work/ferryd.sock" status >"$work/status" ||
  fail "ferryctl status: $(cat "$work/status")"
kill -TERM $pid
wait $pid || fail "ferryd exited $? after SIGTERM"
pid=""

step "install again, then upgrade to $version+1 with the conffile edited"
echo " " >>/etc/ferry/ferryd.json  # a local edit
sum=$(md5sum </etc/ferry/ferryd.json)
dpkg -i "$deb" </dev/null >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i again"; }
dpkg -i "$deb_next" </dev/null >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "upgrade"; }
[ "$(dpkg-query -W -f='${Version}' ferry)" = "$version+1" ] || fail "the upgrade did not happen"
[ "$(md5sum </etc/ferry/ferryd.json)" = "$sum" ] || fail "the upgrade lost the edited conffile"

step "dpkg -r"
dpkg -L ferry | sort >"$work/files"
dpkg -r ferry </dev/null >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -r"; }
while read -r f; do
  [ -d "$f" ] || [ "$f" = /etc/ferry/ferryd.json ] && continue  # shared directories stay
  if [ -e "$f" ]; then fail "$f is left after dpkg -r"; fi
done <"$work/files"
[ -f /etc/ferry/ferryd.json ] || fail "dpkg -r removed the conffile (only purge should)"

step "dpkg --purge"
dpkg --purge ferry </dev/null >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "purge"; }
installed=0
[ -z "$(dpkg-query -W -f='${Status}' ferry 2>/dev/null | grep -v not-installed)" ] ||
  fail "dpkg still knows ferry: $(dpkg-query -W -f='${Status}' ferry)"
for f in /etc/ferry /var/lib/ferry /var/log/ferry /usr/sbin/ferryd /lib/systemd/system/ferryd.service \
         /etc/systemd/system/ferryd.service /etc/systemd/system/multi-user.target.wants/ferryd.service \
         /var/lib/systemd/deb-systemd-helper-enabled/ferryd.service.dsh-also \
         /var/lib/systemd/deb-systemd-helper-masked/ferryd.service; do
  if [ -e "$f" ] || [ -L "$f" ]; then fail "$f is left after purge"; fi
done
while read -r f; do
  [ -d "$f" ] && continue
  if [ -e "$f" ]; then fail "$f is left after purge"; fi
done <"$work/files"
for p in $(pgrep -x ferryd || true); do
  if [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = /usr/sbin/ferryd ]; then
    fail "ferryd $p still runs"
  fi
done
step "PASS"

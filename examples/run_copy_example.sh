#!/usr/bin/env bash
# CTest driver of the copy examples (copy.c, copy.py): the arguments are the command that
# runs one. Two files of random bytes are copied at once into two files of the same size,
# and the copies must be byte-identical.
set -euo pipefail
dir=$(mktemp -d /tmp/ferry_example.XXXXXX)
trap 'rm -rf "$dir"' EXIT
head -c $((24 << 20)) /dev/urandom >"$dir/a"
head -c $(((3 << 20) + 12345)) /dev/urandom >"$dir/b"
truncate -s "$(stat -c %s "$dir/a")" "$dir/a.copy"
truncate -s "$(stat -c %s "$dir/b")" "$dir/b.copy"
"$@" "$dir/a" "file:$dir/a.copy" "$dir/b" "$dir/b.copy"
cmp "$dir/a" "$dir/a.copy"
cmp "$dir/b" "$dir/b.copy"
echo "example copy: identical bytes"

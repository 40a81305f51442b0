#!/bin/sh
# with-xattrs.sh SCRIPT OUT: OUT is SCRIPT preceded by a preamble that
# unpacks tests/interop/guest/xattrs.c, built static here (the guest's
# busybox has no setfattr), into the guest's /tmp/xattrs.
set -e
here=$(cd "$(dirname "$0")" && pwd)
bin=$(mktemp)
trap 'rm -f "$bin"' EXIT
cc -static -Os -s -o "$bin" "$here/xattrs.c"
{
	echo 'base64 -d > /tmp/xattrs <<"B64END"'
	base64 "$bin"
	echo 'B64END'
	echo 'chmod +x /tmp/xattrs'
	cat "$1"
} > "$2"

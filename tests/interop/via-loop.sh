#!/usr/bin/env bash
# via-loop.sh TOOL ARGS...: run TOOL with every argument that names an image
# file under $W replaced by a loop device over that image, as a host tool on
# shared storage opens a block device while another host (the guest, whose
# QEMU writes the image file with O_DIRECT) writes below its page cache.
#
# One loop device per image (per inode: an image made anew gets a new one);
# beside each, a holder process that read its first 64 MiB through the page
# cache and keeps it open, so stale cached pages are there to be (wrongly)
# trusted. State lives in $W/loops; `via-loop.sh --cleanup` kills the
# holders and detaches the loop devices.
set -uo pipefail
: "${W:?W must name the interop work dir}"
L=$W/loops
mkdir -p "$L"

if [ "${1:-}" = --cleanup ]; then
	for h in "$L"/*.holder; do
		[ -f "$h" ] || continue
		kill "$(cat "$h")" 2>/dev/null
		rm -f "$h"
	done
	for d in "$L"/*.dev; do
		[ -f "$d" ] || continue
		losetup -d "$(cat "$d")" 2>/dev/null
		rm -f "$d"
	done
	exit 0
fi

loop_for() {  # loop_for IMG: print the loop device over IMG, attaching one if needed
	local img=$1 ino dev
	ino=$(stat -c %i "$img") || return 1
	(
		flock 9
		if [ -f "$L/$ino.dev" ]; then
			dev=$(cat "$L/$ino.dev")
			# Still over this very inode (a deleted image's number cannot
			# be reused while a loop device holds it)?
			if [ "$(losetup -nO BACK-INO "$dev" 2>/dev/null | tr -d ' ')" = "$ino" ]; then
				# An image that grew is a LUN grown on the array: the
				# device is rescanned for its new size.
				if [ "$(blockdev --getsize64 "$dev")" != "$(stat -c %s "$img")" ]; then
					losetup -c "$dev"
				fi
				echo "$dev"; exit 0
			fi
		fi
		dev=$(losetup -f --show "$img") || exit 1
		echo "$dev" > "$L/$ino.dev"
		# (Not holding the lock: fd 9 closed for it.)
		setsid sh -c 'exec 3<"$0"; dd if="$0" of=/dev/null bs=1M count=64 2>/dev/null; exec sleep 100000' "$dev" \
			< /dev/null > /dev/null 2>&1 9>&- &
		echo $! > "$L/$ino.holder"
		# Let the holder fill the cache before the tool starts.
		sleep 0.5
		echo "$dev"
	) 9> "$L/lock"
}

tool=$1; shift
args=()
for a in "$@"; do
	if [[ "$a" == "$W"/*.img ]] && [ -f "$a" ]; then
		d=$(loop_for "$a") || { echo "via-loop.sh: cannot attach a loop device to $a" >&2; exit 125; }
		a=$d
	fi
	args+=("$a")
done
exec "$tool" "${args[@]}"

#!/usr/bin/env bash
# Interop suite (issue 6): our tools on the host against the MMP-patched
# kernel of ../shared/tools/kernel-peer, booted under QEMU on volumes made by
# mkfs.ocfs2-mmp. Every scenario prints the slot values it saw and how long
# each wait took, and fails with a "FAIL scenario N: what" line followed by
# that record when an expectation does not hold.
#
#   tests/interop/run.sh [SCENARIO...]      scenarios 1-6, c1-c5, r (default: all, each
#                                           on the image file and again as N@loop)
#
#   N@loop runs scenario N with the host tools on a loop device over the
#   guest's image (tests/interop/via-loop.sh), as on shared storage: the guest
#   writes the image file directly, below the loop device's page cache, which
#   a holder process keeps filled with stale pages.
#
#   1  mounted MMP volume: mmp status / tunefs / fsck -n refuse, bytes unchanged;
#      clean after umount
#   2  fsck holds the volume (SEQ_FSCK, SIGSTOP): a guest mount fails; after
#      fsck ends the guest mounts
#   3  guest crash: stale after one wait window, JOURNAL_NEEDS_RECOVERY, a new
#      guest recovers after its waits
#   4  --disable-mmp -> stock kernel mounts; --enable-mmp -> patched kernel mounts
#   5  4 slots, nocluster: mount, ro remount, rw remount, umount: the kernel's
#      values and debugfs-mmp's decoding agree; slot 0 is taken
#   6  two "mmp heartbeat" at once: one holder; heartbeat against guest mounts
#
# Clustered scenarios (issue 7; two guests, o2cb, cluster.sh of the kernel peer):
#   c1 both nodes mounted: status exits 1 naming nodes 0 and 1; tunefs and fsck refuse
#   c2 one node unmounted cleanly: status names the other only
#   c3 one node powered off: silent after the window, the other live; after the
#      survivor recovers the dead slot, the slot map agrees
#   c4 both powered off: status exits 0 after the default window, stale VALID_CLUSTER
#      slots named, same-kind rule explained; fsck -n runs; --clear-mmp refuses (dirty
#      journals); a clustered mount recovers both slots, as the status said
#   c5 mixed kernels (stock node 0 mounted, patched node 1 up), volume without MMP:
#      status says in use because node 0 heartbeats
#   r  the kernel mounts while fsck -y starts, at the same instant, both orders:
#      exactly one gets the volume, the other says why
#   j  journal replay (issue 12): the guest writes files, syncs, writes more and is
#      killed; fsck -n reports the dirty journal and nothing else; fsck -y replays
#      (exit 1); fsck.ocfs2 -fn is clean on a copy without MMP; fsck.ocfs2 -fy
#      replays the crashed copy and the blocks both replays wrote agree; the
#      kernel mounts our result without a recovery of its own and every file
#      synced before the kill reads back identical
#   f  repairs (issue 12): the guest writes files and unmounts; the host damages
#      inodes (dtime, clusters, link count, i_blkno) and the global bitmap's
#      counts; fsck -n reports each, fsck -y repairs them all (exit 1); fsck -n
#      and fsck.ocfs2 -fn (MMP off, on a copy) are clean; the kernel mounts the
#      result, every file reads back identical, a new file is written, and the
#      unmount is clean
#   t  tunefs (issue 13): on a volume mkfs.ocfs2 made with the old slot map,
#      --enable-mmp -L -U rewrites the map extended; the seed's kernel mounts
#      it with MMP and writes files; both checkers are clean; indexed-dirs on
#      (400 names in /d), -N 2 (the indexed system directory loses names);
#      --disable-mmp, then noextended-slotmap -L; the stock kernel reads every
#      file back, finds every name through the index, adds and removes names
#   x  extended attributes (issues 12 and 14): the seed's kernel gives files and
#      a directory attributes in every storage (inode, block, buckets, values in
#      clusters of their own); debugfs-mmp reads all 382 values back as the guest
#      summed them; both checkers are clean; a damaged name hash and a damaged
#      value size are found and repaired (that entry removed, as fsck.ocfs2
#      removes it); the kernel then reads every other attribute back identical
#
# Env: INTEROP_OPTIONAL=1   exit 0 (after saying why) when the kernel peer is absent
#      KPEER_DIR            where the kernel peer keeps its build and run dirs
#      INTEROP_KEEP=1       keep the images of passed scenarios
#      INTEROP_BIN=DIR      test the binaries in DIR (mkfs-ocfs2-mmp, tunefs-ocfs2-mmp,
#                           debugfs-mmp, fsck-ocfs2-mmp) instead of building target/release
# Work dir: target/interop (images, per-scenario logs, guest and kernel logs).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null) || ROOT=$(cd "$HERE/../.." && pwd)
KPT=$ROOT/../shared/tools/kernel-peer
W=$ROOT/target/interop
export KPEER_DIR=${KPEER_DIR:-$HOME/.cache/kpeer}
BASE="1 2 3 4 5 6 c1 c2 c3 c4 c5 r j f t x"
ALL="$BASE $(for s in $BASE; do printf '%s@loop ' "$s"; done)"

say() { printf '[interop %(%H:%M:%S)T] %s\n' -1 "$*"; }

# ------------------------------------------------------------ preconditions
if [ ! -x "$KPT/vm.sh" ] || [ ! -x "$KPT/build.sh" ]; then
	{
		echo "############################################################################"
		echo "interop: the kernel peer is missing: $KPT"
		echo "interop: (expected ../shared/tools/kernel-peer beside the repository, with build.sh"
		echo "interop:  and vm.sh). Without it the MMP contract cannot be checked against the kernel."
		echo "############################################################################"
	} >&2
	if [ "${INTEROP_OPTIONAL:-0}" = 1 ]; then
		echo "interop: SKIPPED (INTEROP_OPTIONAL=1): no kernel peer at $KPT" >&2
		exit 0
	fi
	echo "interop: FAILED: cannot run without the kernel peer (set INTEROP_OPTIONAL=1 to skip)" >&2
	exit 1
fi
KPT=$(cd "$KPT" && pwd)
VM=$KPT/vm.sh

SCEN=${*:-$ALL}
for s in $SCEN; do
	case " $ALL " in *" $s "*) ;; *) echo "interop: unknown scenario '$s' (scenarios: $ALL)" >&2; exit 2 ;; esac
done

T_SUITE=$(date +%s.%N)
rm -rf "$W"; mkdir -p "$W"
say "building the kernel peer ($KPT/build.sh; idempotent, installs qemu, busybox, ocfs2-tools, python3)"
if ! "$KPT/build.sh" > "$W/build.log" 2>&1; then
	tail -30 "$W/build.log" >&2
	echo "interop: FAILED: kernel peer build.sh failed (log: $W/build.log)" >&2
	exit 1
fi
tail -1 "$W/build.log"
if [ -n "${INTEROP_BIN:-}" ]; then
	B=$(cd "$INTEROP_BIN" && pwd) || exit 1
	say "testing the binaries in $B (INTEROP_BIN)"
else
	say "building our release binaries (cargo build --release)"
	(cd "$ROOT" && cargo build --release --quiet) || { echo "interop: FAILED: cargo build --release" >&2; exit 1; }
	B=$ROOT/target/release
fi
MKFS=$B/mkfs-ocfs2-mmp TUNEFS=$B/tunefs-ocfs2-mmp DEBUGFS=$B/debugfs-mmp FSCK=$B/fsck-ocfs2-mmp
# N@loop: the same tools behind via-loop.sh, one wrapper per tool.
export W
BL=$W/bin-loop
mkdir -p "$BL"
for t in mkfs-ocfs2-mmp tunefs-ocfs2-mmp debugfs-mmp fsck-ocfs2-mmp; do
	printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$HERE/via-loop.sh" "$B/$t" > "$BL/$t"
	chmod +x "$BL/$t"
done
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)
H="$PY $HERE/helper.py"
for t in "$MKFS" "$TUNEFS" "$DEBUGFS" "$FSCK"; do [ -x "$t" ] || { echo "interop: FAILED: $t missing" >&2; exit 1; }; done
command -v fsck.ocfs2 >/dev/null || { echo "interop: FAILED: fsck.ocfs2 (ocfs2-tools) missing after build.sh" >&2; exit 1; }
TAG=ia$$   # prefix of our run dir names under $KPEER_DIR/run

# ------------------------------------------------------------ helpers (run inside a scenario subshell)
SC= T0= RECORD= RUNDIRS=() BGPIDS=()
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
rec() {
	local l
	l=$(printf '[s%s %6.1fs] %s' "$SC" "$(since "$T0")" "$*")
	echo "$l"; echo "$l" >> "$RECORD"
}
fail() {
	echo "FAIL scenario $SC: $*"
	echo "---- record of scenario $SC (logs in $W):"
	cat "$RECORD"
	echo "----"
	exit 1
}
# run TAG CMD...: output in $W/sN-TAG.out; sets RC and DT (seconds)
run() {
	local tag=$1 t; shift
	t=$(now)
	"$@" > "$W/s$SC-$tag.out" 2>&1
	RC=$?
	DT=$(since "$t")
	OUT=$W/s$SC-$tag.out
}
# read_slots IMG: SLOTS (printable), S0 (slot 0 raw, 0x%08x), STATES, RAWS, NODES
read_slots() {
	local j
	if ! j=$("$DEBUGFS" --json -R slotmap "$1" 2>&1); then
		SLOTS="(debugfs-mmp slotmap failed: $j)"; S0=; STATES=; RAWS=; NODES=; return 1
	fi
	SLOTS=$($H slots <<<"$j"); STATES=$($H states <<<"$j"); RAWS=$($H raws <<<"$j"); NODES=$($H nodes <<<"$j")
	S0=${RAWS%% *}
}
show_slots() { read_slots "$1"; rec "slots ($2): $SLOTS"; }
mkvol() {  # mkvol IMG MKFS-ARGS...
	local img=$1; shift
	rm -f "$img"; truncate -s 1G "$img"
	run mkfs "$MKFS" -q "$@" "$img"
	[ $RC = 0 ] || fail "mkfs.ocfs2-mmp $* failed (rc=$RC): $(cat "$OUT")"
	rec "made $(basename "$img") with mkfs.ocfs2-mmp -q $*"
}
vm_save() {  # copy a run dir's logs into $W and remove it
	local rd=$1 n
	n=$(basename "$rd")
	[ -d "$rd" ] || return 0
	tr -d '\r' < "$rd/guest.log" > "$W/$n.guest.log" 2>/dev/null
	tr -d '\r' < "$rd/kernel.log" > "$W/$n.kernel.log" 2>/dev/null
	rm -rf "$rd"
}
# vm_fg NAME IMG SCRIPT [vm.sh options]: foreground guest; RC = guest rc,
# DT = wall time, GLOG/KLOG = its logs, MOUNT_T = the guest's mount time
vm_fg() {
	local name=$TAG-s$SC-$1 img=$2 script=$3 t; shift 3
	t=$(now)
	"$VM" "$img" "$script" --name "$name" --timeout 300 "$@" > "$W/$name.out" 2>&1
	RC=$?; DT=$(since "$t")
	vm_save "$KPEER_DIR/run/$name"
	GLOG=$W/$name.guest.log KLOG=$W/$name.kernel.log
	MOUNT_T=$(grep -a "cmd 'mount " "$GLOG" | head -1 | sed -n 's/.* took \([0-9.]*\)s.*/\1/p')
	MOUNT_RC=$(grep -a "cmd 'mount " "$GLOG" | head -1 | sed -n 's/.* rc=\([0-9]*\) .*/\1/p')
}
# vm_bg NAME IMG SCRIPT [vm.sh options]: background guest, returns once it
# serves (KP-SERVE-READY) or has failed; sets RD, DT
vm_bg() {
	local name=$TAG-s$SC-$1 img=$2 script=$3 t; shift 3
	RD=$KPEER_DIR/run/$name
	RUNDIRS+=("$RD")
	t=$(now)
	"$VM" "$img" "$script" --name "$name" --background --timeout 240 \
		--wait-for 'KP-SERVE-READY|MOUNT-FAILED|GUEST-RC=' "$@" > "$W/$name.out" 2>&1
	RC=$?; DT=$(since "$t")
	GLOG=$RD/guest.log KLOG=$RD/kernel.log
	[ $RC = 0 ] || fail "background guest $name did not start (vm.sh rc=$RC): $(tail -5 "$W/$name.out")"
	tr -d '\r' < "$GLOG" | grep -aq KP-SERVE-READY || fail "background guest $name is not serving: $(tr -d '\r' < "$GLOG" | tail -15)"
}
vm_send() {  # vm_send CMD...: runs in the guest of $RD; SENT = its output, RC
	local t; t=$(now)
	SENT=$(KPEER_SEND_TIMEOUT=120 "$VM" send "$RD" "$*" 2>&1); RC=$?; DT=$(since "$t")
	printf '%s\n' "$SENT" >> "$W/$(basename "$RD").send.log"
}
vm_stop() {  # clean stop of $RD: RC = guest rc
	local t; t=$(now)
	"$VM" stop "$RD" 120 > "$W/$(basename "$RD").stop.out" 2>&1
	RC=$?; DT=$(since "$t")
	vm_save "$RD"; GLOG=$W/$(basename "$RD").guest.log KLOG=$W/$(basename "$RD").kernel.log
}
vm_alive() { "$VM" status "$RD" >/dev/null 2>&1; }
cleanup() {
	local p rd
	for p in "${BGPIDS[@]}"; do
		kill -0 "$p" 2>/dev/null || continue
		kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null
	done
	for p in "${BGPIDS[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.3; done
		kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
	done
	for rd in "${RUNDIRS[@]}"; do
		[ -d "$rd" ] || continue
		"$VM" status "$rd" >/dev/null 2>&1 && "$VM" kill "$rd" >/dev/null 2>&1
		vm_save "$rd"
	done
}
slotmap_ranges() {  # SMRANGES = byte ranges (START:LEN) of the slot map's extents
	local bs cs
	bs=$("$DEBUGFS" --json -R stats "$1" | $H get 'd["block_size"]')
	cs=$("$DEBUGFS" --json -R stats "$1" | $H get 'd["cluster_size"]')
	SMRANGES=$("$DEBUGFS" --json -R "stat //slot_map" "$1" | $H ranges "$bs" "$cs")
	[ -n "$SMRANGES" ] || fail "no slot map extents from debugfs-mmp stat //slot_map"
}
hash_img() { $H hash "$1" $SMRANGES; }  # sha256 of IMG with the slot map's extents zeroed
jget() { $H get "$2" < "$1"; }   # jget FILE EXPR (last JSON line of FILE)
interval_of() { "$DEBUGFS" --json -R stats "$1" | $H get 'd["mmp_update_interval"]'; }
mmp_of() { "$DEBUGFS" --json -R stats "$1" | $H get 'd["mmp"]'; }
# wait_slot0 IMG HEX TIMEOUT: poll the slot map until slot 0 holds HEX
wait_slot0() {
	local end
	end=$(awk -v a="$(now)" -v t="$3" 'BEGIN{printf "%d", a+t}')
	while :; do
		read_slots "$1"
		[ "$S0" = "$2" ] && return 0
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.1
	done
}
kernel_errors() {  # ocfs2 errors in a kernel log other than the patch's four MMP debug lines
	grep -a 'ERROR' "$1" | grep -av 'ocfs2_multi_mount_protect:[0-9]* ERROR: seq: ' || true
}
guest_mount_line() { grep -a "cmd 'mount " "$1" | head -1; }
# oracle_clean IMG COPY WHAT: fsck.ocfs2 -fn is clean on COPY, a copy of IMG
# with MMP turned off by our tunefs (fsck.ocfs2 refuses the MMP bit).
oracle_clean() {
	cp --sparse=always "$1" "$2"
	run dis "$TUNEFS" -y --disable-mmp "$2"
	[ $RC = 0 ] || fail "tunefs --disable-mmp on a copy of $3: rc=$RC: $(cat "$OUT")"
	run ofn fsck.ocfs2 -fn "$2"
	rec "fsck.ocfs2 -fn on $3 (MMP off, a copy): rc=$RC in ${DT}s"
	[ $RC = 0 ] || fail "fsck.ocfs2 -fn on $3 exited $RC: $(cat "$OUT")"
}

# ------------------------------------------------------------ scenario 1
scenario_1() {
	local img=$W/s1.img h1 h2 st
	mkvol "$img" -M local --fs-features=mmp --mmp-update-interval=5
	vm_bg hold "$img" "$KPT/tests/mmp-hold.sh" --mmp
	rec "guest booted and mounted (background): $(since "$T0")s since start, vm.sh took ${DT}s; $(guest_mount_line "$GLOG" | tr -d '\r')"
	show_slots "$img" "mounted"
	[ "${STATES%% *}" = sequence ] || fail "slot 0 of a mounted MMP volume is not a sequence: $SLOTS"
	slotmap_ranges "$img"
	h1=$(hash_img "$img"); [ -n "$h1" ] || fail "could not hash the image"; rec "sha256 outside the slot map (${SMRANGES}): $h1"

	# mmp status, text and JSON at once (both read-only, same wait)
	local t; t=$(now)
	"$DEBUGFS" -R "mmp status" "$img" > "$W/s1-status.out" 2>&1 & local p1=$!
	"$DEBUGFS" --json -R "mmp status" "$img" > "$W/s1-status.json" 2>"$W/s1-status.err" & local p2=$!
	BGPIDS+=("$p1" "$p2")
	wait $p1; local rc1=$?; wait $p2; local rc2=$?
	DT=$(since "$t")
	rec "mmp status: rc=$rc1 (text) rc=$rc2 (json), waited ${DT}s: $(grep -a '^Verdict' "$W/s1-status.out")"
	rec "mmp status json verdict: $(jget "$W/s1-status.json" 'd["verdict"]') waited=$(jget "$W/s1-status.json" 'd["waited"]')s wait_time=$(jget "$W/s1-status.json" 'd["wait_time"]')s"
	[ $rc1 = 1 ] && [ $rc2 = 1 ] || fail "mmp status on a mounted volume exited $rc1/$rc2, expected 1"
	[ "$(jget "$W/s1-status.json" 'd["verdict"]["kind"]')" = active ] || fail "mmp status verdict is not 'active'"
	local before after
	before=$(jget "$W/s1-status.json" '"0x%08x" % d["verdict"]["before"]')
	after=$(jget "$W/s1-status.json" '"0x%08x" % d["verdict"]["after"]')
	[ "$before" != "$after" ] || fail "mmp status 'active' without a moving sequence ($before -> $after)"
	grep -aq "moved from $before to $after" "$W/s1-status.out" || fail "mmp status text does not name the moving sequence $before -> $after: $(grep -a Verdict "$W/s1-status.out")"

	run tunefs "$TUNEFS" -y --mmp-update-interval=3 "$img"
	rec "tunefs -y --mmp-update-interval=3: rc=$RC after ${DT}s: $(tail -1 "$OUT")"
	[ $RC = 1 ] || fail "tunefs.ocfs2-mmp on a mounted volume exited $RC, expected 1 (refused)"
	run fsck "$FSCK" -n "$img"
	rec "fsck -n: rc=$RC after ${DT}s: $(tail -1 "$OUT")"
	[ $RC = 8 ] || fail "fsck.ocfs2-mmp -n on a mounted volume exited $RC, expected 8 (in use)"
	st=$(interval_of "$img"); [ "$st" = 5 ] || fail "update interval is $st after the refused tunefs, expected 5"
	h2=$(hash_img "$img"); rec "sha256 outside the slot map after the tools: $h2"
	[ "$h1" = "$h2" ] || fail "bytes outside the slot map changed while our tools ran ($h1 -> $h2)"
	show_slots "$img" "still mounted"
	[ "${STATES%% *}" = sequence ] || fail "slot 0 is no longer a sequence while mounted: $SLOTS"

	vm_stop
	rec "clean unmount (vm.sh stop): guest rc=$RC in ${DT}s; $(grep -a "cmd 'umount" "$GLOG" | tail -1)"
	[ $RC = 0 ] || fail "guest unmount/poweroff failed (rc=$RC)"
	show_slots "$img" "after umount"
	run status "$DEBUGFS" -R "mmp status" "$img"
	rec "mmp status after umount: rc=$RC in ${DT}s: $(grep -a '^Verdict' "$OUT")"
	[ $RC = 0 ] || fail "mmp status after a clean unmount exited $RC, expected 0"
	run fsck2 "$FSCK" -n "$img"
	rec "fsck -n after umount: rc=$RC in ${DT}s: $(tail -1 "$OUT")"
	[ $RC = 0 ] || fail "fsck.ocfs2-mmp -n after a clean unmount exited $RC, expected 0: $(cat "$OUT")"
}

# ------------------------------------------------------------ scenario 2
scenario_2() {
	local img=$W/s2.img t p rc
	mkvol "$img" -M local --fs-features=mmp --mmp-update-interval=5
	t=$(now)
	# The guard's test hook: hold the volume 30 s longer than the passes need.
	OCFS2_MMP_HOLD_HOOK=$W/s$SC.hold:30 "$FSCK" -y "$img" > "$W/s$SC-fsck.out" 2>&1 & p=$!
	BGPIDS+=("$p")
	wait_slot0 "$img" 0xe24d4d50 30 || fail "slot 0 never read SEQ_FSCK 0xe24d4d50 while fsck -y ran (last: $SLOTS)"
	kill -STOP "$p"
	rec "fsck -y (pid $p) wrote SEQ_FSCK after $(since "$t")s; SIGSTOP; slots: $SLOTS"
	vm_fg mount "$img" "$KPT/tests/mount-once.sh" --mmp
	rec "guest mount while fsck holds the volume: guest rc=$RC, vm.sh ${DT}s; $(guest_mount_line "$GLOG")"
	rec "kernel said: $(grep -aE 'show_conflict_mnt_msg|fsck is running|active on another node' "$KLOG" | head -1 | sed 's/^\[[ 0-9.]*\] //')"
	[ "$MOUNT_RC" != "" ] || fail "the guest did not try to mount (see $GLOG)"
	[ "$MOUNT_RC" != 0 ] && [ $RC != 0 ] || fail "the guest mounted while fsck held the volume"
	show_slots "$img" "after the failed mount"
	[ "$S0" = 0xe24d4d50 ] || fail "slot 0 no longer holds SEQ_FSCK after the failed mount: $SLOTS"
	kill -0 "$p" 2>/dev/null || fail "fsck died while stopped"
	t=$(now); kill -CONT "$p"; wait "$p"; rc=$?
	rec "SIGCONT; fsck -y ended rc=$rc $(since "$t")s later: $(tail -1 "$W/s$SC-fsck.out")"
	[ $rc = 0 ] || fail "fsck.ocfs2-mmp -y exited $rc, expected 0: $(cat "$W/s$SC-fsck.out")"
	show_slots "$img" "after fsck"
	[ "$S0" = 0x00000000 ] || fail "fsck did not put slot 0 back to 0: $SLOTS"
	vm_fg mount2 "$img" "$KPT/tests/mount-once.sh" --mmp
	rec "guest mount after fsck: guest rc=$RC, vm.sh ${DT}s; $(guest_mount_line "$GLOG")"
	[ $RC = 0 ] && [ "$MOUNT_RC" = 0 ] || fail "the guest could not mount after fsck ended (rc=$RC)"
	show_slots "$img" "after the guest's umount"
}

# ------------------------------------------------------------ scenario 3
scenario_3() {
	local img=$W/s3.img t codes
	mkvol "$img" -M local --fs-features=mmp --mmp-update-interval=5
	vm_bg hold "$img" "$KPT/tests/mmp-hold.sh" --mmp
	rec "guest mounted (background), vm.sh ${DT}s; $(guest_mount_line "$GLOG" | tr -d '\r')"
	vm_send 'i=0; while [ $i -lt 50 ]; do echo $i > /mnt/f$i; i=$((i+1)); done; sync; mkdir /mnt/d; touch /mnt/d/late1 /mnt/d/late2; echo wrote'
	rec "guest wrote 50 files + sync, then a mkdir and 2 files without sync (rc=$RC)"
	show_slots "$img" "mounted, just before the kill"
	"$VM" kill "$RD" > "$W/s3-kill.out" 2>&1 || fail "vm.sh kill failed: $(cat "$W/s3-kill.out")"
	t=$(now)
	rec "$(cat "$W/s3-kill.out")"
	show_slots "$img" "after the kill"
	run status "$DEBUGFS" --json -R "mmp status" "$img"
	rec "mmp status: rc=$RC after ${DT}s: verdict $(jget "$OUT" 'd["verdict"]') waited=$(jget "$OUT" 'd["waited"]')s"
	[ $RC = 0 ] || fail "mmp status after the crash exited $RC, expected 0 (stale)"
	[ "$(jget "$OUT" 'd["verdict"]["kind"]')" = stale ] || fail "mmp status verdict after the crash is not 'stale'"
	[ "$(jget "$OUT" 'd["waited"]')" = "$(jget "$OUT" 'd["wait_time"]')" ] || fail "mmp status did not wait exactly one wait window"
	run fsck "$FSCK" -n --json "$img"
	codes=$($H get '" ".join(sorted(set(f["code"] for f in d["findings"])))' < "$OUT")
	rec "fsck -n after the crash: rc=$RC after ${DT}s; findings: ${codes:-none}"
	case " $codes " in *" JOURNAL_NEEDS_RECOVERY "*) ;; *)
		fail "fsck.ocfs2-mmp -n after the crash does not report JOURNAL_NEEDS_RECOVERY (rc=$RC, findings: ${codes:-none})" ;;
	esac
	[ $RC = 4 ] || fail "fsck.ocfs2-mmp -n after the crash exited $RC, expected 4"
	rec "$($H get '[f["message"] for f in d["findings"] if f["code"]=="JOURNAL_NEEDS_RECOVERY"][0]' < "$OUT")"
	vm_fg remount "$img" "$KPT/tests/mount-once.sh" --mmp
	rec "new guest mount: guest rc=$RC, vm.sh ${DT}s; $(guest_mount_line "$GLOG")"
	rec "kernel said: $(grep -a 'not unmounted cleanly' "$KLOG" | sed 's/^\[[ 0-9.]*\] //' | head -1)"
	[ $RC = 0 ] && [ "$MOUNT_RC" = 0 ] || fail "the new guest could not mount after the crash (rc=$RC)"
	awk -v m="$MOUNT_T" 'BEGIN{exit !(m >= 20)}' || fail "the mount after the crash took ${MOUNT_T}s; the kernel waits 2 x 11 s"
	grep -aq 'not unmounted cleanly, recovering' "$KLOG" || fail "the kernel did not recover the journal"
	show_slots "$img" "after the new guest's umount"
	run fsck2 "$FSCK" -n "$img"
	rec "fsck -n after recovery: rc=$RC in ${DT}s: $(tail -1 "$OUT")"
	[ $RC = 0 ] || fail "fsck.ocfs2-mmp -n after recovery exited $RC: $(cat "$OUT")"
}

# ------------------------------------------------------------ scenario 4
scenario_4() {
	local img=$W/s4.img
	mkvol "$img" -M local --fs-features=mmp --mmp-update-interval=5
	run disable "$TUNEFS" -y --disable-mmp "$img"
	rec "tunefs -y --disable-mmp: rc=$RC in ${DT}s: $(tail -1 "$OUT")"
	[ $RC = 0 ] || fail "tunefs.ocfs2-mmp --disable-mmp exited $RC: $(cat "$OUT")"
	[ "$(mmp_of "$img")" = False ] || fail "the MMP feature is still on after --disable-mmp"
	show_slots "$img" "MMP off"
	run debfsck fsck.ocfs2 -fn "$img"
	rec "fsck.ocfs2 -fn (ocfs2-tools) after disable: rc=$RC: $(grep -a 'All passes' "$OUT" || tail -1 "$OUT")"
	[ $RC = 0 ] && grep -aq 'All passes succeeded' "$OUT" || fail "fsck.ocfs2 -fn is not clean after --disable-mmp (rc=$RC): $(tail -20 "$OUT")"
	vm_fg stock "$img" "$KPT/tests/mount-once.sh" --stock
	rec "stock kernel: guest rc=$RC, vm.sh ${DT}s; $(guest_mount_line "$GLOG"); slot words while mounted: $($H guestwords < <(sed -n '/MOUNTED/,/umount/p' "$GLOG"))"
	[ $RC = 0 ] && [ "$MOUNT_RC" = 0 ] || fail "the stock kernel could not mount the volume after --disable-mmp (rc=$RC)"
	[ -z "$(kernel_errors "$KLOG")" ] || fail "stock kernel errors: $(kernel_errors "$KLOG")"
	show_slots "$img" "after the stock umount"
	run debfsck2 fsck.ocfs2 -fn "$img"
	rec "fsck.ocfs2 -fn after the stock mount: rc=$RC: $(grep -a 'All passes' "$OUT" || tail -1 "$OUT")"
	[ $RC = 0 ] && grep -aq 'All passes succeeded' "$OUT" || fail "fsck.ocfs2 -fn is not clean after the stock mount (rc=$RC)"
	run enable "$TUNEFS" -y --enable-mmp --mmp-update-interval=5 "$img"
	rec "tunefs -y --enable-mmp --mmp-update-interval=5: rc=$RC in ${DT}s: $(tail -1 "$OUT")"
	[ $RC = 0 ] || fail "tunefs.ocfs2-mmp --enable-mmp exited $RC: $(cat "$OUT")"
	[ "$(mmp_of "$img")" = True ] && [ "$(interval_of "$img")" = 5 ] || fail "MMP not on with interval 5 after --enable-mmp"
	vm_fg mmp "$img" "$KPT/tests/mount-once.sh" --mmp
	rec "patched kernel: guest rc=$RC, vm.sh ${DT}s; $(guest_mount_line "$GLOG"); slot words while mounted: $($H guestwords < <(sed -n '/MOUNTED/,/umount/p' "$GLOG"))"
	[ $RC = 0 ] && [ "$MOUNT_RC" = 0 ] || fail "the patched kernel could not mount after --enable-mmp (rc=$RC)"
	[ -z "$(kernel_errors "$KLOG")" ] || fail "patched kernel errors: $(kernel_errors "$KLOG")"
	show_slots "$img" "after the patched umount"
	run fsck "$FSCK" -n "$img"
	rec "fsck.ocfs2-mmp -n: rc=$RC: $(tail -1 "$OUT")"
	[ $RC = 0 ] || fail "fsck.ocfs2-mmp -n exited $RC at the end"
}

# ------------------------------------------------------------ scenario 5
# compare STEP EXPECTED-STATES: the kernel's words (last kp_slot0 in $SENT)
# against debugfs-mmp's slotmap read right after
s5_compare() {
	local step=$1 want=$2 gw i gv gn hv hn hs dec
	gw=($($H guestwords <<<"$SENT"))
	read_slots "$IMG5"
	local raws=($RAWS) nodes=($NODES) states=($STATES)
	[ ${#gw[@]} = 8 ] || fail "$step: no slot map dump from the guest: $SENT"
	rec "$step: kernel wrote: slot0=0x${gw[0]}/n$((16#${gw[1]})) slot1=0x${gw[2]} slot2=0x${gw[4]} slot3=0x${gw[6]}; debugfs-mmp: $SLOTS"
	[ "$STATES" = "$want" ] || fail "$step: debugfs-mmp states '$STATES', expected '$want'"
	for i in 0 1 2 3; do
		gv=$((16#${gw[$((2*i))]})); gn=$((16#${gw[$((2*i+1))]}))
		hv=$((${raws[$i]})); hn=${nodes[$i]}; hs=${states[$i]}
		dec=$($H decode "$(printf '%x' $gv)")
		if [ "$hs" = sequence ] && [ "$dec" = sequence ]; then
			# kmmpd may have ticked between the two reads
			[ $hv = $gv ] || [ $hv = $((gv + 1)) ] || fail "$step: slot $i: kernel 0x${gw[$((2*i))]}, debugfs-mmp ${raws[$i]}"
		else
			[ $hv = $gv ] || fail "$step: slot $i: kernel 0x${gw[$((2*i))]}, debugfs-mmp ${raws[$i]}"
		fi
		[ "$hs" = "$dec" ] || fail "$step: slot $i: debugfs-mmp decodes 0x${gw[$((2*i))]} as '$hs', the protocol says '$dec'"
		[ "$hn" = "$gn" ] || fail "$step: slot $i: node field kernel $gn, debugfs-mmp $hn"
	done
}
s5_moves() {  # the sequence in slot 0 moves (kmmpd runs)
	local a=$S0
	sleep 6; read_slots "$IMG5"
	rec "$1: 6 s later slot 0 = $S0 (was $a)"
	[ "$S0" != "$a" ] && [ "${STATES%% *}" = sequence ] || fail "$1: slot 0 did not move in 6 s ($a -> $S0): kmmpd not running?"
}
scenario_5() {
	IMG5=$W/s5.img
	local mo=heartbeat=none,nocluster
	mkvol "$IMG5" -N 4 --fs-features=mmp --mmp-update-interval=5
	show_slots "$IMG5" "made"
	vm_bg serve "$IMG5" "$HERE/guest/serve.sh" --mmp --append kpeer.mopts=nocluster
	rec "guest booted (background), vm.sh ${DT}s"
	vm_send 'kp_mount; kp_slot0'
	grep -aq "cmd 'mount .*' rc=0 " <<<"$SENT" || fail "mount -o $mo failed in the guest: $SENT"
	rec "mount: $(grep -a "cmd 'mount" <<<"$SENT")"
	s5_compare "mount" "sequence empty empty empty"
	grep -aq 'on (node local, slot 0)' "$RD/kernel.log" || fail "the kernel did not say it took slot 0: $(grep -a Mounting "$RD/kernel.log")"
	rec "kernel: $(tr -d '\r' < "$RD/kernel.log" | grep -a 'Mounting device' | sed 's/^\[[ 0-9.]*\] //')"
	s5_moves "mount"
	vm_send "kp_time mount -o remount,ro,$mo /mnt; kp_slot0; ps | grep '\[kmmpd' | grep -v grep"
	grep -aq "cmd 'mount .*' rc=0 " <<<"$SENT" || fail "remount,ro failed: $SENT"
	rec "remount ro: $(grep -a "cmd 'mount" <<<"$SENT"); kmmpd: $(grep -a kmmpd <<<"$SENT" | tr -s ' ' || echo none)"
	s5_compare "read-only remount" "clean empty empty empty"
	sleep 6; read_slots "$IMG5"; rec "read-only, 6 s later: $SLOTS"
	[ "$S0" = 0xff4d4d50 ] || fail "read-only remount: slot 0 did not stay SEQ_CLEAN: $SLOTS"
	# ro -> rw: the patch unlocks osb_lock twice here ("BUG: scheduling while
	# atomic", kernel-peer README x1/x2); the guest survives it and kmmpd restarts.
	vm_send "kp_time mount -o remount,rw,$mo /mnt; kp_slot0; ps | grep '\[kmmpd' | grep -v grep"
	grep -aq "cmd 'mount .*' rc=0 " <<<"$SENT" || fail "remount,rw failed: $SENT"
	rec "remount rw: $(grep -a "cmd 'mount" <<<"$SENT"); kmmpd: $(grep -a kmmpd <<<"$SENT" | tr -s ' ' || echo none)"
	rec "kernel on remount rw: $(tr -d '\r' < "$RD/kernel.log" | grep -a 'BUG:' | sed 's/^\[[ 0-9.]*\] //' | head -1)"
	s5_compare "read-write remount" "sequence empty empty empty"
	s5_moves "read-write remount"
	vm_send 'echo data > /mnt/after-rw && sync && echo write-ok'
	rec "write after remount rw: rc=$RC $(grep -a write-ok <<<"$SENT")"
	vm_send "kp_umount; kp_slot0; ps | grep '\[kmmpd' | grep -v grep || echo 'no kmmpd'"
	grep -aq "cmd 'umount /mnt' rc=0" <<<"$SENT" || fail "umount failed: $SENT"
	rec "umount: $(grep -a "cmd 'umount" <<<"$SENT"); kmmpd after: $(grep -aE 'kmmpd' <<<"$SENT" | tr -s ' ')"
	s5_compare "unmount" "empty empty empty empty"
	sleep 6; read_slots "$IMG5"; rec "6 s after umount: $SLOTS"
	[ "$STATES" = "empty empty empty empty" ] || fail "after umount the slot map changed again: $SLOTS (a leaked kmmpd?)"
	vm_stop
	rec "guest stopped: rc=$RC in ${DT}s"
	[ $RC = 0 ] || fail "guest stop failed (rc=$RC)"
	run fsck "$FSCK" -n "$IMG5"
	rec "fsck.ocfs2-mmp -n: rc=$RC: $(tail -1 "$OUT")"
	[ $RC = 0 ] || fail "fsck.ocfs2-mmp -n exited $RC at the end: $(cat "$OUT")"
}

# ------------------------------------------------------------ scenario 6
hb_start() {  # hb_start NAME SECONDS: background heartbeat; HBPID
	"$DEBUGFS" -w -R "mmp heartbeat --for $2" "$IMG6" > "$W/s6-$1.out" 2> "$W/s6-$1.err" &
	HBPID=$!; BGPIDS+=("$HBPID")
}
scenario_6() {
	IMG6=$W/s6.img
	local t pa pb ra rb alive last
	mkvol "$IMG6" -M local --fs-features=mmp --mmp-update-interval=5

	# A: two heartbeats started together
	t=$(now)
	hb_start a 40; pa=$HBPID
	hb_start b 40; pb=$HBPID
	rec "A: two 'mmp heartbeat --for 40' started together (pids $pa $pb)"
	# watch until one of them has given up (or 30 s): at no poll may both
	# have written an update after their wait window (= both holding)
	ra= rb= last=
	local ba bb
	while awk -v a="$t" -v b="$(now)" 'BEGIN{exit !(b-a < 30)}'; do
		read_slots "$IMG6"
		[ "$S0" != "$last" ] && { rec "A: slot 0 = $S0 (${STATES%% *})"; last=$S0; }
		if [ -z "$ra" ] && ! kill -0 $pa 2>/dev/null; then wait $pa; ra=$?; rec "A: heartbeat a exited rc=$ra after $(since "$t")s: $(tail -1 "$W/s6-a.err")"; fi
		if [ -z "$rb" ] && ! kill -0 $pb 2>/dev/null; then wait $pb; rb=$?; rec "A: heartbeat b exited rc=$rb after $(since "$t")s: $(tail -1 "$W/s6-b.err")"; fi
		ba=$(grep -c 'heartbeat: slot 0 =' "$W/s6-a.err"); bb=$(grep -c 'heartbeat: slot 0 =' "$W/s6-b.err")
		[ -z "$ra" ] && [ -z "$rb" ] && [ "$ba" -ge 1 ] && [ "$bb" -ge 1 ] &&
			fail "A: both heartbeats are updating slot 0 (a: $(grep 'slot 0 =' "$W/s6-a.err" | tail -1); b: $(grep 'slot 0 =' "$W/s6-b.err" | tail -1))"
		[ -n "$ra$rb" ] && awk -v a="$t" -v b="$(now)" 'BEGIN{exit !(b-a >= 17)}' && break
		sleep 0.5
	done
	alive=0
	[ -z "$ra" ] && alive=$((alive + 1)); [ -z "$rb" ] && alive=$((alive + 1))
	rec "A: $(since "$t")s after the start (wait window 11 s): $alive heartbeat(s) still running"
	[ $alive -le 1 ] || fail "A: two heartbeats hold the volume at once"
	[ -z "$ra" ] || [ "$ra" != 0 ] || fail "A: heartbeat a exited 0 before its time was up"
	[ -z "$rb" ] || [ "$rb" != 0 ] || fail "A: heartbeat b exited 0 before its time was up"
	if [ $alive = 1 ]; then
		local hp=$pa; [ -z "$rb" ] && hp=$pb
		read_slots "$IMG6"; local s1=$S0; sleep 6; read_slots "$IMG6"
		rec "A: the holder moves slot 0: $s1 -> $S0"
		[ "$S0" != "$s1" ] || fail "A: the remaining heartbeat does not move slot 0"
		kill -TERM $hp; wait $hp; local rh=$?
		rec "A: SIGTERM to the holder: rc=$rh; $(tail -1 "$W/s6-$([ $hp = $pa ] && echo a || echo b).out")"
		[ $rh = 0 ] || fail "A: the holder exited $rh on SIGTERM"
		show_slots "$IMG6" "A: after the holder stopped"
		[ "$S0" = 0x00000000 ] || fail "A: the holder did not leave 0 in slot 0"
	else
		rec "A: both heartbeats noticed the race"
		run clear "$TUNEFS" --clear-mmp -y "$IMG6"
		rec "A: tunefs --clear-mmp -y: rc=$RC in ${DT}s"
	fi

	# B: our heartbeat holds; a guest mount must fail
	t=$(now)
	hb_start hold 300; pa=$HBPID
	local n=0
	while [ $n -lt 2 ]; do
		n=$(grep -c 'heartbeat: slot 0 =' "$W/s6-hold.err")
		kill -0 $pa 2>/dev/null || { wait $pa; fail "B: the heartbeat exited rc=$? before holding: $(cat "$W/s6-hold.err")"; }
		awk -v a="$t" -v b="$(now)" 'BEGIN{exit !(b-a < 40)}' || fail "B: the heartbeat did not start updating within 40 s"
		sleep 0.2
	done
	show_slots "$IMG6" "B: our heartbeat holds the volume after $(since "$t")s"
	vm_fg mount "$IMG6" "$KPT/tests/mount-once.sh" --mmp
	rec "B: guest mount against our heartbeat: guest rc=$RC, vm.sh ${DT}s; $(guest_mount_line "$GLOG")"
	rec "B: kernel said: $(grep -aE 'active on another node|fsck is running|show_conflict' "$KLOG" | head -1 | sed 's/^\[[ 0-9.]*\] //')"
	[ -n "$MOUNT_RC" ] || fail "B: the guest did not try to mount"
	[ "$MOUNT_RC" != 0 ] || fail "B: the guest mounted while our heartbeat held the volume"
	kill -0 $pa 2>/dev/null || { wait $pa; fail "B: our heartbeat stopped (rc=$?) during the guest's attempt: $(tail -2 "$W/s6-hold.err")"; }
	show_slots "$IMG6" "B: after the guest's attempt"
	kill -TERM $pa; wait $pa; ra=$?
	rec "B: SIGTERM to our heartbeat: rc=$ra; $(tail -1 "$W/s6-hold.out")"
	[ $ra = 0 ] || fail "B: heartbeat exited $ra on SIGTERM"
	show_slots "$IMG6" "B: after our heartbeat stopped"

	# C: a guest holds the volume; our heartbeat must refuse
	vm_bg hold "$IMG6" "$KPT/tests/mmp-hold.sh" --mmp
	rec "C: guest mounted (background), vm.sh ${DT}s; $(guest_mount_line "$GLOG" | tr -d '\r')"
	show_slots "$IMG6" "C: guest mounted"
	run hbc "$DEBUGFS" -w -R "mmp heartbeat --for 30" "$IMG6"
	rec "C: heartbeat against the mounted guest: rc=$RC after ${DT}s: $(grep -av 'waiting' "$OUT" | tail -1)"
	[ $RC != 0 ] || fail "C: our heartbeat ran while the guest was mounted"
	show_slots "$IMG6" "C: after our refused heartbeat"
	[ "${STATES%% *}" = sequence ] || fail "C: slot 0 is not the guest's sequence any more: $SLOTS"
	vm_send 'grep " /mnt ocfs2 " /proc/mounts; dmesg | grep -iE "multiple|MMP|error" | grep -v "ERROR: seq:" || true'
	rec "C: guest still mounted: $(grep -a ' /mnt ocfs2 ' <<<"$SENT" | cut -d' ' -f1-4)"
	grep -aq ' /mnt ocfs2 rw' <<<"$SENT" || fail "C: the guest lost its mount: $SENT"
	vm_stop
	rec "C: guest stopped: rc=$RC in ${DT}s"
	[ $RC = 0 ] || fail "C: guest unmount failed (rc=$RC)"
	show_slots "$IMG6" "C: after umount"
}

# ------------------------------------------------------------ clustered helpers
CL= RD0= RD1=
# cl_start NAME IMG [cluster.sh start options]: two guests on IMG; sets CL, RD0, RD1
cl_start() {
	local name=$TAG-s$SC-$1 img=$2 t; shift 2
	t=$(now)
	"$KPT/cluster.sh" start "$img" --name "$name" "$@" > "$W/$name.start.out" 2>&1
	RC=$?; DT=$(since "$t")
	CL=$name
	RD0=$(sed -n 's/^RUNDIR0=//p' "$W/$name.start.out"); RD1=$(sed -n 's/^RUNDIR1=//p' "$W/$name.start.out")
	[ -n "$RD0" ] && RUNDIRS+=("$RD0"); [ -n "$RD1" ] && RUNDIRS+=("$RD1")
	[ $RC = 0 ] || fail "cluster.sh start $* failed (rc=$RC): $(tail -25 "$W/$name.start.out")"
	rec "cluster up in ${DT}s (cluster.sh start $*): $(grep -a 'mount rc=' "$W/$name.start.out" | tr '\n' ' ')"
}
cl_send() {  # cl_send NODE CMD...: SENT, RC
	local n=$1 t; shift; t=$(now)
	SENT=$(KPEER_SEND_TIMEOUT=120 "$KPT/cluster.sh" send "$CL" "$n" "$*" 2>&1); RC=$?; DT=$(since "$t")
	printf '%s\n' "$SENT" >> "$W/$CL.n$n.send.log"
}
cl_kill() { "$KPT/cluster.sh" kill "$CL" "$1" >> "$W/$CL.kill.out" 2>&1; KILLED_AT=$(now); rec "node $1 powered off (cluster.sh kill)"; }
cl_stop() {
	local t; t=$(now)
	"$KPT/cluster.sh" stop "$CL" 120 > "$W/$CL.stop.out" 2>&1
	RC=$?; DT=$(since "$t")
	rec "cluster stopped: rc=$RC in ${DT}s"
	vm_save "$RD1"; vm_save "$RD0"
}
# st TAG IMG [ARGS]: debugfs-mmp --json -R "mmp status ARGS" IMG; ST (json file),
# ST_RC, ST_DT; prints the slots and the heartbeat sequences seen; fails when
# the wait took longer than it announced
st() {
	local tag=$1 img=$2 t said; shift 2
	t=$(now)
	"$DEBUGFS" --json -R "mmp status $*" "$img" > "$W/s$SC-$tag.json" 2> "$W/s$SC-$tag.err"
	ST_RC=$?; ST_DT=$(since "$t"); ST=$W/s$SC-$tag.json
	[ -s "$ST" ] || fail "mmp status $* printed no JSON (rc=$ST_RC): $(cat "$W/s$SC-$tag.err")"
	rec "mmp status $* [$tag]: rc=$ST_RC in ${ST_DT}s; $(jget "$ST" 'd["verdict"]["kind"]'): $(jget "$ST" 'd["verdict_text"]')"
	rec "  slots $($H slots < "$ST"); mounted $(jget "$ST" 'd["mounted_nodes"]') silent $(jget "$ST" 'd["silent_nodes"]') stale slots $(jget "$ST" 'd["stale_slots"]')"
	rec "  heartbeat: $($H hbsum < "$ST")"
	said=$(grep -a -o 'waiting [0-9]* s' "$W/s$SC-$tag.err" | tail -1 | tr -dc 0-9)
	rec "  announced: ${said:-no wait}; waited $(jget "$ST" 'd["waited"]') s"
	if [ -n "$said" ] && awk -v d="$ST_DT" -v s="$said" 'BEGIN{exit !(d > s + 2)}'; then
		fail "mmp status announced $said s and took ${ST_DT}s"
	fi
}
jis() { [ "$(jget "$ST" "$1")" = "$2" ] || fail "${3:-status}: $1 is $(jget "$ST" "$1"), expected $2"; }

# ------------------------------------------------------------ scenario c1
scenario_c1() {
	local img=$W/sc1.img h1 h2
	mkvol "$img" -N 2 --fs-features=mmp --mmp-update-interval=5
	cl_start both "$img" --mmp --mount --hb-dead 7
	show_slots "$img" "both mounted"
	[ "$STATES" = "cluster cluster" ] && [ "$NODES" = "0 1" ] || fail "slots while both nodes are mounted: $SLOTS (expected VALID_CLUSTER for nodes 0 and 1)"
	# The nodes keep writing (heartbeat, journals): compare the superblock
	# as our tools would change it, and the slot map.
	h1=$("$DEBUGFS" --json -R stats "$img")
	st both "$img"
	[ $ST_RC = 1 ] || fail "mmp status exited $ST_RC with both nodes mounted, expected 1"
	jis 'd["verdict"]["kind"]' heartbeating
	jis 'd["verdict"]["nodes"]' '[0, 1]'
	jis 'd["mounted_nodes"]' '[0, 1]'
	jis 'd["stale_slots"]' '[]'
	jget "$ST" 'd["verdict_text"]' | grep -q 'node(s) 0, 1 heartbeat' || fail "the verdict does not name nodes 0 and 1"
	"$DEBUGFS" -R "mmp status --hb-window 6" "$img" > "$W/sc1-text.out" 2>&1
	rec "text: $(grep -a -E '^(Mounted nodes|Verdict)' "$W/sc1-text.out" | tr '\n' ' ')"
	grep -aq '^Mounted nodes: 0, 1$' "$W/sc1-text.out" || fail "text status does not say 'Mounted nodes: 0, 1'"
	"$DEBUGFS" --json -R "hb --watch 5" "$img" > "$W/sc1-hb.json" 2>/dev/null
	rec "hb --watch 5: $($H hbwatch < "$W/sc1-hb.json")"
	[ "$(jget "$W/sc1-hb.json" '[n["verdict"] for n in d["nodes"]]')" = '["live", "live"]' ] || fail "hb --watch does not show both nodes live"
	run tunefs "$TUNEFS" -y --hb-window 10 --mmp-update-interval=3 "$img"
	rec "tunefs -y --mmp-update-interval=3: rc=$RC after ${DT}s: $(tail -1 "$OUT")"
	[ $RC = 1 ] || fail "tunefs.ocfs2-mmp exited $RC on a volume two nodes have mounted, expected 1 (refused)"
	grep -aq 'heartbeat' "$OUT" || fail "tunefs's refusal does not name the heartbeat"
	run fsck "$FSCK" -n --hb-window 10 "$img"
	rec "fsck -n: rc=$RC after ${DT}s: $(tail -1 "$OUT")"
	[ $RC = 8 ] || fail "fsck.ocfs2-mmp -n exited $RC on a volume two nodes have mounted, expected 8"
	grep -aq 'heartbeat' "$OUT" || fail "fsck's refusal does not name the heartbeat"
	run fsckw "$FSCK" -y --hb-window 10 "$img"
	rec "fsck -y: rc=$RC after ${DT}s: $(tail -1 "$OUT")"
	[ $RC = 8 ] || fail "fsck.ocfs2-mmp -y exited $RC on a mounted volume, expected 8"
	[ "$(interval_of "$img")" = 5 ] || fail "the update interval changed"
	h2=$("$DEBUGFS" --json -R stats "$img"); [ "$h1" = "$h2" ] || fail "the superblock changed: $h1 -> $h2"
	show_slots "$img" "after the refused tools"
	[ "$STATES" = "cluster cluster" ] || fail "our tools changed the slot map of a mounted volume: $SLOTS"
	cl_stop
	[ $RC = 0 ] || fail "cluster stop failed (rc=$RC)"
	show_slots "$img" "both unmounted"
}

# ------------------------------------------------------------ scenario c2
scenario_c2() {
	local img=$W/sc2.img
	mkvol "$img" -N 2 --fs-features=mmp --mmp-update-interval=5
	cl_start one "$img" --mmp --mount --hb-dead 7
	# What mount.ocfs2 + ocfs2_hb_ctl do at umount: unmount, then stop the heartbeat region.
	cl_send 1 'kp_umount && kp_cluster_down'
	rec "node 1: umount + heartbeat stop: rc=$RC in ${DT}s"
	[ $RC = 0 ] || fail "node 1 could not unmount: $SENT"
	show_slots "$img" "node 1 unmounted"
	[ "$STATES" = "cluster empty" ] || fail "slots after node 1's clean umount: $SLOTS"
	st one "$img" --hb-window 10
	[ $ST_RC = 1 ] || fail "mmp status exited $ST_RC with node 0 mounted, expected 1"
	jis 'd["verdict"]["kind"]' heartbeating
	jis 'd["mounted_nodes"]' '[0]'
	jis 'd["verdict"]["slots"]' '[0]'
	jis 'd["stale_slots"]' '[]'
	cl_stop
	show_slots "$img" "both unmounted"
	[ "$STATES" = "empty empty" ] || fail "slots after both unmounted: $SLOTS"
	st none "$img"
	[ $ST_RC = 0 ] || fail "mmp status exited $ST_RC after both unmounted, expected 0"
	jis 'd["verdict"]["kind"]' clean
}

# ------------------------------------------------------------ scenario c3
scenario_c3() {
	local img=$W/sc3.img
	mkvol "$img" -N 2 --fs-features=mmp --mmp-update-interval=5
	cl_start kill0 "$img" --mmp --mount --hb-dead 7
	cl_kill 0
	# The window stays shorter than the survivor's dead threshold (7 x 2 s)
	# so the slot map holds still while we watch.
	st dead0 "$img" --hb-window 6
	[ $ST_RC = 1 ] || fail "mmp status exited $ST_RC with node 1 still mounted, expected 1"
	jis 'd["verdict"]["kind"]' heartbeating
	jis 'd["verdict"]["nodes"]' '[1]'
	jis 'd["mounted_nodes"]' '[1]'
	jis 'd["silent_nodes"]' '[0]'
	jis 'd["stale_slots"]' '[0]'
	jget "$ST" 'd["recovery"]' | grep -q 'live node(s) 1 replay the journal of slot(s) 0' || fail "the recovery line does not name node 1 and slot 0: $(jget "$ST" 'd["recovery"]')"
	wait_slot0 "$img" 0x00000000 120 || fail "node 1 did not recover slot 0 within 120 s: $SLOTS"
	rec "node 1 recovered slot 0 $(since "$KILLED_AT")s after the power cut: $SLOTS"
	st recovered "$img" --hb-window 10
	[ $ST_RC = 1 ] || fail "mmp status exited $ST_RC after the recovery, expected 1 (node 1 mounted)"
	jis 'd["mounted_nodes"]' '[1]'
	jis 'd["stale_slots"]' '[]'
	jis '[s["state"] for s in d["slots"]]' '["empty", "cluster"]'
	cl_stop
}

# ------------------------------------------------------------ scenario c4
scenario_c4() {
	local img=$W/sc4.img
	mkvol "$img" -N 2 --fs-features=mmp --mmp-update-interval=5
	cl_start crash "$img" --mmp --mount
	cl_kill 0; cl_kill 1
	show_slots "$img" "both powered off"
	[ "$STATES" = "cluster cluster" ] || fail "slots after both nodes died: $SLOTS"
	st dead "$img"
	[ $ST_RC = 0 ] || fail "mmp status exited $ST_RC with both nodes dead, expected 0"
	jis 'd["verdict"]["kind"]' stale
	jis 'd["verdict"]["slots"]' '[0, 1]'
	jis 'd["silent_nodes"]' '[0, 1]'
	jis 'd["stale_slots"]' '[0, 1]'
	jis 'd["waited"]' 62 "the default window (31 x 2 s)"
	jis 'd["same_kind_rule"]["local_mount_allowed"]' False
	jis 'd["same_kind_rule"]["cluster_mount_allowed"]' True
	jget "$ST" 'd["same_kind_rule"]["explanation"]' | grep -q 'next mount must be clustered' || fail "the same-kind rule is not explained"
	jget "$ST" 'd["recovery"]' | grep -q 'next clustered mount replays' || fail "no recovery line: $(jget "$ST" 'd["recovery"]')"
	run fsck "$FSCK" -n --hb-window 10 "$img"
	rec "fsck -n: rc=$RC after ${DT}s: $(grep -a -c '' "$OUT") lines, last: $(tail -1 "$OUT")"
	[ $RC = 0 ] || [ $RC = 4 ] || fail "fsck.ocfs2-mmp -n exited $RC on a volume whose nodes all died, expected 0 or 4: $(tail -3 "$OUT")"
	grep -aq 'in use' "$OUT" && fail "fsck -n called the dead cluster in use"
	run clear "$TUNEFS" -y --clear-mmp --hb-window 10 "$img"
	rec "tunefs --clear-mmp: rc=$RC after ${DT}s: $(tail -1 "$OUT")"
	[ $RC = 1 ] || fail "tunefs --clear-mmp exited $RC; the dead nodes' journals are dirty, expected a refusal (1)"
	grep -aq 'journal:0000 is dirty' "$OUT" || fail "--clear-mmp's refusal does not name the dirty journal"
	show_slots "$img" "after the refused --clear-mmp"
	[ "$STATES" = "cluster cluster" ] || fail "--clear-mmp changed the slots: $SLOTS"
	# What the status said the next mount must be: clustered. Node 0 mounts,
	# replays both journals and frees slot 1.
	cl_start back "$img" --mmp
	cl_send 0 kp_mount_cluster
	rec "node 0 mounts clustered again: rc=$RC in ${DT}s"
	[ $RC = 0 ] || fail "the clustered mount after the crash failed: $SENT"
	cl_send 0 'dmesg | grep -a -i -E "replay journal|recover" | grep -v "ERROR: seq" | tail -4'
	rec "node 0's kernel: $(tr -d '\r' <<<"$SENT" | grep -a -i -E 'replay|recover' | sed 's/^.*ocfs2: //' | tr '\n' ';')"
	show_slots "$img" "node 0 remounted"
	st back "$img" --hb-window 6
	[ $ST_RC = 1 ] || fail "mmp status exited $ST_RC with node 0 mounted again, expected 1"
	jis 'd["mounted_nodes"]' '[0]'
	jis 'd["stale_slots"]' '[]'
	jis '[s["state"] for s in d["slots"]]' '["cluster", "empty"]'
	cl_stop
	show_slots "$img" "after the clean stop"
	[ "$STATES" = "empty empty" ] || fail "slots after the clean stop: $SLOTS"
}

# ------------------------------------------------------------ scenario c5
scenario_c5() {
	local img=$W/sc5.img
	mkvol "$img" -N 2
	cl_start mixed "$img" --modes stock,mmp
	cl_send 0 kp_mount_cluster
	rec "node 0 (stock ocfs2.ko): mount rc=$RC in ${DT}s"
	[ $RC = 0 ] || fail "the stock node could not mount: $SENT"
	show_slots "$img" "stock node 0 mounted"
	[ "$RAWS" = "0x00000001 0x00000000" ] || fail "the stock kernel's slot map: $SLOTS (expected 1 in slot 0)"
	# Before node 1 (patched) mounts nocluster, which the kernel would let in.
	st mixed "$img"
	[ $ST_RC = 1 ] || fail "mmp status exited $ST_RC on a volume a stock node has mounted, expected 1"
	jis 'd["mmp"]' False
	jis 'd["verdict"]["kind"]' heartbeating
	jis 'd["mounted_nodes"]' '[0]'
	jis 'd["verdict"]["slots"]' '[0]'
	jget "$ST" 'd["verdict"]["nodes"]' | grep -q '0' || fail "the verdict does not name node 0"
	cl_stop
}

# ------------------------------------------------------------ scenario r
# race_once ORDER (tool-first | mount-first): the guest's kernel mounts and
# fsck -y starts at the same instant (within the control channel's latency,
# ORDER saying which command leaves first): exactly one gets the volume, and
# the other says why.
race_once() {
	local order=$1 img=$W/sr-$1.img t p rc mrc a b won
	mkvol "$img" -M local --fs-features=mmp --mmp-update-interval=5
	# The hook appends: a file left by an earlier run (r before r@loop) would
	# read as this fsck's hold.
	rm -f "$W/sr-$order.hold"
	vm_bg "$order" "$img" "$HERE/guest/serve.sh" --mmp
	t=$(now)
	if [ "$order" = tool-first ]; then
		OCFS2_MMP_HOLD_HOOK=$W/sr-$order.hold:20 "$FSCK" -y "$img" > "$W/sr-$order-fsck.out" 2>&1 & p=$!
		BGPIDS+=("$p")
		vm_send 'kp_mount; echo mount-rc=$?'
	else
		( KPEER_SEND_TIMEOUT=120 "$VM" send "$RD" 'kp_mount; echo mount-rc=$?' > "$W/sr-$order-mount.out" 2>&1 ) & a=$!
		sleep 0.2
		OCFS2_MMP_HOLD_HOOK=$W/sr-$order.hold:20 "$FSCK" -y "$img" > "$W/sr-$order-fsck.out" 2>&1 & p=$!
		BGPIDS+=("$p")
		wait "$a"; SENT=$(cat "$W/sr-$order-mount.out")
	fi
	mrc=$(printf '%s\n' "$SENT" | sed -n 's/.*mount-rc=\([0-9]*\).*/\1/p' | tail -1)
	rec "$order: guest mount rc=${mrc:-?} after $(since "$t")s"
	wait "$p"; rc=$?
	rec "$order: fsck -y rc=$rc after $(since "$t")s: $(tail -1 "$W/sr-$order-fsck.out")"
	[ -n "$mrc" ] || fail "$order: no mount result from the guest: $SENT"
	won=0
	[ "$mrc" = 0 ] && won=$((won + 1))
	[ "$rc" = 0 ] && won=$((won + 1))
	[ $won = 1 ] || fail "$order: $won of the kernel and fsck got the volume (mount rc=$mrc, fsck rc=$rc)"
	if [ "$mrc" = 0 ]; then
		[ "$rc" = 8 ] || fail "$order: fsck lost the race but exited $rc, not 8"
		grep -aqE 'in use|racing|another node' "$W/sr-$order-fsck.out" ||
			fail "$order: fsck does not say why it refused: $(cat "$W/sr-$order-fsck.out")"
		[ ! -s "$W/sr-$order.hold" ] || fail "$order: fsck recorded a hold while the kernel had the volume: $(cat "$W/sr-$order.hold")"
		read_slots "$img"; a=$S0; sleep 6; read_slots "$img"; b=$S0
		rec "$order: the kernel won; kmmpd moves slot 0: $a -> $b"
		[ "$a" != "$b" ] || fail "$order: the mounted kernel does not move slot 0 ($a)"
	else
		grep -aq acquire "$W/sr-$order.hold" || fail "$order: fsck exited 0 without holding the volume"
		vm_send 'dmesg | grep -E "fsck is running|active on another node|clustered mount info" | tail -2'
		rec "$order: fsck won; the kernel said: $(printf '%s' "$SENT" | grep -aE 'fsck is running|active|clustered' | head -1)"
		printf '%s' "$SENT" | grep -aqE 'fsck is running|active on another node|clustered mount info' ||
			fail "$order: the kernel's refusal says nothing about MMP: $SENT"
		show_slots "$img" "$order: after fsck"
		[ "$S0" = 0x00000000 ] || fail "$order: fsck did not give slot 0 back: $SLOTS"
	fi
	vm_stop
	rec "$order: guest stopped rc=$RC"
}
scenario_j() {
	local img=$W/sj.img crashed=$W/sj-crashed.img theirs=$W/sj-theirs.img plain=$W/sj-ours-plain.img
	local base=$W/sj-crashed-plain.img codes sums sums2 bs replayed diff b ino allowed=" " bad
	local targets ntr nrep jsb jino notlogged=
	mkvol "$img" -M local --fs-features=mmp --mmp-update-interval=5
	vm_bg hold "$img" "$KPT/tests/mmp-hold.sh" --mmp
	vm_send 'mkdir /mnt/d && cd /mnt/d && i=0 && while [ $i -lt 40 ]; do head -c $((i * 5000 + 1)) /dev/urandom > f$i; i=$((i + 1)); done; sync; md5sum f*'
	rec "guest wrote 40 files in /mnt/d and synced (rc=$RC)"
	# Then files fsync'ed one by one: committed to the journal, most of
	# their metadata not yet written in place when the guest dies.
	vm_send 'mkdir /mnt/g && cd /mnt/g && i=0 && while [ $i -lt 30 ]; do head -c $((i * 3000 + 7)) /dev/urandom > g$i; sync g$i; i=$((i + 1)); done; mv /mnt/d/f1 /mnt/g/; sync /mnt/g/f1 /mnt/g; md5sum /mnt/d/f* /mnt/g/*'
	sums=$(printf '%s\n' "$SENT" | tr -d '\r' | grep -E '^[0-9a-f]{32}  /mnt/' | sort)
	rec "then 30 files in /mnt/g, each fsync'ed, and f1 moved there (rc=$RC): $(wc -l <<<"$sums") checksums"
	[ "$(wc -l <<<"$sums")" = 70 ] || fail "the guest did not list 70 checksums: $SENT"
	vm_send 'cd /mnt/d && i=0 && while [ $i -lt 20 ]; do echo late$i > late$i; i=$((i + 1)); done; echo more'
	rec "then 20 files never synced (rc=$RC)"
	"$VM" kill "$RD" > "$W/sj-kill.out" 2>&1 || fail "vm.sh kill failed: $(cat "$W/sj-kill.out")"
	rec "$(cat "$W/sj-kill.out")"
	cp --sparse=always "$img" "$crashed"
	# What the log holds, before anything replays it.
	run logdump "$DEBUGFS" --json -R "logdump 0" "$crashed"
	[ $RC = 0 ] || fail "debugfs-mmp logdump 0 on the crashed volume: rc=$RC: $(cat "$OUT")"
	targets=" $($H get '" ".join(str(r["target"]) for r in d["replay"])' < "$OUT") "
	ntr=$($H get 'len(d["transactions"])' < "$OUT")
	nrep=$($H get 'len(d["replay"])' < "$OUT")
	rec "debugfs-mmp logdump 0 after the crash: dirty $($H get 'd["dirty"]' < "$OUT"), $ntr committed transaction(s), a replay writes $nrep block(s)"
	[ "$ntr" -gt 0 ] && [ "$nrep" -gt 0 ] || fail "logdump shows nothing to replay on the crashed volume: $(cat "$OUT")"
	run fsckn "$FSCK" -n --json "$img"
	codes=$($H get '" ".join(f["code"] for f in d["findings"])' < "$OUT")
	rec "fsck -n after the crash: rc=$RC after ${DT}s; findings: ${codes:-none}"
	rec "$($H get '[f["message"] for f in d["findings"]][0]' < "$OUT")"
	[ $RC = 4 ] && [ "$codes" = JOURNAL_NEEDS_RECOVERY ] || fail "fsck -n on the crashed volume: rc=$RC, findings '$codes' (want 4, JOURNAL_NEEDS_RECOVERY alone)"
	cmp -s "$img" "$crashed" || fail "fsck -n changed the image"
	run fscky "$FSCK" -y --json "$img"
	codes=$($H get '" ".join(f["code"] + ("+fixed" if f["fixed"] else "") for f in d["findings"])' < "$OUT")
	rec "fsck -y: rc=$RC after ${DT}s; findings: ${codes:-none}"
	[ $RC = 1 ] && [ "$codes" = JOURNAL_NEEDS_RECOVERY+fixed ] || fail "fsck -y: rc=$RC, findings '$codes' (want 1, JOURNAL_NEEDS_RECOVERY fixed): $(cat "$OUT")"
	grep -aq "$ntr committed transaction(s), $nrep block(s) replayed" "$OUT" ||
		fail "fsck -y did not replay what logdump showed ($ntr transaction(s), $nrep block(s)): $(cat "$OUT")"
	run fsckn2 "$FSCK" -n "$img"
	rec "fsck -n after the replay: rc=$RC: $(tail -1 "$OUT")"
	[ $RC = 0 ] || fail "fsck -n after our replay exited $RC: $(cat "$OUT")"
	show_slots "$img" "after the replay"
	[ "$S0" = 0x00000000 ] || fail "slot 0 is not 0 after the replay: $SLOTS"
	oracle_clean "$img" "$plain" "our replayed volume"
	cp --sparse=always "$crashed" "$base"
	run dis2 "$TUNEFS" -y --disable-mmp "$base"
	[ $RC = 0 ] || fail "tunefs --disable-mmp on the crashed copy: rc=$RC: $(cat "$OUT")"
	"$DEBUGFS" --json -R "logdump 0" "$crashed" > "$W/sj-logdump.json"
	debugfs.ocfs2 -R "logdump 0" "$base" > "$W/sj-logdump-theirs.txt" 2>&1
	b=$($H logdumpcmp "$W/sj-logdump.json" "$W/sj-logdump-theirs.txt") || fail "logdump 0 against debugfs.ocfs2's: $b"
	rec "debugfs-mmp logdump 0 against debugfs.ocfs2's on the crashed copy: $b"
	cp --sparse=always "$base" "$theirs"
	run ofy fsck.ocfs2 -fy "$theirs"
	rec "fsck.ocfs2 -fy on the crashed copy: rc=$RC in ${DT}s: $(grep -a "journal replayed" "$OUT" | head -2 | tr '\n' ' ')"
	grep -aq "journal replayed successfully" "$OUT" || fail "fsck.ocfs2 -fy did not replay the crashed copy: $(cat "$OUT")"
	# fsck.ocfs2 1.8.7 stops right after the replay on this volume (exit 8,
	# "Unable to access cluster service"): the blocks it changed are the
	# replayed ones and the journal superblock. Each must be identical in our
	# result, except the blocks our slot recovery rewrote after the replay
	# (the journal, local alloc and global bitmap inodes and its group
	# descriptors), which fsck.ocfs2 never reached, and the slot map.
	bs=$("$DEBUGFS" --json -R stats "$crashed" | $H get 'd["block_size"]')
	replayed=$($H diffblocks "$base" "$theirs" "$bs")
	# Each block fsck.ocfs2's replay changed is one logdump listed, but for
	# the journal's own superblock and inode.
	jsb=$("$DEBUGFS" --json -R "stat //journal:0000" "$crashed" | $H get 'd["jbd2"]["blkno"]')
	jino=$("$DEBUGFS" --json -R "stat //journal:0000" "$crashed" | $H get 'd["inode"]')
	for b in $replayed; do
		case "$targets" in *" ${b%%:*} "*) continue ;; esac
		[ "${b%%:*}" = "$jsb" ] || [ "${b%%:*}" = "$jino" ] || notlogged="$notlogged $b"
	done
	rec "blocks fsck.ocfs2's replay changed that logdump did not list: ${notlogged:-none} (of $(wc -w <<<"$replayed"))"
	[ -z "$notlogged" ] || fail "fsck.ocfs2's replay changed blocks logdump 0 did not list:$notlogged"
	for ino in //journal:0000 //local_alloc:0000 //global_bitmap //truncate_log:0000; do
		allowed="$allowed$("$DEBUGFS" --json -R "stat $ino" "$img" | $H get 'd["inode"]') "
	done
	allowed="$allowed$("$DEBUGFS" --json -R "stat //slot_map" "$img" | $H get '" ".join(str(e["blkno"]) for e in d["extents"])') "
	diff=$($H diffblocks "$plain" "$theirs" "$bs")
	bad=
	for b in $diff; do
		case " $replayed " in *" ${b%%:*}:"*) ;; *) continue ;; esac
		case "$allowed" in *" ${b%%:*} "*) continue ;; esac
		[ "${b#*:}" = GROUP01 ] && continue
		bad="$bad $b"
	done
	rec "blocks fsck.ocfs2's replay changed: $(wc -w <<<"$replayed"); of them different in our result: ${bad:-none} (allowed: slot recovery's blocks$allowed)"
	[ "$(wc -w <<<"$replayed")" -gt 1 ] || fail "fsck.ocfs2's replay changed $(wc -w <<<"$replayed") block(s): the crash left nothing to replay in place, the comparison proves nothing"
	[ -z "$bad" ] || fail "replayed blocks differ between our replay and fsck.ocfs2's:$bad"
	vm_bg check "$img" "$KPT/tests/mmp-hold.sh" --mmp
	rec "the guest mounts our result: $(guest_mount_line "$GLOG" | tr -d '\r')"
	vm_send 'md5sum /mnt/d/f* /mnt/g/*'
	sums2=$(printf '%s\n' "$SENT" | tr -d '\r' | grep -E '^[0-9a-f]{32}  /mnt/' | sort)
	[ "$sums" = "$sums2" ] || fail "files synced before the kill read back differently: $(diff <(echo "$sums") <(echo "$sums2") | head -5)"
	rec "all 70 files synced before the kill read back identical"
	vm_stop
	rec "guest unmounted: rc=$RC"
	[ $RC = 0 ] || fail "the guest failed on our replayed volume (rc=$RC)"
	if grep -aq 'not unmounted cleanly' "$KLOG"; then fail "the kernel recovered the journal again: $(grep -a 'not unmounted cleanly' "$KLOG")"; fi
	[ -z "$(kernel_errors "$KLOG")" ] || fail "kernel errors: $(kernel_errors "$KLOG")"
	run fsckn3 "$FSCK" -n "$img"
	[ $RC = 0 ] || fail "fsck -n after the guest's clean unmount exited $RC: $(cat "$OUT")"
	rm -f "$crashed" "$theirs" "$plain" "$base"
}

guest_files() {  # guest_files N: the guest of $RD writes /mnt/d/f0..f(N-1) of growing sizes and syncs; SUMS = their md5sums, sorted
	vm_send "mkdir /mnt/d && (cd /mnt/d && i=0 && while [ \$i -lt $1 ]; do head -c \$((i * 9000 + 5)) /dev/urandom > f\$i; i=\$((i + 1)); done); sync; md5sum /mnt/d/f*"
	SUMS=$(printf '%s\n' "$SENT" | tr -d '\r' | grep -E '^[0-9a-f]{32}  /mnt/' | sort)
	[ "$(wc -l <<<"$SUMS")" = "$1" ] || fail "the guest did not list $1 checksums: $SENT"
}

scenario_f() {
	local img=$W/sf.img plain=$W/sf-plain.img sums sums2 bs ino codes want got pre_sum n
	mkvol "$img" -M local --fs-features=mmp --mmp-update-interval=5
	vm_bg write "$img" "$KPT/tests/mmp-hold.sh" --mmp
	guest_files 12; sums=$SUMS
	# For tunefs nounwritten: 3 MiB preallocated (unwritten), 64 KiB of it
	# written in the middle.
	vm_send 'fallocate -l 3M /mnt/d/pre && dd if=/dev/urandom of=/mnt/d/pre bs=4096 count=16 seek=100 conv=notrunc 2>/dev/null && sync && md5sum /mnt/d/pre'
	pre_sum=$(printf '%s\n' "$SENT" | tr -d '\r' | grep -E '^[0-9a-f]{32}  /mnt/d/pre' | cut -c1-32)
	[ -n "$pre_sum" ] || fail "the guest did not preallocate /mnt/d/pre: $SENT"
	vm_stop
	rec "guest wrote 12 files in /mnt/d and unmounted: rc=$RC"
	[ $RC = 0 ] || fail "the writing guest failed (rc=$RC)"
	bs=$("$DEBUGFS" --json -R stats "$img" | $H get 'd["block_size"]')
	ino() { "$DEBUGFS" --json -R "stat $1" "$img" | $H get 'd["inode"]'; }
	# Damage that leaves the files' data where it is (offsets in struct
	# ocfs2_dinode; the volume has no metaecc, so no block check to redo).
	$H poke "$img" $(( $(ino /d/f3) * bs + 0x48 )) 8 100                      # i_dtime
	$H poke "$img" $(( $(ino /d/f5) * bs + 0x14 )) 4 \
		$(( $($H peek "$img" $(( $(ino /d/f5) * bs + 0x14 )) 4) + 3 ))       # i_clusters
	$H poke "$img" $(( $(ino /d/f7) * bs + 0x2A )) 2 5                        # i_links_count
	$H poke "$img" $(( $(ino /d/f9) * bs + 0x50 )) 8 $(( $(ino /d/f9) + 1 ))  # i_blkno
	gb=$(ino //global_bitmap)
	$H poke "$img" $(( gb * bs + 0xC0 + 16 )) 4 \
		$(( $($H peek "$img" $(( gb * bs + 0xC0 + 16 )) 4) - 1 ))            # chain 0's c_free
	rec "damaged: dtime of f3, i_clusters of f5, link count of f7, i_blkno of f9, c_free of the global bitmap's chain 0"
	want="CHAIN_BITS INODE_BLKNO INODE_CLUSTERS INODE_COUNT INODE_NZ_DTIME"
	run fsckn "$FSCK" -n --json "$img"
	got=$($H get '" ".join(sorted(set(f["code"] for f in d["findings"])))' < "$OUT")
	rec "fsck -n: rc=$RC; codes: $got"
	[ $RC = 4 ] && [ "$got" = "$want" ] || fail "fsck -n on the damaged volume: rc=$RC, codes '$got' (want 4, '$want'): $(cat "$OUT")"
	run fscky "$FSCK" -y --json "$img"
	codes=$($H get '" ".join(f["code"] + ("+fixed" if f["fixed"] else "") for f in d["findings"])' < "$OUT")
	rec "fsck -y: rc=$RC after ${DT}s; findings: $codes"
	[ $RC = 1 ] || fail "fsck -y: rc=$RC (want 1): $(cat "$OUT")"
	run fsckn2 "$FSCK" -n "$img"
	[ $RC = 0 ] || fail "fsck -n after the repairs exited $RC: $(cat "$OUT")"
	oracle_clean "$img" "$plain" "our repaired volume"
	# Unwritten extents off: zeroed, marked written, then the feature bit.
	n=$("$DEBUGFS" --json -R "stat /d/pre" "$img" | $H get 'sum(1 for e in d["extents"] if e["flags"] & 1)')
	[ "$n" -gt 0 ] || fail "the guest's fallocate left no unwritten extent in /d/pre"
	run nounw "$TUNEFS" -y --fs-features=nounwritten "$img"
	[ $RC = 0 ] || fail "tunefs --fs-features=nounwritten: rc=$RC: $(cat "$OUT")"
	got=$("$DEBUGFS" --json -R "stat /d/pre" "$img" | $H get 'sum(1 for e in d["extents"] if e["flags"] & 1)')
	rec "tunefs nounwritten under the MMP guard: rc=$RC in ${DT}s; unwritten extents of /d/pre: $n -> $got; ro-compat features: '$("$TUNEFS" -Q '%O' "$img")'"
	[ "$got" = 0 ] || fail "after nounwritten /d/pre still has $got unwritten extent(s)"
	"$TUNEFS" -Q '%O' "$img" | grep -qw unwritten && fail "the unwritten feature is still on: $("$TUNEFS" -Q '%O' "$img")"
	run fsckn4 "$FSCK" -n "$img"
	[ $RC = 0 ] || fail "fsck -n after nounwritten exited $RC: $(cat "$OUT")"
	# Inline data off: /d/f0 (5 bytes), /d and the root move to clusters.
	run noinl "$TUNEFS" -y --fs-features=noinline-data "$img"
	[ $RC = 0 ] || fail "tunefs --fs-features=noinline-data: rc=$RC: $(cat "$OUT")"
	got=$(for p in / /d /d/f0; do "$DEBUGFS" --json -R "stat $p" "$img" | $H get '" ".join(d["dyn_features"]) or "-"'; done | tr '\n' ',')
	rec "tunefs noinline-data under the MMP guard: rc=$RC in ${DT}s; dynamic features of /, /d, /d/f0: $got; incompat: '$("$TUNEFS" -Q '%H' "$img")'"
	case "$got" in *InlineData*) fail "inline data left after noinline-data: $got" ;; esac
	"$TUNEFS" -Q '%H' "$img" | grep -qw inline-data && fail "the inline-data feature is still on"
	run fsckn5 "$FSCK" -n "$img"
	[ $RC = 0 ] || fail "fsck -n after noinline-data exited $RC: $(cat "$OUT")"
	oracle_clean "$img" "$plain" "the volume without unwritten extents and inline data"
	vm_bg check "$img" "$KPT/tests/mmp-hold.sh" --mmp
	rec "the guest mounts the repaired volume: $(guest_mount_line "$GLOG" | tr -d '\r')"
	vm_send 'md5sum /mnt/d/pre'
	printf '%s\n' "$SENT" | tr -d '\r' | grep -q "^$pre_sum  /mnt/d/pre" || fail "/d/pre reads back differently after nounwritten: $SENT (want $pre_sum)"
	rec "/d/pre reads back as the guest wrote it"
	vm_send 'md5sum /mnt/d/f*; echo new > /mnt/d/new && sync && cat /mnt/d/new'
	sums2=$(printf '%s\n' "$SENT" | tr -d '\r' | grep -E '^[0-9a-f]{32}  /mnt/' | sort)
	[ "$sums" = "$sums2" ] || fail "files read back differently after the repairs: $(diff <(echo "$sums") <(echo "$sums2") | head -5)"
	printf '%s\n' "$SENT" | tr -d '\r' | grep -qx new || fail "the guest could not write a new file: $SENT"
	rec "all 12 files read back identical; a new file written"
	vm_stop
	[ $RC = 0 ] || fail "the guest failed on the repaired volume (rc=$RC)"
	[ -z "$(kernel_errors "$KLOG")" ] || fail "kernel errors: $(kernel_errors "$KLOG")"
	run fsckn3 "$FSCK" -n "$img"
	[ $RC = 0 ] || fail "fsck -n after the guest's clean unmount exited $RC: $(cat "$OUT")"
	rm -f "$plain"
}

# t: tunefs on a volume mkfs.ocfs2 made with the old slot map. --enable-mmp
# rewrites the map in the extended format in the same run, with a new label
# and UUID and 16M journals (-J), then a third slot (-N 3), quotas on, then the
# volume grown to its 1.5 GiB image (-S); the seed's kernel mounts it with
# MMP, shows the new size in df,
# writes files; both checkers are clean; then slot 2 removed (-N 2), MMP
# off, the old map back,
# another label and 4M journals, and the stock kernel reads every file back.
# agree_with_theirs IMG PLAIN PATH...: debugfs-mmp on IMG and debugfs.ocfs2
# on PLAIN (the same volume, MMP off) give the same answers, request by
# request: cat, frag, findpath and ncheck of each path's inode, and icheck of
# its inode block and the ends of its extents (and a few fixed blocks).
agree_with_theirs() {
	local img=$1 plain=$2 p ino bs cs blocks="0 2 3 4 100" inodes= n=0 r
	shift 2
	bs=$("$DEBUGFS" --json -R stats "$img" | $H get 'd["block_size"]')
	cs=$("$DEBUGFS" --json -R stats "$img" | $H get 'd["cluster_size"]')
	for p in "$@"; do
		"$DEBUGFS" --json -R "stat $p" "$img" > "$W/agree.json" || fail "debugfs-mmp stat $p failed"
		ino=$($H get 'd["inode"]' < "$W/agree.json")
		inodes="$inodes <$ino>"
		blocks="$blocks $($H extblocks "$bs" "$cs" < "$W/agree.json")"
		for r in "frag $p" "findpath <$ino>"; do
			"$DEBUGFS" -R "$r" "$img" > "$W/agree-ours.out" 2>&1
			debugfs.ocfs2 -R "$r" "$plain" > "$W/agree-theirs.out" 2>&1
			cmp -s "$W/agree-ours.out" "$W/agree-theirs.out" ||
				fail "$r: debugfs-mmp says '$(cat "$W/agree-ours.out")', debugfs.ocfs2 '$(cat "$W/agree-theirs.out")'"
			n=$((n + 1))
		done
		if [ "$p" != /d ]; then
			[ "$("$DEBUGFS" -R "cat $p" "$img" | md5sum)" = "$(debugfs.ocfs2 -R "cat $p" "$plain" | md5sum)" ] ||
				fail "cat $p: the bytes differ from debugfs.ocfs2's"
			n=$((n + 1))
		fi
	done
	"$DEBUGFS" -R "ncheck$inodes" "$img" > "$W/agree-ours.out" 2>&1
	debugfs.ocfs2 -R "ncheck$inodes" "$plain" > "$W/agree-theirs.out" 2>&1
	cmp -s "$W/agree-ours.out" "$W/agree-theirs.out" ||
		fail "ncheck$inodes: $(diff "$W/agree-ours.out" "$W/agree-theirs.out" | head -5)"
	"$DEBUGFS" -R "icheck $blocks" "$img" > "$W/agree-ours.out" 2>&1 || fail "debugfs-mmp icheck $blocks: $(cat "$W/agree-ours.out")"
	debugfs.ocfs2 -R "icheck $blocks" "$plain" > "$W/agree-theirs.out" 2>&1
	r=$($H icheckcmp "$W/agree-ours.out" "$W/agree-theirs.out") || fail "icheck $blocks: $r"
	rec "debugfs-mmp agrees with debugfs.ocfs2 on $((n + 2)) requests (cat, frag, findpath of $#, ncheck, icheck): $r"
}

scenario_t() {
	local img=$W/st.img plain=$W/st-plain.img sums sums2 q kb got sparse_sum uuid=0123456789ABCDEF0123456789ABCDEF
	rm -f "$img"; truncate -s 1G "$img"
	run mkfs-theirs mkfs.ocfs2 -q -F -M local -N 2 --fs-feature-level=max-compat -L before "$img"
	[ $RC = 0 ] || fail "mkfs.ocfs2 --fs-feature-level=max-compat failed (rc=$RC): $(cat "$OUT")"
	rec "made $(basename "$img") with mkfs.ocfs2 -M local -N 2 --fs-feature-level=max-compat (old slot map)"
	run tune1 "$TUNEFS" -y --enable-mmp --mmp-update-interval=5 -L tuned --uuid-reset=$uuid -J size=16M "$img"
	[ $RC = 0 ] || fail "tunefs --enable-mmp -L -U -J on the old slot map: rc=$RC: $(cat "$OUT")"
	grep -aq 'journal:0001: .* -> 16777216 bytes.*: done' "$OUT" || fail "tunefs -J size=16M did not resize journal:0001: $(cat "$OUT")"
	run tune1n "$TUNEFS" -y -N 3 "$img"
	[ $RC = 0 ] || fail "tunefs -N 3 under MMP: rc=$RC: $(cat "$OUT")"
	q=$("$TUNEFS" -Q '%N' "$img")
	rec "tunefs -N 3 under the MMP guard: rc=$RC in ${DT}s, -Q %N says '$q'"
	[ "$q" = 3 ] || fail "after tunefs -N 3: -Q %N says '$q'"
	run tune1q "$TUNEFS" -y --fs-features=usrquota,grpquota "$img"
	[ $RC = 0 ] || fail "tunefs --fs-features=usrquota,grpquota under MMP: rc=$RC: $(cat "$OUT")"
	rec "tunefs turned user and group quotas on under the MMP guard: rc=$RC in ${DT}s"
	q=$("$TUNEFS" -Q '%A %S %V %U' "$img")
	rec "tunefs --enable-mmp -L tuned -U: -Q says '$q'"
	[ "$q" = "enabled extended tuned $uuid" ] || fail "after tunefs: -Q says '$q'"
	truncate -s 1536M "$img"
	run tune1s "$TUNEFS" -y -S "$img"
	[ $RC = 0 ] || fail "tunefs -S to the grown image under MMP: rc=$RC: $(cat "$OUT")"
	rec "tunefs -S under the MMP guard: rc=$RC in ${DT}s: $(grep -a 'grow the volume' "$OUT")"
	vm_bg write "$img" "$KPT/tests/mmp-hold.sh" --mmp
	vm_send 'df -k /mnt | tail -1'
	kb=$(printf '%s\n' "$SENT" | tr -d '\r' | awk '$NF == "/mnt" {print $2}' | tail -1)
	rec "the seed's kernel's df after -S: ${kb:-?} KiB"
	[ -n "$kb" ] && [ "$kb" -gt 1400000 ] && [ "$kb" -le 1572864 ] || fail "df in the guest after -S to 1.5 GiB says '${kb:-nothing}' KiB: $SENT"
	guest_files 8; sums=$SUMS
	# For rdump: a sparse file, a symbolic link, a second name.
	# 400 more names, for the index indexed-dirs builds below (leaf clusters).
	vm_send "truncate -s 10M /mnt/d/sparse && echo tail >> /mnt/d/sparse && ln -s f1 /mnt/d/link && ln /mnt/d/f2 /mnt/d/hard && i=0 && while [ \$i -lt 400 ]; do : > /mnt/d/n\$i; i=\$((i + 1)); done && sync && md5sum /mnt/d/sparse"
	sparse_sum=$(printf '%s\n' "$SENT" | tr -d '\r' | grep -E '^[0-9a-f]{32}  /mnt/d/sparse' | cut -c1-32)
	vm_stop
	rec "the seed's kernel mounted the tuned volume with MMP, wrote 8 files, a sparse file, a link and a second name, unmounted: rc=$RC"
	[ $RC = 0 ] || fail "the writing guest failed (rc=$RC)"
	[ -n "$sparse_sum" ] || fail "the guest did not checksum its sparse file: $SENT"
	[ -z "$(kernel_errors "$KLOG")" ] || fail "kernel errors: $(kernel_errors "$KLOG")"
	run fsckn "$FSCK" -n "$img"
	[ $RC = 0 ] || fail "fsck -n after the guest exited $RC: $(cat "$OUT")"
	rm -rf "$W/rd"; mkdir -p "$W/rd"
	run rdump "$DEBUGFS" -R "rdump /d $W/rd" "$img"
	[ $RC = 0 ] || fail "debugfs-mmp rdump /d: rc=$RC: $(cat "$OUT")"
	got=$(cd "$W/rd" && md5sum d/f* | sed 's|  d/|  /mnt/d/|' | sort)
	[ "$got" = "$sums" ] || fail "rdump's copies differ from the guest's checksums: $(diff <(echo "$sums") <(echo "$got") | head -5)"
	[ "$(md5sum < "$W/rd/d/sparse" | cut -c1-32)" = "$sparse_sum" ] || fail "rdump's sparse copy differs from the guest's"
	kb=$(du -k "$W/rd/d/sparse" | cut -f1)
	[ "$kb" -lt 1024 ] || fail "rdump's copy of a 10 MiB sparse file takes $kb KiB: its hole was filled"
	[ "$(readlink "$W/rd/d/link")" = f1 ] || fail "rdump's symbolic link reads '$(readlink "$W/rd/d/link")'"
	[ "$(stat -c %i "$W/rd/d/f2")" = "$(stat -c %i "$W/rd/d/hard")" ] || fail "rdump copied a second name as a second file"
	rec "debugfs-mmp rdump /d: the guest's checksums, the sparse file's hole kept (${kb} KiB on disk), the link and the second name kept"
	oracle_clean "$img" "$plain" "the tuned volume"
	agree_with_theirs "$img" "$plain" /d /d/f1 /d/f2 /d/f7 /d/sparse /d/hard
	# Indexes for every directory (the system one too, whose entries -N 2
	# then removes), under the MMP guard.
	run tune1x "$TUNEFS" -y --fs-features=indexed-dirs "$img"
	[ $RC = 0 ] || fail "tunefs --fs-features=indexed-dirs under MMP: rc=$RC: $(cat "$OUT")"
	got=$(for p in / /d //; do "$DEBUGFS" --json -R "stat $p" "$img" | $H get '" ".join(d["dyn_features"]) or "-"'; done | tr '\n' ',')
	rec "tunefs indexed-dirs under the MMP guard: rc=$RC in ${DT}s; dynamic features of /, /d, //: $got"
	[ "$got" = "IndexedDir,IndexedDir,IndexedDir," ] || fail "after indexed-dirs: dynamic features of /, /d, //: $got"
	run fsckn1x "$FSCK" -fn "$img"
	[ $RC = 0 ] || fail "fsck -n after indexed-dirs exited $RC: $(cat "$OUT")"
	oracle_clean "$img" "$plain" "the indexed volume"
	run tune1r "$TUNEFS" -y -N 2 "$img"
	[ $RC = 0 ] || fail "tunefs -N 2 (slot 2 removed) under MMP: rc=$RC: $(cat "$OUT")"
	q=$("$TUNEFS" -Q '%N' "$img")
	rec "tunefs -N 2 under the MMP guard removed slot 2: rc=$RC in ${DT}s, -Q %N says '$q'"
	[ "$q" = 2 ] || fail "after tunefs -N 2: -Q %N says '$q'"
	run tune2 "$TUNEFS" -y --disable-mmp "$img"
	[ $RC = 0 ] || fail "tunefs --disable-mmp: rc=$RC: $(cat "$OUT")"
	run tune3 "$TUNEFS" -y --fs-features=noextended-slotmap -L back -J size=4M "$img"
	[ $RC = 0 ] || fail "tunefs --fs-features=noextended-slotmap -L back -J size=4M: rc=$RC: $(cat "$OUT")"
	grep -aq 'journal:0001: 16777216 -> 4194304 bytes.*: done' "$OUT" || fail "tunefs -J size=4M did not shrink journal:0001: $(cat "$OUT")"
	q=$("$TUNEFS" -Q '%A %S %V' "$img")
	rec "tunefs --disable-mmp, then noextended-slotmap -L back: -Q says '$q'"
	[ "$q" = "disabled old back" ] || fail "after tunefs: -Q says '$q'"
	oracle_clean "$img" "$plain" "the volume back on the old slot map"
	vm_bg read "$img" "$KPT/tests/mmp-hold.sh" --stock
	vm_send 'md5sum /mnt/d/f*'
	sums2=$(printf '%s\n' "$SENT" | tr -d '\r' | grep -E '^[0-9a-f]{32}  /mnt/' | sort)
	# Every name through the index, then 300 more and 100 fewer.
	vm_send 'm=0; i=0; while [ $i -lt 400 ]; do [ -e /mnt/d/n$i ] || m=$((m + 1)); i=$((i + 1)); done; i=400; while [ $i -lt 700 ]; do : > /mnt/d/n$i || m=$((m + 1000)); i=$((i + 1)); done; i=0; while [ $i -lt 100 ]; do rm /mnt/d/n$i || m=$((m + 1000)); i=$((i + 1)); done; sync; echo "MISSED $m NAMES $(ls /mnt/d | grep -c "^n")"'
	got=$(printf '%s\n' "$SENT" | tr -d '\r' | grep -a '^MISSED ')
	rec "the stock kernel through our index: $got"
	[ "$got" = "MISSED 0 NAMES 600" ] || fail "the stock kernel's lookups and changes through the index: ${got:-nothing}: $SENT"
	vm_stop
	[ "$sums" = "$sums2" ] || fail "files read back differently by the stock kernel: $(diff <(echo "$sums") <(echo "$sums2") | head -5)"
	[ $RC = 0 ] || fail "the stock kernel's guest failed (rc=$RC)"
	rec "the stock kernel read all 8 files back identical on the old slot map"
	run fsckn2 "$FSCK" -n "$img"
	[ $RC = 0 ] || fail "fsck -n at the end exited $RC: $(cat "$OUT")"
	oracle_clean "$img" "$plain" "the volume the stock kernel changed through the index"
	rm -f "$plain"
}

scenario_r() {
	race_once tool-first
	race_once mount-first
}

# x: extended attributes written by the kernel (see the header).
XPATHS="d d/small d/block d/many d/big d/bigmany"
scenario_x() {
	local img=$W/sx.img plain=$W/sx-plain.img want got codes bs ino at h gone
	mkvol "$img" -M local --fs-features=mmp --mmp-update-interval=5
	"$HERE/guest/with-xattrs.sh" "$HERE/guest/xattrs-write.sh" "$W/sx-write.sh" \
		|| fail "cannot build the guest's xattrs helper (cc -static, tests/interop/guest/xattrs.c)"
	"$HERE/guest/with-xattrs.sh" "$KPT/tests/mmp-hold.sh" "$W/sx-hold.sh" \
		|| fail "cannot build the guest's xattrs helper"
	vm_fg write "$img" "$W/sx-write.sh" --mmp
	rec "the guest set the attributes and unmounted: rc=$RC in ${DT}s"
	[ $RC = 0 ] || fail "the writing guest failed (rc=$RC): $(tail -15 "$GLOG")"
	want=$(tr -d '\r' < "$GLOG" | grep -a '^XSUM ' | sort)
	[ "$(wc -l <<<"$want")" = 382 ] || fail "the guest listed $(wc -l <<<"$want") attributes (want 382)"
	got=$(for p in $XPATHS; do "$DEBUGFS" --json -R "xattr /$p" "$img" | $H xsums "$p"; done | sort)
	[ "$got" = "$want" ] || fail "debugfs-mmp reads the attributes differently: $(diff <(echo "$want") <(echo "$got") | head -5)"
	rec "debugfs-mmp xattr reads all 382 values back as the guest summed them"
	run fsckn "$FSCK" -fn "$img"
	[ $RC = 0 ] || fail "fsck -fn on the kernel's attributes exited $RC: $(cat "$OUT")"
	oracle_clean "$img" "$plain" "the kernel's attributes"
	# Damage in the inodes' inline areas (no metaecc: no check to redo):
	# d/small's second entry gets a wrong name hash; d/block's first value
	# (beside its name) is said to be 200 bytes long, so the entry goes.
	bs=$("$DEBUGFS" --json -R stats "$img" | $H get 'd["block_size"]')
	ino=$("$DEBUGFS" --json -R "stat /d/small" "$img" | $H get 'd["inode"]')
	at=$(( ino * bs + bs - $("$DEBUGFS" --json -R "stat /d/small" "$img" | $H get 'd["xattr_inline_size"]') + 16 + 16 ))
	h=$($H peek "$img" "$at" 4)
	$H poke "$img" "$at" 4 $(( h ^ 0x5a5a ))
	gone=$("$DEBUGFS" --json -R "xattr /d/block" "$img" | $H get 'd["attributes"][0]["name"]')
	ino=$("$DEBUGFS" --json -R "stat /d/block" "$img" | $H get 'd["inode"]')
	at=$(( ino * bs + bs - $("$DEBUGFS" --json -R "stat /d/block" "$img" | $H get 'd["xattr_inline_size"]') + 16 + 8 ))
	$H poke "$img" "$at" 8 200
	rec "damaged: the name hash of d/small's second attribute, the value size of d/block's $gone"
	run fsckn2 "$FSCK" -fn --json "$img"
	codes=$($H get '" ".join(sorted(set(f["code"] for f in d["findings"])))' < "$OUT")
	rec "fsck -n: rc=$RC; codes: $codes"
	[ $RC = 4 ] && [ "$codes" = "XATTR_HASH_INVALID XATTR_LOCATION_INVALID" ] \
		|| fail "fsck -n on the damaged attributes: rc=$RC, codes '$codes': $(cat "$OUT")"
	run fscky "$FSCK" -fy "$img"
	[ $RC = 1 ] || fail "fsck -y: rc=$RC (want 1): $(cat "$OUT")"
	run fsckn3 "$FSCK" -fn "$img"
	[ $RC = 0 ] || fail "fsck -n after the repairs exited $RC: $(cat "$OUT")"
	oracle_clean "$img" "$plain" "the repaired attributes"
	want=$(grep -v "^XSUM d/block $gone " <<<"$want")
	[ "$(wc -l <<<"$want")" = 381 ] || fail "$gone is not among the guest's sums"
	got=$(for p in $XPATHS; do "$DEBUGFS" --json -R "xattr /$p" "$img" | $H xsums "$p"; done | sort)
	[ "$got" = "$want" ] || fail "after the repairs debugfs-mmp reads: $(diff <(echo "$want") <(echo "$got") | head -5)"
	rec "fsck -y: rc=1; both checkers clean; the 381 attributes kept read back unchanged"
	vm_bg check "$img" "$W/sx-hold.sh" --mmp
	rec "the guest mounts the repaired volume: $(guest_mount_line "$GLOG" | tr -d '\r')"
	got=
	for p in $XPATHS; do
		vm_send "/tmp/xattrs sum /mnt/$p"
		[ $RC = 0 ] || fail "the guest cannot list the attributes of /$p: $SENT"
		got+=$(printf '%s\n' "$SENT" | tr -d '\r' | grep -a '^user\.' | sed "s|^|XSUM $p |")$'\n'
	done
	got=$(printf '%s' "$got" | grep . | sort)
	[ "$got" = "$want" ] || fail "the kernel reads the repaired attributes differently: $(diff <(echo "$want") <(echo "$got") | head -5)"
	rec "the kernel reads all 381 attributes back identical"
	vm_stop
	[ $RC = 0 ] || fail "the guest failed on the repaired volume (rc=$RC)"
	[ -z "$(kernel_errors "$KLOG")" ] || fail "kernel errors: $(kernel_errors "$KLOG")"
	run fsckn4 "$FSCK" -fn "$img"
	[ $RC = 0 ] || fail "fsck -n after the guest's clean unmount exited $RC: $(cat "$OUT")"
	rm -f "$plain"
}

# ------------------------------------------------------------ main
declare -A RESULT DUR
for s in $SCEN; do
	say "scenario $s"
	ts=$(date +%s.%N)
	(
		SC=$s T0=$(date +%s.%N) RECORD=$W/s$s.record
		: > "$RECORD"
		trap 'cleanup; "$HERE/via-loop.sh" --cleanup' EXIT
		trap 'exit 130' INT TERM
		if [ "${s%@loop}" != "$s" ]; then
			MKFS=$BL/mkfs-ocfs2-mmp TUNEFS=$BL/tunefs-ocfs2-mmp DEBUGFS=$BL/debugfs-mmp FSCK=$BL/fsck-ocfs2-mmp
			rec "host tools on loop devices over the guest's images (via-loop.sh)"
		fi
		"scenario_${s%@loop}"
		rec "PASS"
	) 2>&1 | tee "$W/s$s.log"
	rc=${PIPESTATUS[0]}
	DUR[$s]=$(since "$ts")
	if [ "$rc" = 0 ]; then RESULT[$s]=PASS; else RESULT[$s]="FAIL (rc=$rc)"; fi
	[ "$rc" = 130 ] && { say "interrupted"; break; }
	if [ "$rc" = 0 ] && [ "${INTEROP_KEEP:-0}" != 1 ]; then rm -f "$W/s${s%@loop}.img"; fi
done

echo
echo "interop summary (kernel peer $KPT, logs in $W):"
nfail=0
for s in $SCEN; do
	printf '  scenario %s: %-12s %6ss\n' "$s" "${RESULT[$s]:-not run}" "${DUR[$s]:-0}"
	[ "${RESULT[$s]:-}" = PASS ] || nfail=$((nfail + 1))
done
printf '  total: %ss (including the builds)\n' "$(since "$T_SUITE")"
nrun=$(echo $SCEN | wc -w)
echo "interop: $((nrun - nfail)) passed, $nfail failed"
if [ $nfail -gt 0 ]; then
	echo "interop: FAILED: $nfail scenario(s) failed"
	exit 1
fi
echo "interop: all scenarios passed"

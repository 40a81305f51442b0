#!/usr/bin/env bash
# make bench: mkfs.ocfs2 (Debian 1.8.7) against mkfs.ocfs2-mmp, and fsck.ocfs2
# against fsck.ocfs2-mmp, on a 1 TiB
# sparse image with -N 4. Reports wall time and peak RSS (GNU time), bytes
# handed to write(2)/pwrite(2) (strace, in a separate run so that strace's
# overhead does not touch the timings), and bytes allocated in the image (du).
# Runs each tool RUNS times (default 3) and keeps the best time.
set -euo pipefail
OURS=${1:?usage: bench/run.sh PATH_TO_mkfs-ocfs2-mmp [DIR]}
DIR=${2:-$(dirname "$0")/../target/bench}
RUNS=${RUNS:-3}
SIZE=${SIZE:-1T}
mkdir -p "$DIR"
for t in mkfs.ocfs2 strace /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "bench: $t missing (make deps; apt-get install strace time)" >&2; exit 1; }
done
IMG=$DIR/bench.img
trap 'rm -f "$IMG"' EXIT

fresh() { rm -f "$IMG"; truncate -s "$SIZE" "$IMG"; }
measure() { # name cmd... -> "seconds kib"
	local best_s="" best_k=""
	for _ in $(seq "$RUNS"); do
		fresh
		local out
		/usr/bin/time -o "$DIR/time.out" -f "%e %M" "$@" </dev/null >/dev/null 2>&1 || { echo "bench: $1 failed" >&2; exit 1; }
		out=$(tail -1 "$DIR/time.out")
		local s=${out% *} k=${out#* }
		if [ -z "$best_s" ] || awk "BEGIN{exit !($s < $best_s)}"; then best_s=$s; fi
		if [ -z "$best_k" ] || [ "$k" -gt "$best_k" ]; then best_k=$k; fi
	done
	echo "$best_s $best_k"
}
written() { # cmd... -> bytes passed to write/pwrite
	fresh
	strace -f -qq -e trace=write,pwrite64,pwritev,writev -e signal=none -o "$DIR/strace.log" "$@" </dev/null >/dev/null 2>&1
	awk -F'= ' '/(write|pwrite64|pwritev|writev)\(/ && $NF ~ /^[0-9]+/ { split($NF, a, " "); s += a[1] } END { printf "%d\n", s }' "$DIR/strace.log"
}
allocated() { du -B1 "$IMG" | cut -f1; }

read -r t_s t_k < <(measure mkfs.ocfs2 -q -F -x -N 4 "$IMG")
t_w=$(written mkfs.ocfs2 -q -F -x -N 4 "$IMG"); t_a=$(allocated)
read -r o_s o_k < <(measure "$OURS" -q -N 4 "$IMG")
o_w=$(written "$OURS" -q -N 4 "$IMG"); o_a=$(allocated)

printf '%-28s %16s %16s %10s\n' "mkfs, $SIZE sparse, -N 4" "mkfs.ocfs2 1.8.7" "mkfs.ocfs2-mmp" "ratio"
ratio() { awk "BEGIN{ if ($1 == 0) print \"-\"; else printf \"%.3f\", $2 / $1 }"; }
printf '%-28s %16s %16s %10s\n' "wall time (s, best of $RUNS)" "$t_s" "$o_s" "$(ratio "$t_s" "$o_s")"
printf '%-28s %16s %16s %10s\n' "peak RSS (KiB)" "$t_k" "$o_k" "$(ratio "$t_k" "$o_k")"
printf '%-28s %16s %16s %10s\n' "bytes written (write calls)" "$t_w" "$o_w" "$(ratio "$t_w" "$o_w")"
printf '%-28s %16s %16s %10s\n' "bytes allocated (du)" "$t_a" "$o_a" "$(ratio "$t_a" "$o_a")"
echo "goals: time ratio <= 0.5, bytes written ratio <= 1, ours peak RSS < 65536 KiB"

# fsck: an empty 1 TiB volume made by mkfs.ocfs2, fsck.ocfs2 -fn against fsck.ocfs2-mmp -n.
FSCK_OURS=${FSCK_OURS:-$(dirname "$OURS")/fsck-ocfs2-mmp}
if [ -x "$FSCK_OURS" ]; then
	fresh
	mkfs.ocfs2 -q -F -x -N 4 "$IMG" </dev/null >/dev/null 2>&1
	best() { # cmd... -> "seconds kib" (best time, max RSS over RUNS)
		local bs="" bk=0
		for _ in $(seq "$RUNS"); do
			/usr/bin/time -o "$DIR/time.out" -f "%e %M" "$@" </dev/null >/dev/null 2>&1 || true
			read -r s k < <(tail -1 "$DIR/time.out")
			if [ -z "$bs" ] || awk "BEGIN{exit !($s < $bs)}"; then bs=$s; fi
			[ "$k" -gt "$bk" ] && bk=$k
		done
		echo "$bs $bk"
	}
	best_fresh() { # src cmd... -> "seconds kib" on a fresh copy of src each run
		local src=$1 bs="" bk=0; shift
		for _ in $(seq "$RUNS"); do
			cp --sparse=always "$src" "$DIR/copy.img"
			/usr/bin/time -o "$DIR/time.out" -f "%e %M" "$@" "$DIR/copy.img" </dev/null >/dev/null 2>&1 || true
			read -r s k < <(tail -1 "$DIR/time.out")
			if [ -z "$bs" ] || awk "BEGIN{exit !($s < $bs)}"; then bs=$s; fi
			[ "$k" -gt "$bk" ] && bk=$k
		done
		rm -f "$DIR/copy.img"
		echo "$bs $bk"
	}
	read -r ft_s ft_k < <(best fsck.ocfs2 -fn "$IMG")
	read -r fo_s fo_k < <(best "$FSCK_OURS" -n "$IMG")
	echo
	printf '%-28s %16s %16s %10s\n' "fsck, $SIZE empty, -N 4" "fsck.ocfs2 -fn" "fsck.ocfs2-mmp -n" "ratio"
	printf '%-28s %16s %16s %10s\n' "wall time (s, best of $RUNS)" "$ft_s" "$fo_s" "$(ratio "$ft_s" "$fo_s")"
	printf '%-28s %16s %16s %10s\n' "peak RSS (KiB)" "$ft_k" "$fo_k" "$(ratio "$ft_k" "$fo_k")"
	echo "goals: time ratio <= 0.2, peak RSS ratio <= 0.1"
fi

# fsck on a volume the kernel populated with 100,000 files (1,000 per
# directory) through tests/vm/kernel-mount.sh (Debian's kernel under QEMU).
# The volume is made once and kept in $DIR/populated.img.
POP=$DIR/populated.img
if [ -x "$FSCK_OURS" ] && [ "${BENCH_POPULATED:-1}" = 1 ]; then
	if [ ! -s "$POP" ]; then
		echo "making $POP: 100,000 files written by the kernel (several minutes under TCG)"
		KM_FILES=100000 KM_KEEP="$POP" bash "$(dirname "$0")/../tests/vm/kernel-mount.sh" "$OURS" "$DIR/vm" >/dev/null \
			|| { echo "bench: populating the volume failed" >&2; exit 1; }
	fi
	read -r pt_s pt_k < <(best fsck.ocfs2 -fn "$POP")
	read -r po_s po_k < <(best "$FSCK_OURS" -n "$POP")
	echo
	printf '%-28s %16s %16s %10s\n' "fsck, 100,000 files" "fsck.ocfs2 -fn" "fsck.ocfs2-mmp -n" "ratio"
	printf '%-28s %16s %16s %10s\n' "wall time (s, best of $RUNS)" "$pt_s" "$po_s" "$(ratio "$pt_s" "$po_s")"
	printf '%-28s %16s %16s %10s\n' "peak RSS (KiB)" "$pt_k" "$po_k" "$(ratio "$pt_k" "$po_k")"
	echo "goal: time ratio <= 0.5"
	# -fy on a copy each run (the volume is clean: the repair path's own cost).
	read -r yt_s yt_k < <(best_fresh "$POP" fsck.ocfs2 -fy)
	read -r yo_s yo_k < <(best_fresh "$POP" "$FSCK_OURS" -fy)
	echo
	printf '%-28s %16s %16s %10s\n' "fsck -fy, 100,000 files" "fsck.ocfs2 -fy" "fsck.ocfs2-mmp -fy" "ratio"
	printf '%-28s %16s %16s %10s\n' "wall time (s, best of $RUNS)" "$yt_s" "$yo_s" "$(ratio "$yt_s" "$yo_s")"
	printf '%-28s %16s %16s %10s\n' "peak RSS (KiB)" "$yt_k" "$yo_k" "$(ratio "$yt_k" "$yo_k")"
	echo "goals: time ratio <= 0.5, peak RSS ratio <= 0.1"
fi

# A full journal replayed: a 2 GiB volume (mkfs.ocfs2, 256 MiB journal, no
# metaecc) whose slot 0 journal bench/fill-journal.py fills with committed
# transactions, each run on a fresh copy. fsck.ocfs2 1.8.7 stops with exit 8
# right after its replay on a local volume ("Unable to access cluster
# service"): its figures cover the replay and no check.
JRN=$DIR/journal-full.img
if [ -x "$FSCK_OURS" ] && [ "${BENCH_JOURNAL:-1}" = 1 ]; then
	rm -f "$JRN"; truncate -s 2G "$JRN"
	mkfs.ocfs2 -q -F -b 4096 -C 4096 -N 2 -J size=256M -M local --fs-features=nometaecc "$JRN" </dev/null >/dev/null
	filled=$(python3 "$(dirname "$0")/fill-journal.py" "$(dirname "$FSCK_OURS")/debugfs-mmp" "$JRN" 250)
	read -r jt_s jt_k < <(best_fresh "$JRN" fsck.ocfs2 -fy)
	read -r jo_s jo_k < <(best_fresh "$JRN" "$FSCK_OURS" -fy)
	echo
	printf '%-28s %16s %16s %10s\n' "replay: $filled" "" "" ""
	printf '%-28s %16s %16s %10s\n' "" "fsck.ocfs2 -fy" "fsck.ocfs2-mmp -fy" "ratio"
	printf '%-28s %16s %16s %10s\n' "wall time (s, best of $RUNS)" "$jt_s" "$jo_s" "$(ratio "$jt_s" "$jo_s")"
	printf '%-28s %16s %16s %10s\n' "peak RSS (KiB)" "$jt_k" "$jo_k" "$(ratio "$jt_k" "$jo_k")"
	echo "goals: time ratio <= 0.5, peak RSS ratio <= 0.1 (ours also runs every pass)"
	rm -f "$JRN"
fi

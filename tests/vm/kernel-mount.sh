#!/usr/bin/env bash
# Boot Debian's stock kernel (linux-image-amd64) under QEMU (TCG) with a tiny
# busybox initramfs, mount an OCFS2 volume made by mkfs.ocfs2-mmp, write and
# read back 1,000 files and a 100 MiB file, unmount, and check the image on
# the host with fsck.ocfs2 -fn.
#
#   tests/vm/kernel-mount.sh MKFS_BINARY [WORKDIR] [FSCK_BINARY]
#
# The guest also makes nested directories, hard links, a symlink, sparse and
# small (inline) files, so that the host's checks see a volume the kernel
# populated; with FSCK_BINARY, fsck.ocfs2-mmp -n must find it clean too.
# KM_FILES=N writes N files (1,000 per directory) instead of 1,000; KM_KEEP=PATH
# keeps the volume there (make bench uses both).
#
# Needs qemu-system-x86, busybox-static, cpio, kmod, ocfs2-tools (make deps);
# downloads the kernel package once into WORKDIR/kernel (default target/vm).
# Exit 0 when every step passed; any failure says which step, loudly.
set -euo pipefail
MKFS=${1:?usage: kernel-mount.sh MKFS_BINARY [WORKDIR] [FSCK_BINARY]}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${2:-$HERE/../../target/vm}
OURFSCK=${3:-}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
log() { printf '[kernel-mount %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { echo "kernel-mount: FAILED: $*" >&2; exit 1; }

for t in qemu-system-x86_64 busybox cpio depmod fsck.ocfs2 dpkg-deb apt-get; do
	command -v "$t" >/dev/null 2>&1 || die "$t is missing: run 'make deps' (apt-get install qemu-system-x86 busybox-static cpio kmod ocfs2-tools)"
done
BUSYBOX=$(command -v busybox)
dpkg -s busybox-static >/dev/null 2>&1 || die "busybox is not the static build: run 'make deps' (apt-get install busybox-static)"

# 1. The kernel: Debian's linux-image-amd64, unpacked (not installed).
KVER=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{sub("linux-image-","",$2); print $2; exit}')
[ -n "$KVER" ] || { apt-get update -qq; KVER=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{sub("linux-image-","",$2); print $2; exit}'); }
[ -n "$KVER" ] || die "cannot tell which kernel linux-image-amd64 depends on"
KDIR=$WORK/kernel-$KVER
if [ ! -f "$KDIR/boot/vmlinuz-$KVER" ]; then
	log "downloading linux-image-$KVER"
	mkdir -p "$WORK/debs"
	(cd "$WORK/debs" && apt-get download -q "linux-image-$KVER" 2>&1 | grep -v "unsandboxed" || true)
	deb=$(ls "$WORK"/debs/linux-image-"$KVER"_*.deb 2>/dev/null | head -1)
	[ -n "$deb" ] || die "apt-get download linux-image-$KVER gave nothing"
	rm -rf "$KDIR.tmp" && dpkg-deb -x "$deb" "$KDIR.tmp"
	depmod -b "$KDIR.tmp" "$KVER"
	mv "$KDIR.tmp" "$KDIR"
fi
MODDIR=$KDIR/lib/modules/$KVER

# 2. The initramfs: busybox, /init, the modules ocfs2 and virtio_blk need.
RD=$WORK/run.$$
rm -rf "$RD"; mkdir -p "$RD/root/bin" "$RD/root/lib/modules"
trap 'rm -rf "$RD"' EXIT
cp "$BUSYBOX" "$RD/root/bin/busybox"
deps() { # module name -> dependency-ordered .ko paths (relative to MODDIR)
	local m=$1 line
	line=$(grep -E "(^|/)$m\.ko(\.xz|\.zst)?:" "$MODDIR/modules.dep" | head -1) || die "module $m not in modules.dep"
	local self=${line%%:*} rest=${line#*:}
	for d in $rest; do echo "$d"; done | tac
	echo "$self"
}
ORDER=$( { deps virtio_pci; deps virtio_blk; deps ocfs2; } | awk '!seen[$0]++')
n=0
for ko in $ORDER; do
	n=$((n+1)); base=$(printf '%02d-%s' "$n" "$(basename "$ko")")
	case "$ko" in
	*.xz) xz -dc "$MODDIR/$ko" > "$RD/root/lib/modules/${base%.xz}" ;;
	*.zst) zstd -qdc "$MODDIR/$ko" > "$RD/root/lib/modules/${base%.zst}" ;;
	*) cp "$MODDIR/$ko" "$RD/root/lib/modules/$base" ;;
	esac
done
cat > "$RD/root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /mnt /tmp
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
exec >/dev/ttyS0 2>&1
for m in /lib/modules/*.ko; do insmod "$m" 2>/dev/null || echo "insmod $m failed"; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
step() { echo "STEP $*"; }
fail() { echo "GUEST-FAIL $*"; sync; poweroff -f; }
step mount
mount -t ocfs2 -o heartbeat=none /dev/vda /mnt || fail "mount"
FILES=$(sed -n 's/.*km\.files=\([0-9]*\).*/\1/p' /proc/cmdline); FILES=${FILES:-1000}
step write $FILES files
mkdir /mnt/many || fail mkdir
i=0; while [ $i -lt $FILES ]; do
	d=/mnt/many/d$((i / 1000)); [ -d $d ] || mkdir $d || fail "mkdir $d"
	echo "file $i of the kernel-mount test" > $d/f$i || fail "write f$i"; i=$((i+1))
done
step write 100 MiB
dd if=/dev/urandom of=/tmp/big bs=1M count=100 2>/dev/null || fail "urandom"
BIGSUM=$(md5sum /tmp/big | cut -d' ' -f1)
cp /tmp/big /mnt/big || fail "write big"
rm /tmp/big
step tree, links, sparse and inline files
mkdir -p /mnt/tree/a/b/c /mnt/tree/d || fail "mkdir tree"
i=0; while [ $i -lt 50 ]; do echo "inline $i" > /mnt/tree/a/b/c/small$i || fail "small $i"; i=$((i+1)); done
ln /mnt/tree/a/b/c/small0 /mnt/tree/d/hardlink0 || fail "hard link"
ln /mnt/tree/a/b/c/small1 /mnt/tree/hardlink1 || fail "hard link 2"
ln -s ../a/b/c/small2 /mnt/tree/d/symlink || fail "symlink"
dd if=/dev/zero of=/mnt/tree/sparse bs=1M seek=200 count=1 2>/dev/null || fail "sparse"
mkdir /mnt/tree/gone && rmdir /mnt/tree/gone || fail "rmdir"
echo x > /mnt/tree/deleted && rm /mnt/tree/deleted || fail "unlink"
sync
step umount
umount /mnt || fail "umount"
step remount
mount -t ocfs2 -o heartbeat=none /dev/vda /mnt || fail "remount"
step read back
n=$(find /mnt/many -type f | wc -l); [ "$n" = $FILES ] || fail "found $n files, not $FILES"
i=0; while [ $i -lt $FILES ]; do
	read -r line < /mnt/many/d$((i / 1000))/f$i || fail "read f$i"
	[ "$line" = "file $i of the kernel-mount test" ] || fail "content of f$i"; i=$((i+1))
done
[ "$(md5sum /mnt/big | cut -d' ' -f1)" = "$BIGSUM" ] || fail "big file checksum"
[ "$(stat -c %s /mnt/big)" = 104857600 ] || fail "big file size"
umount /mnt || fail "final umount"
echo "GUEST-OK"
sync
poweroff -f
INIT
chmod +x "$RD/root/init"
(cd "$RD/root" && find . | cpio -o -H newc --quiet | gzip -1) > "$RD/initrd.gz"

# 3. The volume, made by our mkfs.
IMG=$RD/vol.img
truncate -s 1G "$IMG"
"$MKFS" -q -M local -N 2 -L kernel-test "$IMG" || die "mkfs.ocfs2-mmp failed"

# 4. Boot (TCG; KVM does not work on these machines).
log "booting $KVER under QEMU (TCG)"
T0=$(date +%s)
timeout 900 qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot \
	-machine pc,accel=tcg -cpu max -smp 1 -m 512 \
	-kernel "$KDIR/boot/vmlinuz-$KVER" -initrd "$RD/initrd.gz" \
	-append "console=ttyS0 panic=-1 quiet km.files=${KM_FILES:-1000}" \
	-serial file:"$RD/console.log" \
	-drive file="$IMG",format=raw,if=virtio,cache=unsafe \
	|| die "qemu exited with $? (timeout or crash); console: $(tail -20 "$RD/console.log" 2>/dev/null)"
log "guest ran $(( $(date +%s) - T0 )) s"
grep -E "^(STEP|GUEST-)" "$RD/console.log" | tr -d '\r' | sed 's/^/  guest: /'
grep -q "GUEST-OK" "$RD/console.log" || die "the guest did not finish: $(grep -E 'GUEST-FAIL|ocfs2|OCFS2|BUG|Oops' "$RD/console.log" | tr -d '\r' | tail -10)"

# 5. The host's fsck on what the kernel wrote.
out=$(fsck.ocfs2 -fn "$IMG" 2>&1) || die "fsck.ocfs2 -fn exited $?: $out"
echo "$out" | grep -q "All passes succeeded" || die "fsck.ocfs2 -fn: $out"
if echo "$out" | grep -E '^\[' | grep -v DX_TREE_MISSING; then die "fsck.ocfs2 -fn found problems"; fi
if [ -n "$OURFSCK" ]; then
	out=$("$OURFSCK" -n "$IMG" 2>&1) || { cp --sparse=always "$IMG" "$WORK/failed.img"; die "fsck.ocfs2-mmp -n exited $? on the kernel-populated volume (kept as $WORK/failed.img): $out"; }
	log "fsck.ocfs2-mmp -n: $(echo "$out" | tail -1)"
fi
if [ -n "${KM_KEEP:-}" ]; then cp --sparse=always "$IMG" "$KM_KEEP"; log "kept the volume as $KM_KEEP"; fi
log "PASS: mounted, ${KM_FILES:-1000} files, a tree with links and sparse and inline files, 100 MiB written and read back; fsck.ocfs2 -fn clean${OURFSCK:+, fsck.ocfs2-mmp -n clean}"

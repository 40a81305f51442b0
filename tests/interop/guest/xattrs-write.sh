# Guest script for tests/interop/run.sh scenario x and
# tests/fixtures/make-xattr-images.sh (after the preamble that unpacks the
# xattrs helper into /tmp/xattrs): mount, give files and a directory
# extended attributes of every kind of storage, print their sums, unmount.
#   d/small    3 short values: all in the inode's inline area
#   d/block    12 values of 40 bytes: the inode, then an attribute block
#   d/many     300 values of 30 bytes: an indexed block with buckets
#   d/big      2 values of 9000 bytes and 1 of 60000: clusters of their own
#   d/bigmany  60 values of 200 bytes: buckets holding value roots
#   d          4 values of 100 bytes on a directory
kp_mount || exit 3
cd $MNT || exit 3
mkdir d
echo small > d/small && /tmp/xattrs set d/small s 3 10 || exit 5
echo block > d/block && /tmp/xattrs set d/block b 12 40 || exit 5
echo many > d/many && /tmp/xattrs set d/many m 300 30 || exit 5
echo big > d/big && /tmp/xattrs set d/big v 2 9000 && /tmp/xattrs set d/big V 1 60000 || exit 5
echo bigmany > d/bigmany && /tmp/xattrs set d/bigmany w 60 200 || exit 5
/tmp/xattrs set d i 4 100 || exit 5
cd /
sync
for f in d d/small d/block d/many d/big d/bigmany; do
	/tmp/xattrs sum "$MNT/$f" | sed "s|^|XSUM $f |"
done
kp_umount || exit 4
kp_dmesg 'ocfs2|OCFS2|BUG|WARNING|Call Trace'
exit 0

#!/bin/bash
# packaging/build-deb.sh VERSION "TARGET:NAME ...": the Debian package of
# the suite, target/ocfs2-mmp-tools_VERSION_ARCH.deb, from the release
# binaries and target/completions (make deb builds both first).
#
# dpkg-deb over a staged tree, not cargo-deb: the build has no network to
# fetch cargo-deb, and a package of five binaries, their man pages and
# completions needs nothing it would add. The dependencies are the ones
# dpkg computes (dpkg-shlibdeps over the stripped binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$1
TOOLS=$2
PKG=ocfs2-mmp-tools
ARCH=$(dpkg --print-architecture)
STAGE=target/deb
ROOT=$STAGE/root
DOC=$ROOT/usr/share/doc/$PKG
rm -rf "$STAGE"
mkdir -p "$ROOT/DEBIAN" "$ROOT/usr/sbin" "$ROOT/usr/share/man/man8" "$DOC"
for t in $TOOLS; do
	src=${t%%:*} dst=${t##*:}
	strip --strip-unneeded -o "$ROOT/usr/sbin/$dst" "target/release/$src"
	chmod 0755 "$ROOT/usr/sbin/$dst"
	gzip -9nc "man/$dst.8" > "$ROOT/usr/share/man/man8/$dst.8.gz"
done
[ -d target/completions/share ] || { echo "build-deb.sh: no target/completions (make completions)" >&2; exit 1; }
cp -r target/completions/share "$ROOT/usr/"
install -m 0644 packaging/copyright "$DOC/copyright"
gzip -9nc packaging/changelog > "$DOC/changelog.gz"
# dpkg-shlibdeps reads debian/control from the directory it runs in.
mkdir -p "$STAGE/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$PKG" "$PKG" > "$STAGE/debian/control"
depends=$(cd "$STAGE" && dpkg-shlibdeps -O -e root/usr/sbin/* 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "build-deb.sh: dpkg-shlibdeps computed no dependencies" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: $PKG
Version: $VERSION
Architecture: $ARCH
Maintainer: ocfs2-mmp-tools developers <ocfs2-mmp-tools@example.invalid>
Installed-Size: $size
Depends: $depends
Suggests: ocfs2-tools
Section: admin
Priority: optional
Description: tools for OCFS2 volumes with multiple mount protection (MMP)
 mkfs.ocfs2-mmp, tunefs.ocfs2-mmp, fsck.ocfs2-mmp, debugfs-mmp and
 mounted.ocfs2-mmp make, tune, check, inspect and list OCFS2 volumes with
 the MMP feature, which ocfs2-tools refuse, and hold each volume with the
 MMP protocol while they write, so that no volume is mounted twice or
 checked while mounted. They install beside ocfs2-tools.
CONTROL
out=target/${PKG}_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$out" >/dev/null
echo "$out: $(du -k "$out" | cut -f1) KiB, Depends: $depends"

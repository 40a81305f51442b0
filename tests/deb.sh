#!/bin/bash
# tests/deb.sh (issue 15): the Debian package end to end. make deb builds
# it; dpkg -i installs it beside Debian's ocfs2-tools (make deps installs
# those: a file conflict fails the install); each tool runs from /usr/sbin
# on a fresh image; man -w finds every page; bash completes
# "tunefs.ocfs2-mmp --en" to "--enable-mmp" from the installed completion;
# dpkg -r leaves none of the package's files behind. Needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
fail() { echo "tests/deb.sh: FAIL: $*" >&2; exit 1; }
say() { echo "tests/deb.sh: $*"; }
command -v mkfs.ocfs2 >/dev/null || fail "ocfs2-tools is not installed (make deps)"

make -s deb
deb=$(ls -t target/ocfs2-mmp-tools_*.deb | head -1)
say "built $deb ($(du -k "$deb" | cut -f1) KiB)"
listing=$(dpkg-deb -c "$deb")
for f in mkfs.ocfs2-mmp tunefs.ocfs2-mmp fsck.ocfs2-mmp debugfs-mmp mounted.ocfs2-mmp; do
	grep -q "\./usr/sbin/$f\$" <<<"$listing" || fail "$deb has no /usr/sbin/$f"
done
size=$(awk '$6 ~ /usr\/sbin\/fsck.ocfs2-mmp$/ {print $3}' <<<"$listing")
[ "$size" -lt 8000000 ] || fail "fsck.ocfs2-mmp is $size bytes in the package: not stripped?"
depends=$(dpkg-deb -f "$deb" Depends)
case "$depends" in *libc6*) ;; *) fail "Depends does not name libc6: '$depends'" ;; esac

$SUDO dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb failed (a conflict with ocfs2-tools?)"
files=$(dpkg -L ocfs2-mmp-tools | while read -r f; do [ ! -f "$f" ] || echo "$f"; done)
say "installed: $(wc -l <<<"$files") files, Depends: $depends"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
img=$tmp/v.img
truncate -s 256M "$img"
/usr/sbin/mkfs.ocfs2-mmp -q -M local -N 2 --fs-features=mmp --mmp-update-interval=1 "$img" || fail "mkfs.ocfs2-mmp from /usr/sbin"
/usr/sbin/debugfs-mmp -R "mmp status -i" "$img" >/dev/null || fail "debugfs-mmp mmp status from /usr/sbin"
/usr/sbin/fsck.ocfs2-mmp -n "$img" >/dev/null || fail "fsck.ocfs2-mmp -n from /usr/sbin"
q=$(/usr/sbin/tunefs.ocfs2-mmp -Q '%A %N' "$img") || fail "tunefs.ocfs2-mmp -Q from /usr/sbin"
[ "$q" = "enabled 2" ] || fail "tunefs.ocfs2-mmp -Q says '$q'"
/usr/sbin/mounted.ocfs2-mmp -d "$img" | grep -q "$img" || fail "mounted.ocfs2-mmp -d does not list the image"
say "the five tools ran from /usr/sbin on a fresh image"

for p in mkfs.ocfs2-mmp tunefs.ocfs2-mmp fsck.ocfs2-mmp debugfs-mmp mounted.ocfs2-mmp; do
	m=$(man -w "$p" 2>/dev/null) || fail "man -w $p finds nothing"
	[ "$m" = "/usr/share/man/man8/$p.8.gz" ] || fail "man -w $p: $m"
done
say "man -w finds the five pages in section 8"

got=$(bash --norc --noprofile -c '
	source /usr/share/bash-completion/completions/tunefs.ocfs2-mmp
	COMP_WORDS=(tunefs.ocfs2-mmp --en); COMP_CWORD=1
	_tunefs_ocfs2_mmp
	echo "${COMPREPLY[*]}"')
[ "$got" = "--enable-mmp" ] || fail "bash completes 'tunefs.ocfs2-mmp --en' to '$got'"
[ -s /usr/share/zsh/vendor-completions/_tunefs.ocfs2-mmp ] || fail "no zsh completion"
[ -s /usr/share/fish/vendor_completions.d/tunefs.ocfs2-mmp.fish ] || fail "no fish completion"
say "bash completes 'tunefs.ocfs2-mmp --en' to '$got'; zsh and fish completions installed"

$SUDO dpkg -r ocfs2-mmp-tools >/dev/null || fail "dpkg -r failed"
left=$(while read -r f; do [ ! -e "$f" ] || echo "$f"; done <<<"$files")
[ -z "$left" ] || fail "dpkg -r left: $left"
command -v mkfs.ocfs2 >/dev/null || fail "removing the package took ocfs2-tools' mkfs.ocfs2"
say "dpkg -r removed all $(wc -l <<<"$files") files; ocfs2-tools is untouched"

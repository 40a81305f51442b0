# ocfs2-mmp-tools
#   make demo      build, make a sparse OCFS2 image with MMP (mkfs.ocfs2-mmp) and show it (debugfs-mmp)
#   make bench     mkfs.ocfs2-mmp against mkfs.ocfs2 on 1 TiB: time, memory, bytes written
#   make test      install what the tests need (Debian ocfs2-tools, e2fsprogs), run every test
#   make install   PREFIX=/usr/local DESTDIR= : binaries under their dotted names, man pages, completions
#   make deb       target/ocfs2-mmp-tools_VERSION_ARCH.deb (dpkg-deb; see packaging/)

PREFIX   ?= /usr/local
DESTDIR  ?=
CARGO    ?= cargo
BINDIR    = $(DESTDIR)$(PREFIX)/sbin
MANDIR    = $(DESTDIR)$(PREFIX)/share/man/man8
VERSION  := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
DEMO_IMG ?= target/demo/demo.img

# cargo target name -> installed name
TOOLS = debugfs-mmp:debugfs-mmp mkfs-ocfs2-mmp:mkfs.ocfs2-mmp tunefs-ocfs2-mmp:tunefs.ocfs2-mmp fsck-ocfs2-mmp:fsck.ocfs2-mmp mounted-ocfs2-mmp:mounted.ocfs2-mmp

.PHONY: all build release deps test check demo bench install uninstall clean fmt deb completions

all: build

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --workspace --release

# Tools the tests use as oracles. Installed only when missing. kmod: without
# /sbin/modprobe, clustered mkfs.ocfs2 forks on a failed exec and exits 1.
deps:
	@missing=""; \
	command -v mkfs.ocfs2 >/dev/null 2>&1 || missing="$$missing ocfs2-tools"; \
	command -v mkfs.ext4  >/dev/null 2>&1 || missing="$$missing e2fsprogs"; \
	command -v setpriv    >/dev/null 2>&1 || missing="$$missing util-linux"; \
	command -v losetup    >/dev/null 2>&1 || missing="$$missing mount"; \
	PATH="$$PATH:/sbin:/usr/sbin" command -v modprobe >/dev/null 2>&1 || missing="$$missing kmod"; \
	command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$$missing qemu-system-x86"; \
	dpkg -s busybox-static >/dev/null 2>&1 || missing="$$missing busybox-static"; \
	command -v cpio >/dev/null 2>&1 || missing="$$missing cpio"; \
	command -v xz   >/dev/null 2>&1 || missing="$$missing xz-utils"; \
	command -v dpkg-shlibdeps >/dev/null 2>&1 || missing="$$missing dpkg-dev"; \
	command -v man  >/dev/null 2>&1 || missing="$$missing man-db"; \
	command -v cc   >/dev/null 2>&1 || missing="$$missing gcc"; \
	[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -n "$$(find /usr/lib -name libc.a 2>/dev/null | head -1)" ] || missing="$$missing libc6-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	    || { echo "make deps: could not install$$missing" >&2; exit 1; }; \
	fi; \
	mkfs.ocfs2 --version >/dev/null 2>&1 || { echo "make deps: mkfs.ocfs2 still missing" >&2; exit 1; }

check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: deps
	$(CARGO) test --workspace
	tests/deb.sh

# Shell completions written from the tools' clap definitions.
completions: release
	rm -rf target/completions
	$(CARGO) run --release --quiet --example completions -- target/completions

# A Debian package: dpkg-deb over a staged tree (packaging/README says why).
deb: release completions
	packaging/build-deb.sh "$(VERSION)" "$(TOOLS)"

# Interop suite (issue 6): our tools against the MMP-patched kernel of
# ../shared/tools/kernel-peer under QEMU; builds the peer and target/release first.
.PHONY: interop
interop:
	tests/interop/run.sh

demo: deps release
	@mkdir -p $(dir $(DEMO_IMG))
	@rm -f $(DEMO_IMG)
	truncate -s 1G $(DEMO_IMG)
	target/release/mkfs-ocfs2-mmp -M local -N 2 -L demo --fs-features=mmp --mmp-update-interval=5 $(DEMO_IMG)
	target/release/debugfs-mmp -R stats -R slotmap -R "mmp status" -R "ls -l //" $(DEMO_IMG)

# Speed and memory against Debian's tools (not a test: figures, not verdicts).
bench: deps release
	@command -v strace >/dev/null 2>&1 || apt-get install -y -qq strace >/dev/null
	bench/run.sh target/release/mkfs-ocfs2-mmp

install: release completions
	install -d $(BINDIR) $(MANDIR)
	@for t in $(TOOLS); do \
	  src=$${t%%:*}; dst=$${t##*:}; \
	  echo "install target/release/$$src -> $(BINDIR)/$$dst"; \
	  install -m 0755 target/release/$$src $(BINDIR)/$$dst || exit 1; \
	done
	install -m 0644 man/*.8 $(MANDIR)/
	cd target/completions && find share -type f | while read -r f; do \
	  install -D -m 0644 "$$f" "$(DESTDIR)$(PREFIX)/$$f" || exit 1; done

uninstall:
	@for t in $(TOOLS); do \
	  n=$${t##*:}; rm -f $(BINDIR)/$$n \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$n \
	    $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_$$n \
	    $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/$$n.fish; \
	done
	@for m in man/*.8; do rm -f $(MANDIR)/$$(basename $$m); done

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean

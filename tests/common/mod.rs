//! Helpers shared by the integration tests (`mod common;` in each
//! tests/*.rs; Cargo builds this directory as a module of each test, not as
//! a test of its own). Not every test uses every helper, hence the
//! `dead_code` allowance.
//!
//! The tests never skip: a missing tool fails them with the `make deps`
//! hint.

#![allow(dead_code)]

pub mod edit;
pub mod shared;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
pub const TIB: u64 = 1 << 40;

/// `OCFS2_FEATURE_INCOMPAT_MMP`.
pub const INCOMPAT_MMP: u32 = 0x1_0000;

// ------------------------------------------------------------------ tools

/// Where [`find_tool`] looks after `PATH`.
pub const SYSTEM_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Find a tool in `PATH`, `/usr/sbin`, `/sbin`, `/usr/bin`, `/bin`; panic
/// (never skip) with the `make deps` hint naming `package` when it is
/// missing.
pub fn find_tool(name: &str, package: &str) -> PathBuf {
    find_tool_in(name, package, &SYSTEM_DIRS)
}

/// [`find_tool`] with other directories after `PATH`.
pub fn find_tool_in(name: &str, package: &str, after_path: &[&str]) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(after_path.iter().map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found (searched PATH, {}): the tests need it and never skip. \
                 Install it with `make deps` (or `apt-get install -y {package}`).",
                after_path.join(", ")
            )
        })
}

/// Fail unless the shell finds `tool` with `command -v` (in `PATH`, where
/// the caller then runs it by name).
pub fn need(tool: &str, package: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{tool} is missing: run `make deps` (apt-get install -y {package})"
    );
}

/// Clustered `mkfs.ocfs2` 1.8.7 runs `/sbin/modprobe`; without it the
/// forked child goes on running mkfs and the exit status is garbage
/// (docs/mkfs-layout.md, "Sandbox quirk"). Require it rather than guess.
pub fn require_modprobe() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        find_tool("modprobe", "kmod");
        assert!(
            Path::new("/sbin/modprobe").exists(),
            "/sbin/modprobe is missing: clustered mkfs.ocfs2 1.8.7 execs it and misbehaves \
             without it. Install it with `make deps` (or `apt-get install -y kmod`)."
        );
    });
}

/// Whether a `mkfs.ocfs2` run (not `-q`: it counts the "mkfs.ocfs2
/// successful" lines) made its volume.
///
/// ocfs2-tools 1.8.7 peculiarity: for a clustered volume libo2cb forks to
/// run /sbin/modprobe ocfs2; where modprobe does not exist (containers
/// without kmod) the failed exec is not followed by an exit, so the child
/// goes on running mkfs itself. The first copy formats the image (and
/// prints "mkfs.ocfs2 successful"); every later copy, the original process
/// included, finds an OCFS2 volume, asks "Proceed (y/N)", reads EOF and
/// exits 1. The image is the good one the first copy wrote, so that counts
/// as made too (callers check the volume's geometry anyway).
pub fn mkfs_ocfs2_made(out: &Output, local: bool) -> bool {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let successes = stdout.matches("mkfs.ocfs2 successful").count();
    let modprobe_quirk = !local
        && !Path::new("/sbin/modprobe").exists()
        && out.status.code() == Some(1)
        && successes == 1
        && stdout.contains("Proceed (y/N): Aborting operation.");
    (out.status.success() && successes == 1) || modprobe_quirk
}

// ------------------------------------------------------------------ running

/// A command with `TZ=UTC` and stdin from /dev/null.
pub fn cmd(prog: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(prog);
    c.env("TZ", "UTC").stdin(Stdio::null());
    c
}

/// Exit status, stdout and stderr of a finished command, for messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// This process's effective uid.
pub fn euid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .expect("effective uid in /proc/self/status")
}

// ------------------------------------------------------------------ files

/// A temporary directory under `CARGO_TARGET_TMPDIR` whose name starts with
/// `prefix`, removed on drop (also when the test fails).
pub fn scratch(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temporary directory under CARGO_TARGET_TMPDIR")
}

/// A fresh sparse file of `size` bytes at `p` (truncated if it exists).
pub fn sparse_file(p: &Path, size: u64) {
    std::fs::File::create(p)
        .and_then(|f| f.set_len(size))
        .unwrap_or_else(|e| panic!("sparse file {} of {size} bytes: {e}", p.display()));
}

/// `cp --sparse=always SRC DST` (only the data extents are copied), which
/// must succeed.
pub fn cp_sparse(src: &Path, dst: &Path) {
    let out = Command::new("cp")
        .arg("--sparse=always")
        .arg(src)
        .arg(dst)
        .output()
        .expect("run cp");
    assert!(
        out.status.success(),
        "cp --sparse=always {} {}: {}",
        src.display(),
        dst.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `src` copied to `dst` with the MMP bit cleared in every superblock copy
/// (when it has one): a volume ocfs2-tools open, to judge ours with.
pub fn copy_without_mmp(src: &Path, dst: &Path) {
    use ocfs2_format::{FileDevice, OpenMode, Volume};
    cp_sparse(src, dst);
    let mode = OpenMode {
        write: true,
        exclusive: false,
    };
    let v = Volume::open(Box::new(
        FileDevice::open(dst, mode).expect("open the copy"),
    ))
    .expect("open the copy's volume");
    let mmp = ocfs2_format::features::incompat::MMP;
    if v.features().has_incompat(mmp) {
        let mut sb = *v.sb();
        sb.s_feature_incompat
            .set(sb.s_feature_incompat.get() & !mmp);
        v.write_super_everywhere(&sb).expect("clear the MMP bit");
    }
}

// ------------------------------------------------------------------ checkers

/// Our fsck (`fsck`, its path) `-f ARGS --json IMG`: its exit code and the
/// distinct codes of its findings that are damage (an improvement offered,
/// DX_TREE_MISSING, is not), sorted.
pub fn fsck_json_codes(fsck: &str, img: &Path, args: &[&str]) -> (Option<i32>, Vec<String>) {
    let out = cmd(fsck)
        .arg("-f")
        .args(args)
        .arg("--json")
        .arg(img)
        .output()
        .expect("run fsck.ocfs2-mmp");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("fsck {args:?} JSON: {e}: {}", show(&out)));
    let mut codes: Vec<String> = j["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["damage"] != false)
        .map(|f| f["code"].as_str().expect("code").to_string())
        .collect();
    codes.sort();
    codes.dedup();
    (out.status.code(), codes)
}

/// `fsck.ocfs2 -fn` on `copy`, a copy of `img` without MMP (removed
/// after): its exit code and the distinct `[CODE]`s it printed, sorted, but
/// DX_TREE_MISSING (which it reports on what its own mkfs makes).
pub fn fsck_ocfs2_codes(img: &Path, copy: &Path) -> (Option<i32>, Vec<String>) {
    copy_without_mmp(img, copy);
    let out = cmd(find_tool("fsck.ocfs2", "ocfs2-tools"))
        .arg("-fn")
        .arg(copy)
        .output()
        .expect("run fsck.ocfs2");
    let _ = std::fs::remove_file(copy);
    let mut codes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix('[')?.split(']').next().map(str::to_string))
        .filter(|c| c != "DX_TREE_MISSING")
        .collect();
    codes.sort();
    codes.dedup();
    (out.status.code(), codes)
}

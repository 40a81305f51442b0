//! The Linux kernel mounts what mkfs.ocfs2-mmp makes: Debian's stock kernel
//! boots under QEMU (TCG), mounts a `-M local` volume, writes and reads back
//! 1,000 files, a tree with hard links, a symlink, sparse and inline files,
//! and a 100 MiB file, unmounts; then `fsck.ocfs2 -fn` and `fsck.ocfs2-mmp -n`
//! on the host find the kernel-populated volume clean. The work is in tests/vm/kernel-mount.sh; this test runs it and
//! fails with its record when any step fails (or a tool is missing: run
//! `make deps`).

use std::process::Command;

#[test]
fn kernel_mounts_our_volume() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm/kernel-mount.sh");
    let work = concat!(env!("CARGO_TARGET_TMPDIR"), "/vm");
    let out = Command::new("bash")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_mkfs-ocfs2-mmp"))
        .arg(work)
        .arg(env!("CARGO_BIN_EXE_fsck-ocfs2-mmp"))
        .output()
        .expect("run tests/vm/kernel-mount.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "kernel-mount.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("guest: GUEST-OK"),
        "the guest did not report success:\n{stdout}"
    );
    assert!(stdout.contains("PASS:"), "{stdout}");
}

//! `fsck.ocfs2-mmp` (cargo target `fsck-ocfs2-mmp`); all logic lives in `ocfs2-fsck`.
fn main() -> std::process::ExitCode {
    ocfs2_fsck::main()
}

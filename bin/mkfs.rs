//! `mkfs.ocfs2-mmp` (cargo target `mkfs-ocfs2-mmp`); all logic lives in `ocfs2-mkfs`.
fn main() -> std::process::ExitCode {
    ocfs2_mkfs::main()
}

//! `debugfs-mmp`: installed as `debugfs-mmp`; all logic lives in `ocfs2-debugfs`.
fn main() -> std::process::ExitCode {
    ocfs2_debugfs::main()
}

//! `mounted.ocfs2-mmp`: all logic lives in `ocfs2-mounted`.
fn main() -> std::process::ExitCode {
    ocfs2_mounted::main()
}

//! `tunefs.ocfs2-mmp` (cargo target `tunefs-ocfs2-mmp`); all logic lives in `ocfs2-tunefs`.
fn main() -> std::process::ExitCode {
    ocfs2_tunefs::main()
}

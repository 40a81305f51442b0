//! The suite as a whole: each tool by its installed name with the clap
//! definition its binary parses (for the shell completions written at
//! install time and the test that man pages and command lines agree).

use clap::{Command, CommandFactory};

/// (installed name, cargo target, command line) of every tool.
pub fn tools() -> Vec<(&'static str, &'static str, Command)> {
    vec![
        (
            "mkfs.ocfs2-mmp",
            "mkfs-ocfs2-mmp",
            ocfs2_mkfs::Cli::command(),
        ),
        (
            "tunefs.ocfs2-mmp",
            "tunefs-ocfs2-mmp",
            ocfs2_tunefs::Cli::command(),
        ),
        (
            "fsck.ocfs2-mmp",
            "fsck-ocfs2-mmp",
            ocfs2_fsck::Cli::command(),
        ),
        ("debugfs-mmp", "debugfs-mmp", ocfs2_debugfs::Cli::command()),
        (
            "mounted.ocfs2-mmp",
            "mounted-ocfs2-mmp",
            ocfs2_mounted::Cli::command(),
        ),
    ]
}

//! Pass 1: the system directory and the system files.

use super::*;
use core::mem::offset_of;

impl Checker<'_> {
    /// System files by name -> inode block.
    pub(super) fn pass1(&mut self) -> HashMap<String, u64> {
        let vol = self.vol;
        let mut out = HashMap::new();
        let Some(sysdir) = self.read_inode(vol.system_dir_blkno()) else {
            self.add(
                "SYSTEM_FILE_MISSING",
                Some(vol.system_dir_blkno()),
                None,
                "the system directory is not an inode".into(),
            );
            return out;
        };
        let entries = match vol.dir_entries(&sysdir) {
            Ok(e) => e,
            Err(e) => {
                self.add(
                    "DIRENT_LENGTH",
                    Some(sysdir.blkno),
                    None,
                    format!("system directory: {e}"),
                );
                return out;
            }
        };
        for e in &entries {
            out.insert(e.name_lossy(), e.inode);
        }
        let mut want: Vec<(String, u32)> = vec![
            (
                "global_inode_alloc".into(),
                inode_flags::BITMAP | inode_flags::CHAIN,
            ),
            ("slot_map".into(), 0),
            ("heartbeat".into(), inode_flags::HEARTBEAT),
            (
                "global_bitmap".into(),
                inode_flags::BITMAP | inode_flags::CHAIN,
            ),
        ];
        // The per-slot files, from the table tunefs's -N makes them from.
        let per_slot = ocfs2_format::sysfile::slot_files(vol);
        let mut kinds = HashMap::new();
        for slot in 0..vol.max_slots() {
            for &(base, _, fl) in &per_slot {
                let name = slot_file_name(base, slot);
                kinds.insert(name.clone(), (base, slot, fl));
                want.push((name, fl));
            }
        }
        for (name, fl) in want {
            match out.get(&name).copied() {
                None => {
                    // A per-slot file is linked back (pass 6) or made anew.
                    if let Some(&(base, slot, fl)) = kinds.get(&name) {
                        self.missing_slot_files
                            .push((base, slot, fl, self.findings.len()));
                    }
                    self.add(
                        "SYSTEM_FILE_MISSING",
                        Some(sysdir.blkno),
                        None,
                        format!("system file {name} is missing"),
                    );
                }
                Some(b) => {
                    if let Some(ino) = self.read_inode(b) {
                        let have = ino.flags();
                        let need = fl | inode_flags::VALID | inode_flags::SYSTEM;
                        if have & need != need {
                            self.add_fix(
                                "SYSTEM_FILE_FLAGS",
                                Some(b),
                                None,
                                format!("{name}: flags {have:#x} lack {:#x}", need & !have),
                                Set::fix(
                                    b,
                                    offset_of!(Dinode, i_flags),
                                    4,
                                    u64::from(have | need),
                                    CheckAt::Inode,
                                    "i_flags",
                                ),
                            );
                        }
                    } else {
                        self.add(
                            "SYSTEM_FILE_MISSING",
                            Some(b),
                            None,
                            format!("system file {name} at block {b} is not an inode"),
                        );
                    }
                }
            }
        }
        out
    }
}

//! Feature flags of the superblock, by the names ocfs2-tools prints
//! (`libocfs2/feature_string.c`), plus `mmp` = incompat 0x10000 (seed patch).

use serde::Serialize;

pub mod compat {
    pub const BACKUP_SB: u32 = 0x0001;
    pub const JBD2_SB: u32 = 0x0002;
}

pub mod incompat {
    pub const HEARTBEAT_DEV: u32 = 0x0002;
    pub const RESIZE_INPROG: u32 = 0x0004;
    pub const LOCAL_MOUNT: u32 = 0x0008;
    pub const SPARSE_ALLOC: u32 = 0x0010;
    pub const TUNEFS_INPROG: u32 = 0x0020;
    pub const INLINE_DATA: u32 = 0x0040;
    pub const USERSPACE_STACK: u32 = 0x0080;
    pub const EXTENDED_SLOT_MAP: u32 = 0x0100;
    pub const XATTR: u32 = 0x0200;
    pub const INDEXED_DIRS: u32 = 0x0400;
    pub const META_ECC: u32 = 0x0800;
    pub const REFCOUNT_TREE: u32 = 0x1000;
    pub const DISCONTIG_BG: u32 = 0x2000;
    pub const CLUSTERINFO: u32 = 0x4000;
    pub const APPEND_DIO: u32 = 0x8000;
    /// Multiple mount protection (seed patch; never merged upstream).
    pub const MMP: u32 = 0x1_0000;
}

pub mod ro_compat {
    pub const UNWRITTEN: u32 = 0x0001;
    pub const USRQUOTA: u32 = 0x0002;
    pub const GRPQUOTA: u32 = 0x0004;
}

/// Which of the three feature words a flag lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Compat,
    Incompat,
    RoCompat,
}

/// One named feature flag.
#[derive(Debug, Clone, Copy)]
pub struct Feature {
    pub name: &'static str,
    pub kind: Kind,
    pub mask: u32,
}

const fn f(name: &'static str, kind: Kind, mask: u32) -> Feature {
    Feature { name, kind, mask }
}

/// Every feature name, in the order `debugfs.ocfs2 -R stats` prints them
/// within each word (ocfs2-tools' `ocfs2_feature_names` table).
pub const FEATURES: &[Feature] = &[
    f("heartbeat-device", Kind::Incompat, incompat::HEARTBEAT_DEV),
    f("aborted-resize", Kind::Incompat, incompat::RESIZE_INPROG),
    f("local", Kind::Incompat, incompat::LOCAL_MOUNT),
    f("sparse", Kind::Incompat, incompat::SPARSE_ALLOC),
    f(
        "extended-slotmap",
        Kind::Incompat,
        incompat::EXTENDED_SLOT_MAP,
    ),
    f("aborted-tunefs", Kind::Incompat, incompat::TUNEFS_INPROG),
    f("userspace-stack", Kind::Incompat, incompat::USERSPACE_STACK),
    f("backup-super", Kind::Compat, compat::BACKUP_SB),
    f("unwritten", Kind::RoCompat, ro_compat::UNWRITTEN),
    f("inline-data", Kind::Incompat, incompat::INLINE_DATA),
    f("strict-journal-super", Kind::Compat, compat::JBD2_SB),
    f("metaecc", Kind::Incompat, incompat::META_ECC),
    f("xattr", Kind::Incompat, incompat::XATTR),
    f("indexed-dirs", Kind::Incompat, incompat::INDEXED_DIRS),
    f("usrquota", Kind::RoCompat, ro_compat::USRQUOTA),
    f("grpquota", Kind::RoCompat, ro_compat::GRPQUOTA),
    f("refcount", Kind::Incompat, incompat::REFCOUNT_TREE),
    f("discontig-bg", Kind::Incompat, incompat::DISCONTIG_BG),
    f("clusterinfo", Kind::Incompat, incompat::CLUSTERINFO),
    f("append-dio", Kind::Incompat, incompat::APPEND_DIO),
    f("mmp", Kind::Incompat, incompat::MMP),
];

/// Bits this suite understands, per word. Anything else is unknown.
pub const KNOWN_COMPAT: u32 = compat::BACKUP_SB | compat::JBD2_SB;
pub const KNOWN_INCOMPAT: u32 = 0x1_FFFE;
pub const KNOWN_RO_COMPAT: u32 = ro_compat::UNWRITTEN | ro_compat::USRQUOTA | ro_compat::GRPQUOTA;

/// The three feature words of a superblock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeatureSet {
    pub compat: u32,
    pub incompat: u32,
    pub ro_compat: u32,
}

/// Feature names per word, for display and JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FeatureNames {
    pub compat: Vec<String>,
    pub incompat: Vec<String>,
    pub ro_compat: Vec<String>,
}

impl FeatureSet {
    pub fn word(&self, kind: Kind) -> u32 {
        match kind {
            Kind::Compat => self.compat,
            Kind::Incompat => self.incompat,
            Kind::RoCompat => self.ro_compat,
        }
    }

    pub fn has(&self, kind: Kind, mask: u32) -> bool {
        self.word(kind) & mask == mask
    }

    pub fn has_incompat(&self, mask: u32) -> bool {
        self.incompat & mask == mask
    }

    /// Names of the set bits, in ocfs2-tools' order; unknown bits as `0x...`.
    pub fn names(&self) -> FeatureNames {
        let mut out = FeatureNames::default();
        for (kind, list) in [
            (Kind::Compat, &mut out.compat),
            (Kind::Incompat, &mut out.incompat),
            (Kind::RoCompat, &mut out.ro_compat),
        ] {
            let word = self.word(kind);
            let mut seen = 0u32;
            for feat in FEATURES.iter().filter(|x| x.kind == kind) {
                if word & feat.mask != 0 {
                    list.push(feat.name.to_string());
                    seen |= feat.mask;
                }
            }
            let rest = word & !seen;
            for bit in 0..32 {
                if rest & (1 << bit) != 0 {
                    list.push(format!("unknown-{:#x}", 1u32 << bit));
                }
            }
        }
        out
    }

    /// Bits no tool of this suite knows.
    pub fn unknown(&self) -> FeatureSet {
        FeatureSet {
            compat: self.compat & !KNOWN_COMPAT,
            incompat: self.incompat & !KNOWN_INCOMPAT,
            ro_compat: self.ro_compat & !KNOWN_RO_COMPAT,
        }
    }
}

/// Look a feature up by its name.
pub fn by_name(name: &str) -> Option<&'static Feature> {
    FEATURES.iter().find(|x| x.name == name)
}

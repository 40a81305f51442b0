//! Options to geometry: the choices `mkfs.ocfs2` 1.8.7 makes (block size,
//! cluster size, slots, journal and allocator sizes, features), as a pure
//! function of the options and the device's size. See docs/mkfs-layout.md §1.

use ocfs2_format::features::{compat, incompat, ro_compat, FeatureSet};
use ocfs2_format::ondisk;

/// `-T` volume types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsType {
    #[default]
    Default,
    Mail,
    Datafiles,
    Vmstore,
}

/// `--fs-feature-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeatureLevel {
    #[default]
    Default,
    MaxCompat,
    MaxFeatures,
}

impl FeatureLevel {
    pub fn features(self) -> FeatureSet {
        let base_incompat = incompat::SPARSE_ALLOC
            | incompat::EXTENDED_SLOT_MAP
            | incompat::INLINE_DATA
            | incompat::XATTR
            | incompat::REFCOUNT_TREE
            | incompat::INDEXED_DIRS
            | incompat::DISCONTIG_BG
            | incompat::APPEND_DIO;
        let c = compat::BACKUP_SB | compat::JBD2_SB;
        match self {
            FeatureLevel::Default => FeatureSet {
                compat: c,
                incompat: base_incompat,
                ro_compat: ro_compat::UNWRITTEN,
            },
            FeatureLevel::MaxCompat => FeatureSet {
                compat: c,
                incompat: 0,
                ro_compat: 0,
            },
            FeatureLevel::MaxFeatures => FeatureSet {
                compat: c,
                incompat: base_incompat | incompat::META_ECC,
                ro_compat: ro_compat::UNWRITTEN | ro_compat::USRQUOTA | ro_compat::GRPQUOTA,
            },
        }
    }
}

/// What the user asked for, validated for form (ranges, names) but not yet
/// against the device.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub block_size: Option<u32>,
    pub cluster_size: Option<u32>,
    pub slots: Option<u16>,
    pub label: Vec<u8>,
    pub journal_bytes: Option<u64>,
    pub journal_block64: bool,
    pub local: bool,
    pub fs_type: FsType,
    pub level: FeatureLevel,
    /// `--fs-features` names turned on / off (already expanded).
    pub features_on: FeatureSet,
    pub features_off: FeatureSet,
    pub uuid: Option<[u8; 16]>,
    pub no_backup_super: bool,
    pub mmp_interval: u16,
    pub cluster_stack: Option<String>,
    pub cluster_name: Option<String>,
    pub global_heartbeat: bool,
    /// Second positional argument: the volume's size in blocks.
    pub blocks: Option<u64>,
}

/// Everything mkfs derives before it writes.
#[derive(Debug, Clone)]
pub struct Plan {
    pub block_size: u32,
    pub block_bits: u32,
    pub cluster_size: u32,
    pub cluster_bits: u32,
    pub clusters: u32,
    pub volume_bytes: u64,
    pub volume_blocks: u64,
    pub slots: u16,
    pub journal_bytes: u64,
    /// Extent allocator clusters per slot.
    pub extent_alloc_clusters: u32,
    /// Clusters per cluster group (`min(gbits, C)`), groups, tail bits.
    pub global_cpg: u32,
    pub cluster_groups: u32,
    pub tail_group_bits: u32,
    pub features: FeatureSet,
    pub label: Vec<u8>,
    pub fs_type: FsType,
    pub local: bool,
    pub journal_block64: bool,
    pub mmp_interval: u16,
    pub cluster_stack: Option<String>,
    pub cluster_name: Option<String>,
    pub global_heartbeat: bool,
    pub backup_super: bool,
}

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("the device is empty (0 bytes)")]
    Empty,
    #[error("{0}")]
    Invalid(String),
    #[error("too small: {0}")]
    TooSmall(String),
}

/// Suballocator clusters per group (`ocfs2_clusters_per_group`).
pub fn suballoc_cpg(block_size: u32, cluster_bits: u32) -> u32 {
    let bytes: u32 = match block_size {
        512 => 1 << 20,
        1024 => 2 << 20,
        _ => 4 << 20,
    };
    (bytes >> cluster_bits).max(1)
}

/// Cluster-group bitmap bits for a block size: `8 * (bs - 64)`.
pub fn global_group_bits(block_size: u32) -> u32 {
    8 * (block_size - 64)
}

fn initial_slots_for_volume(bytes: u64) -> u16 {
    match bytes >> 30 {
        0..=1 => 2,
        2..=9 => 4,
        10..=1023 => 8,
        _ => 16,
    }
}

fn journal_blocks_default(t: FsType, vol_blocks: u64) -> u64 {
    match t {
        FsType::Datafiles => 8192,
        FsType::Mail => match vol_blocks {
            0..=262_143 => 16384,
            262_144..=524_287 => 32768,
            _ => 65536,
        },
        FsType::Vmstore => match vol_blocks {
            0..=262_143 => 8192,
            262_144..=524_287 => 16384,
            _ => 32768,
        },
        FsType::Default => {
            if vol_blocks < 32768 {
                0 // 4 MiB / bs, filled in by the caller
            } else if vol_blocks < 262_144 {
                4096
            } else {
                (vol_blocks / 160).clamp(16384, 65536)
            }
        }
    }
}

fn extent_alloc_clusters(p: &Plan) -> u32 {
    if p.slots == 0 {
        return 0;
    }
    let target = match p.fs_type {
        FsType::Datafiles | FsType::Vmstore => 0.3,
        _ => 0.1,
    };
    let cpg = suballoc_cpg(p.block_size, p.cluster_bits);
    let unit = u64::from(cpg) * u64::from(p.cluster_size) * u64::from(p.slots);
    let mut total = unit;
    let mut groups = 1u32;
    let mut pct;
    loop {
        pct = total as f64 * 100.0 / p.volume_bytes as f64;
        if pct >= target {
            break;
        }
        total += unit;
        groups += 1;
    }
    if pct > 5.0 {
        groups -= 1;
    }
    cpg * groups
}

/// Derive the plan from options, the device size and its sector size.
pub fn make_plan(o: &Options, device_bytes: u64, sector_size: u32) -> Result<Plan, PlanError> {
    if device_bytes == 0 {
        return Err(PlanError::Empty);
    }
    let sector = sector_size.max(512);
    let provisional = o.block_size.unwrap_or(ondisk::MAX_BLOCKSIZE);
    if provisional < sector {
        return Err(PlanError::Invalid(format!(
            "the device has a hardware sector size ({sector}) that is larger than the selected block size ({provisional})"
        )));
    }
    let dev_blocks = device_bytes / u64::from(provisional);
    if let Some(b) = o.blocks {
        if b > dev_blocks {
            return Err(PlanError::Invalid(format!(
                "{b} blocks were specified and this is greater than the {dev_blocks} blocks that make up the device"
            )));
        }
    }
    let mut bytes = o.blocks.unwrap_or(dev_blocks) * u64::from(provisional);
    let block_size = match o.block_size {
        Some(b) => b,
        None => {
            let b = if bytes <= 3 << 20 {
                512
            } else if bytes < 512 << 20 {
                1024
            } else if bytes < 1 << 30 {
                2048
            } else {
                4096
            };
            bytes = match o.blocks {
                Some(n) => n * u64::from(b),
                None => device_bytes / u64::from(b) * u64::from(b),
            };
            b
        }
    };
    let block_bits = block_size.trailing_zeros();
    let cluster_size = match o.cluster_size {
        Some(c) => c,
        None => match o.fs_type {
            FsType::Datafiles | FsType::Vmstore => {
                let gigs = bytes >> 30;
                if gigs < 2 {
                    return Err(PlanError::TooSmall(
                        "the selected file system type requires a device of at least 2 gigabytes"
                            .into(),
                    ));
                }
                (match gigs {
                    0..=63 => 128,
                    64..=95 => 256,
                    96..=127 => 512,
                    _ => 1024,
                }) * 1024
            }
            _ => {
                let mut cs = ondisk::MIN_CLUSTERSIZE;
                while cs < ondisk::MAX_CLUSTERSIZE
                    && (bytes >> cs.trailing_zeros()) > u64::from(u32::MAX - 1)
                {
                    cs <<= 1;
                }
                cs
            }
        },
    };
    if cluster_size < block_size {
        return Err(PlanError::Invalid(format!(
            "cluster size {cluster_size} is smaller than block size {block_size}"
        )));
    }
    let cluster_bits = cluster_size.trailing_zeros();
    let clusters64 = bytes >> cluster_bits;
    if clusters64 > u64::from(u32::MAX - 1) {
        return Err(PlanError::Invalid(format!(
            "the volume would have {clusters64} clusters; OCFS2 allows at most {}: use a larger cluster size",
            u32::MAX - 1
        )));
    }
    let clusters = clusters64 as u32;
    if clusters == 0 {
        return Err(PlanError::TooSmall(format!(
            "{bytes} bytes hold no {cluster_size}-byte cluster"
        )));
    }
    let volume_bytes = u64::from(clusters) << cluster_bits;
    let volume_blocks = volume_bytes >> block_bits;
    let gbits = global_group_bits(block_size);
    let global_cpg = gbits.min(clusters);
    let cluster_groups = clusters.div_ceil(global_cpg);
    let tail = match clusters % global_cpg {
        0 => global_cpg,
        t => t,
    };
    let slots = match o.slots {
        Some(n) => n,
        None if o.local => 1,
        None => initial_slots_for_volume(volume_bytes),
    };

    // Features: level, then the named ones on and off.
    let mut f = o.level.features();
    f.compat |= o.features_on.compat;
    f.incompat |= o.features_on.incompat;
    f.ro_compat |= o.features_on.ro_compat;
    f.compat &= !o.features_off.compat;
    f.incompat &= !o.features_off.incompat;
    f.ro_compat &= !o.features_off.ro_compat;
    if o.no_backup_super {
        f.compat &= !compat::BACKUP_SB;
    }
    if o.local {
        f.incompat |= incompat::LOCAL_MOUNT;
    }
    if !o.local && o.cluster_stack.is_some() {
        f.incompat |= incompat::EXTENDED_SLOT_MAP;
        if o.cluster_stack.as_deref() == Some("o2cb") {
            f.incompat |= incompat::CLUSTERINFO;
        } else {
            f.incompat |= incompat::USERSPACE_STACK;
        }
    }
    if f.has_incompat(incompat::MMP) && !f.has_incompat(incompat::EXTENDED_SLOT_MAP) {
        return Err(PlanError::Invalid(
            "MMP needs the extended slot map (the kernel refuses an MMP mount of a volume with the old one): \
             drop noextended-slotmap or --fs-feature-level=max-compat, or add extended-slotmap"
                .into(),
        ));
    }

    // Journal size (figure_journal_size).
    if volume_blocks < 2048 {
        return Err(PlanError::TooSmall(format!(
            "{volume_blocks} blocks of {block_size} bytes: too small for a journal (2048 blocks at least)"
        )));
    }
    let min_journal = (u64::from(cluster_size) << 3) + u64::from(cluster_size);
    let round_up = |b: u64| b.div_ceil(u64::from(cluster_size)) * u64::from(cluster_size);
    let fits = |jb: u64| jb * u64::from(slots) + 1024 <= volume_blocks;
    let journal_bytes = match o.journal_bytes {
        Some(sz) => {
            if !fits(sz >> block_bits) {
                return Err(PlanError::TooSmall(
                    "journal size too big for the file system".into(),
                ));
            }
            let r = round_up(sz);
            if r < min_journal {
                return Err(PlanError::Invalid(format!(
                    "journal size too small for the file system: at least {min_journal} bytes with {cluster_size}-byte clusters"
                )));
            }
            r
        }
        None => {
            let mut jb = journal_blocks_default(o.fs_type, volume_blocks);
            if jb == 0 {
                jb = (ondisk_min_journal() / u64::from(block_size)).max(1);
            }
            let mut r = round_up(jb << block_bits);
            if r < min_journal {
                r = min_journal;
                if !fits(r >> block_bits) {
                    return Err(PlanError::TooSmall(
                        "volume size too small for the required configuration: increase the volume size or reduce the cluster size"
                            .into(),
                    ));
                }
            }
            r
        }
    };
    if volume_blocks > u64::from(u32::MAX) && !o.journal_block64 {
        return Err(PlanError::Invalid(format!(
            "{volume_blocks} blocks do not fit jbd2's 32-bit block numbers: use -J block64 or a larger block size"
        )));
    }

    let mut plan = Plan {
        block_size,
        block_bits,
        cluster_size,
        cluster_bits,
        clusters,
        volume_bytes,
        volume_blocks,
        slots,
        journal_bytes,
        extent_alloc_clusters: 0,
        global_cpg,
        cluster_groups,
        tail_group_bits: tail,
        backup_super: f.compat & compat::BACKUP_SB != 0,
        features: f,
        label: o.label.clone(),
        fs_type: o.fs_type,
        local: o.local,
        journal_block64: o.journal_block64,
        mmp_interval: o.mmp_interval,
        cluster_stack: o.cluster_stack.clone(),
        cluster_name: o.cluster_name.clone(),
        global_heartbeat: o.global_heartbeat,
    };
    plan.extent_alloc_clusters = extent_alloc_clusters(&plan);
    Ok(plan)
}

fn ondisk_min_journal() -> u64 {
    4 << 20
}

impl Plan {
    pub fn bpc(&self) -> u32 {
        self.cluster_size / self.block_size
    }
    pub fn inline_data(&self) -> bool {
        self.features.has_incompat(incompat::INLINE_DATA)
    }
    pub fn meta_ecc(&self) -> bool {
        self.features.has_incompat(incompat::META_ECC)
    }
    pub fn indexed_dirs(&self) -> bool {
        self.features.has_incompat(incompat::INDEXED_DIRS)
    }
    /// Directory blocks end in a trailer (`ocfs2_supports_dir_trailer`).
    pub fn dir_trailers(&self) -> bool {
        self.meta_ecc() || self.indexed_dirs()
    }
    pub fn extended_slot_map(&self) -> bool {
        self.features.has_incompat(incompat::EXTENDED_SLOT_MAP)
    }
    pub fn suballoc_cpg(&self) -> u32 {
        suballoc_cpg(self.block_size, self.cluster_bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(bytes: u64, o: Options) -> Plan {
        make_plan(&o, bytes, 512).unwrap()
    }

    #[test]
    fn geometry_of_verified_images() {
        // docs/mkfs-layout.md §6, image a: 1G -M local -N 2
        let p = plan(
            1 << 30,
            Options {
                local: true,
                slots: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(
            (p.block_size, p.cluster_size, p.clusters),
            (4096, 4096, 262_144)
        );
        assert_eq!(
            (p.global_cpg, p.cluster_groups, p.tail_group_bits),
            (32256, 9, 4096)
        );
        assert_eq!(p.journal_bytes, 67_108_864);
        assert_eq!(p.extent_alloc_clusters * 4096, 4_194_304);
        // image c: 256M -b 512 -C 4K -N 4
        let p = plan(
            256 << 20,
            Options {
                block_size: Some(512),
                cluster_size: Some(4096),
                slots: Some(4),
                local: true,
                ..Default::default()
            },
        );
        assert_eq!(p.journal_bytes, 8_388_608);
        assert_eq!(p.extent_alloc_clusters * 4096, 1_048_576);
        // image e: 5G -b 2K -C 64K -T vmstore
        let p = plan(
            5 << 30,
            Options {
                block_size: Some(2048),
                cluster_size: Some(65536),
                fs_type: FsType::Vmstore,
                local: true,
                ..Default::default()
            },
        );
        assert_eq!(p.clusters, 81920);
        assert_eq!(p.journal_bytes, 67_108_864);
        assert_eq!(u64::from(p.extent_alloc_clusters) * 65536, 16_777_216);
        // image f: 4G -T datafiles
        let p = plan(
            4 << 30,
            Options {
                fs_type: FsType::Datafiles,
                local: true,
                ..Default::default()
            },
        );
        assert_eq!(p.cluster_size, 131_072);
        assert_eq!(p.journal_bytes, 33_554_432);
        // image k: 7M
        let p = plan(
            7 << 20,
            Options {
                local: true,
                ..Default::default()
            },
        );
        assert_eq!((p.block_size, p.clusters), (1024, 1792));
        assert_eq!(p.journal_bytes, 4_194_304);
        assert_eq!(p.extent_alloc_clusters, 0);
        // image d: 3G -b 1K -C 8K -T mail, cluster mode -> 4 slots
        let p = plan(
            3 << 30,
            Options {
                block_size: Some(1024),
                cluster_size: Some(8192),
                fs_type: FsType::Mail,
                ..Default::default()
            },
        );
        assert_eq!(p.slots, 4);
        assert_eq!(p.clusters, 393_216);
        assert_eq!(p.journal_bytes, 67_108_864);
        // image l: 20G -N 8
        let p = plan(
            20 << 30,
            Options {
                slots: Some(8),
                local: true,
                ..Default::default()
            },
        );
        assert_eq!(p.journal_bytes, 134_217_728);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            make_plan(&Options::default(), 0, 512).unwrap_err(),
            PlanError::Empty
        );
        assert!(matches!(
            make_plan(&Options::default(), 512 << 10, 512),
            Err(PlanError::TooSmall(_))
        ));
        let mmp_old = Options {
            level: FeatureLevel::MaxCompat,
            features_on: FeatureSet {
                incompat: incompat::MMP,
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(make_plan(&mmp_old, 1 << 30, 512)
            .unwrap_err()
            .to_string()
            .contains("extended slot map"));
    }
}

//! Pass 7: the global bitmap against the clusters in use (fills `bitmap_diff`).

use super::*;

impl Checker<'_> {
    pub(super) fn pass7(&mut self) {
        let mut extra = 0u64;
        let mut missing = 0u64;
        let nbytes = self.used.0.len();
        let mut i = 0usize;
        while i < nbytes {
            // Skip equal stretches eight bytes at a time.
            if i + 8 <= nbytes && self.used.0[i..i + 8] == self.bitmap_used.0[i..i + 8] {
                i += 8;
                continue;
            }
            let diff = self.used.0[i] ^ self.bitmap_used.0[i];
            for bit in 0..8u64 {
                let c = i as u64 * 8 + bit;
                if diff & (1 << bit) == 0 || c >= self.clusters {
                    continue;
                }
                let on_disk = self.bitmap_used.get(c);
                self.bitmap_diff.push((c, !on_disk));
                if on_disk {
                    extra += 1;
                } else {
                    missing += 1;
                }
                if self.limit_reports < 10 {
                    self.limit_reports += 1;
                    let msg = if on_disk {
                        format!("cluster {c} is marked in use in the global bitmap, but nothing uses it")
                    } else {
                        format!("cluster {c} is in use, but the global bitmap says it is free")
                    };
                    self.add("CLUSTER_ALLOC_BIT", Some(c * self.bpc), None, msg);
                }
            }
            i += 1;
        }
        if extra + missing > self.limit_reports as u64 {
            self.add(
                "CLUSTER_ALLOC_BIT",
                None,
                None,
                format!("in all, {extra} cluster(s) marked but unused and {missing} used but free"),
            );
        }
    }
}

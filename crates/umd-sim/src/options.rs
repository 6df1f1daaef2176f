//! Swarm options: one seed derives every choice of a run (level, shape,
//! bitmap, operation mix, fault rates), so different seeds stress different
//! corners and a failing seed replays exactly.

use crate::rng::Rng;
use crate::world::{ArraySpec, DDF_RESERVED_BYTES};

/// Everything a run does, drawn from its seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The array.
    pub array: ArraySpec,
    /// Front-end operations to issue.
    pub ops: u32,
    /// Percent of operations that are writes (the rest: flushes, reads,
    /// time passing, faults, crashes in the proportions below).
    pub write_percent: u64,
    /// Of writes: percent with FUA, percent that are trims (zeroes).
    pub fua_percent: u64,
    /// Of writes: percent that are trims.
    pub trim_percent: u64,
    /// Percent of operations that are FLUSH.
    pub flush_percent: u64,
    /// Percent of operations that are reads.
    pub read_percent: u64,
    /// Percent chance per operation of a power loss (at most `crashes_max`).
    pub crash_percent: u64,
    /// Power losses at most.
    pub crashes_max: u32,
    /// Percent chance per operation of a member fault (within redundancy).
    pub fault_percent: u64,
    /// Faults may be latent sector errors (else members only vanish).
    /// Off by default: a sync that meets one stops and never completes
    /// (the host fails the member only for front-end I/O errors), which
    /// every such seed reports; docs/simulation.md, known gaps.
    pub latent_faults: bool,
    /// Percent chance the md thread's pass runs at each scheduling point.
    pub md_interleave_percent: u64,
    /// External metadata: percent chance the manager's pass runs at each
    /// scheduling point (a write waiting for it forces it after a few).
    pub manager_interleave_percent: u64,
    /// Largest write in sectors.
    pub write_sectors_max: u64,
    /// Writes land in the first this many sectors (a small hot area makes
    /// stripes collide).
    pub hot_sectors: u64,
    /// Percent of the operations that are neither writes, flushes nor
    /// reads that change `stripe_cache_size` (raid5/6; drawn for external
    /// metadata only, so native seeds keep their workloads).
    pub stripe_cache_percent: u64,
    /// Native arrays: percent chance per operation, while the array is
    /// degraded, of the spare action (failed members removed, a blank disk
    /// added as a spare); a quarter of it otherwise (a hot spare waiting
    /// for the next failure). Drawn apart from the other options, so a
    /// seed's workload is the same until a spare is added.
    pub spare_percent: u64,
    /// Percent chance per operation of the grow action (native raid5/6
    /// without a bitmap; at most one grow per run). Drawn apart, so a
    /// seed's workload is the same until the array grows.
    pub grow_percent: u64,
    /// Percent chance per operation, while the array is whole and nothing
    /// is being replaced, of the replace action (`umd manage --replace`,
    /// native 1.x). Drawn apart, so a seed's workload is the same until a
    /// member is replaced.
    pub replace_percent: u64,
    /// Crash-point enumeration of a rebuild: at this operation the first
    /// member in sync is failed by hand (`umd manage --fail`), once, so a
    /// waiting spare is activated and rebuilt with every member write of
    /// it a crash point. `None` in random runs.
    pub fail_at_op: Option<u32>,
    /// Percent chance that a power loss of the whole array, its parity in
    /// sync, also loses a member: it restarts dirty and degraded, which a
    /// raid5 with a partial parity log survives and any other parity array
    /// refuses (md's rule). Drawn from its own generator; drawn for PPL
    /// seeds only.
    pub loss_at_crash_percent: u64,
}

impl Options {
    /// The options of `seed`; `level` pins the level.
    #[must_use]
    pub fn from_seed(seed: u64, level: Option<i32>) -> Self {
        let mut rng = Rng::new(seed ^ 0x005e_ed0f_0071_0115);
        let level = level.unwrap_or(match rng.below(3) {
            0 => 1,
            1 => 5,
            _ => 6,
        });
        let raid_disks = match level {
            1 => rng.range(2, 3) as u32,
            5 => rng.range(3, 5) as u32,
            _ => rng.range(4, 6) as u32,
        };
        let bitmap_chunk_kib = rng
            .chance(50)
            .then(|| [64, 128, 256][rng.below(3) as usize]);
        // Drawn apart, so the other draws stay as they were.
        let v090 = Rng::new(seed ^ 0x0090_5eed_0000_0090).chance(20);
        // md's partial parity log: raid5 on 1.x without a bitmap (md allows
        // neither 0.90 nor both); drawn apart too.
        let ppl = level == 5
            && !v090
            && bitmap_chunk_kib.is_none()
            && Rng::new(seed ^ 0x0991_5eed_0000_0005).chance(60);
        let mut opts = Self {
            array: ArraySpec {
                level,
                raid_disks,
                chunk_kib: [4, 8, 16][rng.below(3) as usize],
                bitmap_chunk_kib,
                assume_clean: rng.chance(50),
                member_bytes: 4 << 20,
                external: false,
                v090,
                container_spares: 0,
                ppl,
            },
            ops: rng.range(40, 160) as u32,
            write_percent: rng.range(30, 70),
            fua_percent: rng.range(0, 30),
            trim_percent: rng.range(0, 15),
            flush_percent: rng.range(3, 20),
            read_percent: rng.range(5, 20),
            crash_percent: rng.range(1, 8),
            crashes_max: rng.range(1, 4) as u32,
            fault_percent: rng.range(0, 4),
            latent_faults: false,
            md_interleave_percent: rng.range(0, 40),
            write_sectors_max: rng.range(1, 96),
            hot_sectors: [256, 1024, 4096][rng.below(3) as usize],
            manager_interleave_percent: 0,
            stripe_cache_percent: 0,
            spare_percent: Rng::new(seed ^ 0x05ba_4e5e_ed00_0007).range(0, 12),
            grow_percent: Rng::new(seed ^ 0x06c0_3e5e_ed00_0009).range(0, 4),
            replace_percent: Rng::new(seed ^ 0x07e9_1ace_ed00_000b).range(0, 6),
            fail_at_op: None,
            loss_at_crash_percent: 0,
        };
        if ppl {
            opts.loss_at_crash_percent = 50;
            // md replaces no member of a PPL array.
            opts.replace_percent = 0;
        }
        opts
    }

    /// The options of `seed` with the array a DDF container subarray run by
    /// the simulated manager (no internal bitmap: DDF has none). The
    /// native draws are made first and kept, so a seed's workload is the
    /// same either way.
    #[must_use]
    pub fn from_seed_external(seed: u64, level: Option<i32>) -> Self {
        let mut opts = Self::from_seed(seed, level);
        let mut rng = Rng::new(seed ^ 0x0ddf_0ddf_5eed_0001);
        opts.array.external = true;
        opts.array.v090 = false;
        opts.array.bitmap_chunk_kib = None;
        opts.array.ppl = false;
        // The container's global spares made with it, drawn apart so the
        // workload stays; the spare action (`spare_percent`, as drawn for
        // native seeds) gives the running container blank disks. The
        // replace action is native 1.x only, and umd grows native arrays
        // only.
        opts.array.container_spares = Rng::new(seed ^ 0x0ddf_5a4e_5eed_0003).below(3) as u32;
        opts.grow_percent = 0;
        opts.replace_percent = 0;
        opts.array.member_bytes = DDF_RESERVED_BYTES + (4 << 20);
        opts.manager_interleave_percent = rng.range(0, 50);
        opts.stripe_cache_percent = if opts.array.level == 1 {
            0
        } else {
            rng.range(5, 30)
        };
        opts
    }

    /// The metadata kind, as `--external true|false` replays it.
    #[must_use]
    pub fn external(&self) -> bool {
        self.array.external
    }
}

//! Replaying md's partial parity log after a crash, sans-I/O: which member
//! ranges one logged entry reads and which parity range it rewrites
//! (formats.md §2.11).
//!
//! Why: an entry was written, and made durable, before any data or parity
//! write of its stripe. Its partial parity is the XOR of the old data of the
//! chunks the write left alone; those chunks were not written, so it is still
//! their XOR now. The modified chunks hold old data, new data or a mix after
//! the crash. Parity rebuilt as partial parity XOR their current data is
//! therefore consistent with whatever landed, and the stripe's other chunks
//! rebuild right when a member is then missing. Entries of full-stripe writes
//! carry no partial parity: their parity is the XOR of the data.
//!
//! The ranges follow md's reading of an entry (raid5-ppl.c's recovery), so
//! logs that md wrote and logs that umd wrote replay the same way:
//! `data_sector` is the first modified array sector; with partial parity
//! shorter than a chunk, the entry covers `data_size / pp_size` consecutive
//! data chunks over `pp_size / 512` rows; with no partial parity, every data
//! chunk over `data_size / 512 / d` rows; with a chunk of partial parity (or
//! more), every data chunk over a chunk of rows, each row only on the chunks
//! that lie below `data_sector + data_size / 512`.

pub mod start;

use umd_formats::ppl::PplEntry;
use umd_layout::geometry::{Copy, Geometry, Level, StripeLayout, Target};

/// Bytes in a sector.
const SECTOR: u64 = 512;

/// One data chunk's part of a replayed entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayData {
    /// Where its first row is (member sector relative to the data offset).
    pub at: Copy,
    /// Rows (sectors) of it that take part: a prefix of the entry's rows.
    pub rows: u64,
}

/// What replaying one entry does: parity rows `[0, rows)` at `parity` become
/// the entry's partial parity (if any) XOR, per row, the current data of
/// every `data` chunk whose `rows` reach past that row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayPlan {
    /// Rows (sectors) of parity rewritten.
    pub rows: u64,
    /// The data chunks read, in array order.
    pub data: Vec<ReplayData>,
    /// Where the parity rows go (the parity member, relative to its data offset).
    pub parity: Copy,
    /// Whether the entry has partial parity (`pp_size` > 0) to XOR in.
    pub has_pp: bool,
}

/// Why an entry cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRefused(pub String);

impl std::fmt::Display for ReplayRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReplayRefused {}

/// Plan the replay of `entry`, found in the log of the member with role
/// `log_role`, on a raid5 of `geometry`.
pub fn plan_replay(
    geometry: &Geometry,
    entry: &PplEntry,
    log_role: u32,
) -> Result<ReplayPlan, ReplayRefused> {
    let refuse = |why: &str| {
        Err(ReplayRefused(format!(
            "entry at array sector {} ({} bytes of data, {} of partial parity): {why}",
            entry.data_sector, entry.data_size, entry.pp_size
        )))
    };
    if geometry.level() != Level::Raid5 {
        return refuse("only raid5 has a partial parity log");
    }
    let chunk = u64::from(geometry.chunk_sectors());
    let d = u64::from(geometry.raid_disks() - 1);
    let (pp, size) = (u64::from(entry.pp_size), u64::from(entry.data_size));
    if !pp.is_multiple_of(SECTOR) || size == 0 || !size.is_multiple_of(SECTOR) {
        return refuse("sizes are not whole sectors");
    }
    let first = entry.data_sector;
    let (disks, strip, last) = if pp / SECTOR < chunk {
        let (disks, strip) = if pp > 0 {
            if !size.is_multiple_of(pp) {
                return refuse("data_size is not a multiple of pp_size");
            }
            (size / pp, pp / SECTOR)
        } else {
            if !(size / SECTOR).is_multiple_of(d) {
                return refuse("a full-stripe entry's data does not fill every chunk equally");
            }
            (d, size / SECTOR / d)
        };
        if disks == 0 || disks > d {
            return refuse("more modified chunks than the stripe has");
        }
        (disks, strip, first + (disks - 1) * chunk + strip)
    } else {
        (d, chunk, first + size / SECTOR)
    };
    if strip == 0 || first % chunk + strip > chunk {
        return refuse("its rows leave the chunk");
    }
    if last > geometry.array_sectors() {
        return refuse("it reaches past the array's end");
    }
    let mut copies = Vec::new();
    let mut layout = StripeLayout::default();
    let mut data = Vec::new();
    let mut stripe_of_entry = None;
    for disk in 0..disks {
        let r = first + disk * chunk;
        if r >= last {
            break;
        }
        let rows = (last - r).min(strip);
        let Target::Striped { data: at, stripe } = geometry.locate(r, &mut copies).target else {
            return refuse("raid5 sectors are striped");
        };
        if stripe_of_entry.is_some_and(|s| s != stripe) {
            return refuse("its chunks lie in different stripes");
        }
        stripe_of_entry = Some(stripe);
        data.push(ReplayData { at, rows });
    }
    let (Some(stripe), Some(head)) = (stripe_of_entry, data.first()) else {
        return refuse("it covers no data");
    };
    geometry.stripe_layout(stripe, &mut layout);
    if layout.p_role != entry.parity_disk || layout.p_role != log_role {
        return refuse(&format!(
            "its parity member is role {} in the entry and {} by the layout, logged on role {}",
            entry.parity_disk, layout.p_role, log_role
        ));
    }
    let (rows, parity) = (
        head.rows,
        Copy {
            role: layout.p_role,
            dev_sector: head.at.dev_sector,
        },
    );
    Ok(ReplayPlan {
        rows,
        data,
        parity,
        has_pp: pp > 0,
    })
}

impl ReplayPlan {
    /// The new parity rows: `pp` (the entry's partial parity, `rows` x 512
    /// bytes, when it has some) XOR, row by row, the current data of each
    /// chunk in `data` (same order as [`ReplayPlan::data`], each at least
    /// its `rows` x 512 bytes) whose rows reach that row. `out` is `rows` x
    /// 512 bytes.
    pub fn parity(&self, pp: Option<&[u8]>, data: &[&[u8]], out: &mut [u8]) {
        let len = self.rows as usize * SECTOR as usize;
        assert_eq!(out.len(), len, "one parity row per entry row");
        assert_eq!(data.len(), self.data.len(), "one buffer per data chunk");
        match pp {
            Some(pp) => out.copy_from_slice(&pp[..len]),
            None => out.fill(0),
        }
        for (chunk, bytes) in self.data.iter().zip(data) {
            let n = chunk.rows as usize * SECTOR as usize;
            for (o, b) in out[..n].iter_mut().zip(&bytes[..n]) {
                *o ^= b;
            }
        }
    }
}

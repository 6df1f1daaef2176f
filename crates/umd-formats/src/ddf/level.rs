//! DDF RAID level codes and their md equivalents, as mdadm maps them.
//!
//! A DDF virtual disk names its layout by primary RAID level (PRL), qualifier
//! (RLQ) and, for spanned sets, a secondary level (SRL). mdadm runs the md
//! personality whose layout is identical on disk (formats.md §5.1, mdadm
//! `layout_ddf2md`); anything else is refused, as mdadm refuses it.

use super::config::VdConfig;

/// PRL: striping (mdadm `DDF_RAID0`).
pub const PRL_RAID0: u8 = 0x00;
/// PRL: mirroring (mdadm `DDF_RAID1`).
pub const PRL_RAID1: u8 = 0x01;
/// PRL: dedicated parity (mdadm `DDF_RAID4`).
pub const PRL_RAID4: u8 = 0x04;
/// PRL: rotating parity (mdadm `DDF_RAID5`).
pub const PRL_RAID5: u8 = 0x05;
/// PRL: two rotating parities (mdadm `DDF_RAID6`).
pub const PRL_RAID6: u8 = 0x06;
/// PRL: integrated adjacent/offset mirroring (mdadm `DDF_RAID1E`).
pub const PRL_RAID1E: u8 = 0x11;
/// PRL: concatenation (mdadm `DDF_CONCAT`).
pub const PRL_CONCAT: u8 = 0x1f;

/// RLQ for RAID0 (mdadm `DDF_RAID0_SIMPLE`).
pub const RLQ_RAID0_SIMPLE: u8 = 0x00;
/// RLQ for a two-way mirror (mdadm `DDF_RAID1_SIMPLE`).
pub const RLQ_RAID1_SIMPLE: u8 = 0x00;
/// RLQ for a three-way mirror (mdadm `DDF_RAID1_MULTI`).
pub const RLQ_RAID1_MULTI: u8 = 0x01;
/// RLQ for RAID4 with parity on the last disk (mdadm `DDF_RAID4_N`).
pub const RLQ_RAID4_N: u8 = 0x01;
/// RLQ "0-restart" for RAID5 (mdadm `DDF_RAID5_0_RESTART`).
pub const RLQ_RAID5_0_RESTART: u8 = 0x00;
/// RLQ "0-restart" for RAID6: differs from RAID5's (mdadm `DDF_RAID6_0_RESTART`).
pub const RLQ_RAID6_0_RESTART: u8 = 0x01;
/// RLQ "N-restart" (mdadm `DDF_RAID5_N_RESTART`).
pub const RLQ_N_RESTART: u8 = 0x02;
/// RLQ "N-continue" (mdadm `DDF_RAID5_N_CONTINUE`).
pub const RLQ_N_CONTINUE: u8 = 0x03;
/// RLQ for RAID1E adjacent copies (mdadm `DDF_RAID1E_ADJACENT`).
pub const RLQ_RAID1E_ADJACENT: u8 = 0x00;
/// RLQ for RAID1E offset copies (mdadm `DDF_RAID1E_OFFSET`).
pub const RLQ_RAID1E_OFFSET: u8 = 0x01;
/// SRL: basic VDs striped (mdadm `DDF_2STRIPED`).
pub const SRL_STRIPED: u8 = 0x00;
/// SRL: basic VDs spanned (mdadm `DDF_2SPANNED`).
pub const SRL_SPANNED: u8 = 0x03;

/// md level numbers (formats.md §4).
const MD_LEVEL_LINEAR: i32 = -1;
/// md raid5 layout left-asymmetric (md `ALGORITHM_LEFT_ASYMMETRIC`).
pub const MD_LEFT_ASYMMETRIC: u32 = 0;
/// md raid5 layout right-asymmetric (md `ALGORITHM_RIGHT_ASYMMETRIC`).
pub const MD_RIGHT_ASYMMETRIC: u32 = 1;
/// md raid5 layout left-symmetric (md `ALGORITHM_LEFT_SYMMETRIC`).
pub const MD_LEFT_SYMMETRIC: u32 = 2;
/// md raid6 layout (md `ALGORITHM_ROTATING_ZERO_RESTART`).
pub const MD_ROTATING_ZERO_RESTART: u32 = 8;
/// md raid6 layout (md `ALGORITHM_ROTATING_N_RESTART`).
pub const MD_ROTATING_N_RESTART: u32 = 9;
/// md raid6 layout (md `ALGORITHM_ROTATING_N_CONTINUE`).
pub const MD_ROTATING_N_CONTINUE: u32 = 10;
/// md raid10 layout: 2 near copies (formats.md §4.6).
pub const MD_RAID10_NEAR2: u32 = 0x102;
/// md raid10 layout: 3 near copies.
pub const MD_RAID10_NEAR3: u32 = 0x103;
/// md raid10 layout: 2 offset copies.
pub const MD_RAID10_OFFSET2: u32 = 0x201;

/// How md sees one DDF virtual disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MdGeometry {
    /// md level (-1 linear, 0, 1, 4, 5, 6, 10).
    pub level: i32,
    /// md layout for that level.
    pub layout: u32,
    /// md raid_disks: all members of all basic VDs.
    pub raid_disks: u32,
    /// The level stripes data, so chunk_shift is meaningful.
    pub uses_chunk: bool,
}

/// The md level, layout and disk count for `config`, or why md cannot run it.
pub fn md_geometry(config: &VdConfig) -> Result<MdGeometry, &'static str> {
    let n = u32::from(config.prim_elmnt_count);
    if config.sec_elmnt_count > 1 {
        return secondary(config, n);
    }
    let (level, layout, uses_chunk) = match (config.prl, config.rlq) {
        (PRL_CONCAT, _) => (MD_LEVEL_LINEAR, 0, false),
        (PRL_RAID0, RLQ_RAID0_SIMPLE) => (0, 0, true),
        (PRL_RAID1, RLQ_RAID1_SIMPLE) if n == 2 => (1, 0, false),
        (PRL_RAID1, RLQ_RAID1_MULTI) if n == 3 => (1, 0, false),
        (PRL_RAID1E, RLQ_RAID1E_ADJACENT) => (10, MD_RAID10_NEAR2, true),
        (PRL_RAID1E, RLQ_RAID1E_OFFSET) => (10, MD_RAID10_OFFSET2, true),
        (PRL_RAID4, RLQ_RAID4_N) => (4, 0, true),
        (PRL_RAID5, RLQ_N_RESTART) => (5, MD_LEFT_ASYMMETRIC, true),
        (PRL_RAID5, RLQ_RAID5_0_RESTART) => (5, MD_RIGHT_ASYMMETRIC, true),
        (PRL_RAID5, RLQ_N_CONTINUE) => (5, MD_LEFT_SYMMETRIC, true),
        (PRL_RAID6, RLQ_N_RESTART) => (6, MD_ROTATING_N_RESTART, true),
        (PRL_RAID6, RLQ_RAID6_0_RESTART) => (6, MD_ROTATING_ZERO_RESTART, true),
        (PRL_RAID6, RLQ_N_CONTINUE) => (6, MD_ROTATING_N_CONTINUE, true),
        _ => return Err("RAID level and qualifier md cannot run"),
    };
    Ok(MdGeometry {
        level,
        layout,
        raid_disks: n,
        uses_chunk,
    })
}

/// The DDF description of an md level and layout: what a new configuration
/// record says (mdadm `layout_md2ddf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DdfLevel {
    /// Primary RAID level.
    pub prl: u8,
    /// RAID level qualifier.
    pub rlq: u8,
    /// Members per basic VD.
    pub prim_elmnt_count: u16,
    /// Basic VDs (1 = no secondary level).
    pub sec_elmnt_count: u8,
    /// Secondary RAID level ([`SRL_NONE`] without one).
    pub srl: u8,
}

/// SRL value of a VD without secondary level (mdadm `DDF_NO_SECONDARY`).
pub const SRL_NONE: u8 = 0xff;
/// The md raid4 layout mdadm accepts for DDF (parity on the last member).
const MD_RAID4_LAYOUT: u32 = 0;

/// How mdadm describes md `level`/`layout` over `raid_disks` in DDF (mdadm
/// `layout_md2ddf`), or why DDF cannot. raid10 near-2 (near-3) over a
/// multiple of 2 (3) disks becomes spanned two-way (three-way) mirrors; other
/// raid10 layouts become RAID1E.
pub fn ddf_level(level: i32, layout: u32, raid_disks: u32) -> Result<DdfLevel, &'static str> {
    let n = u16::try_from(raid_disks).map_err(|_| "too many members")?;
    let simple = |prl, rlq| DdfLevel {
        prl,
        rlq,
        prim_elmnt_count: n,
        sec_elmnt_count: 1,
        srl: SRL_NONE,
    };
    let mirrors = |width: u16, rlq| {
        let sets = u8::try_from(raid_disks / u32::from(width)).map_err(|_| "too many mirrors")?;
        Ok(DdfLevel {
            prl: PRL_RAID1,
            rlq,
            prim_elmnt_count: width,
            sec_elmnt_count: sets,
            srl: SRL_SPANNED,
        })
    };
    match (level, layout) {
        (MD_LEVEL_LINEAR, _) => Ok(simple(PRL_CONCAT, 0)),
        (0, _) => Ok(simple(PRL_RAID0, RLQ_RAID0_SIMPLE)),
        (1, _) if n == 2 => Ok(simple(PRL_RAID1, RLQ_RAID1_SIMPLE)),
        (1, _) if n == 3 => Ok(simple(PRL_RAID1, RLQ_RAID1_MULTI)),
        (1, _) => Err("DDF mirrors have two or three members"),
        (4, MD_RAID4_LAYOUT) => Ok(simple(PRL_RAID4, RLQ_RAID4_N)),
        (5, MD_LEFT_ASYMMETRIC) => Ok(simple(PRL_RAID5, RLQ_N_RESTART)),
        (5, MD_RIGHT_ASYMMETRIC) => Ok(simple(PRL_RAID5, RLQ_RAID5_0_RESTART)),
        (5, MD_LEFT_SYMMETRIC) => Ok(simple(PRL_RAID5, RLQ_N_CONTINUE)),
        (6, MD_ROTATING_N_RESTART) => Ok(simple(PRL_RAID6, RLQ_N_RESTART)),
        (6, MD_ROTATING_ZERO_RESTART) => Ok(simple(PRL_RAID6, RLQ_RAID6_0_RESTART)),
        (6, MD_ROTATING_N_CONTINUE) => Ok(simple(PRL_RAID6, RLQ_N_CONTINUE)),
        (10, MD_RAID10_NEAR2) if raid_disks.is_multiple_of(2) => mirrors(2, RLQ_RAID1_SIMPLE),
        (10, MD_RAID10_NEAR3) if raid_disks.is_multiple_of(3) => mirrors(3, RLQ_RAID1_MULTI),
        (10, MD_RAID10_OFFSET2) => Ok(simple(PRL_RAID1E, RLQ_RAID1E_OFFSET)),
        (10, MD_RAID10_NEAR2) => Ok(simple(PRL_RAID1E, RLQ_RAID1E_ADJACENT)),
        _ => Err("RAID level and layout DDF cannot describe"),
    }
}

/// Spanned or striped sets of mirrors become md raid10 near-2 or near-3
/// (mdadm `layout_ddf2md`, secondary branch).
fn secondary(config: &VdConfig, n: u32) -> Result<MdGeometry, &'static str> {
    if config.prl != PRL_RAID1 || (config.srl != SRL_STRIPED && config.srl != SRL_SPANNED) {
        return Err("secondary RAID level md cannot run");
    }
    let layout = match (n, config.rlq) {
        (2, RLQ_RAID1_SIMPLE) => MD_RAID10_NEAR2,
        (3, RLQ_RAID1_MULTI) => MD_RAID10_NEAR3,
        _ => return Err("mirror width md raid10 cannot run"),
    };
    let raid_disks = n * u32::from(config.sec_elmnt_count);
    Ok(MdGeometry {
        level: 10,
        layout,
        raid_disks,
        uses_chunk: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(prl: u8, rlq: u8, n: u16, sec: u8, srl: u8) -> VdConfig {
        VdConfig {
            slot: 0,
            guid: [0; super::super::GUID_LEN],
            timestamp: 0,
            seqnum: 0,
            prim_elmnt_count: n,
            chunk_shift: 10,
            prl,
            rlq,
            sec_elmnt_count: sec,
            sec_elmnt_seq: 0,
            srl,
            blocks: 0,
            array_blocks: 0,
            phys_refnum: Vec::new(),
            lba_offset: Vec::new(),
        }
    }

    /// One row: PRL, RLQ, prim_elmnt_count, sec_elmnt_count, SRL, then the
    /// expected md level, layout and raid_disks.
    type Case = (u8, u8, u16, u8, u8, i32, u32, u32);

    /// The table of formats.md §5.1 ("RAID level mapping used by mdadm").
    #[test]
    fn formats_md_table() {
        let cases: [Case; 12] = [
            (0x00, 0, 3, 1, 0xff, 0, 0, 3),
            (0x01, 0, 2, 1, 0xff, 1, 0, 2),
            (0x01, 1, 3, 1, 0xff, 1, 0, 3),
            (0x04, 1, 3, 1, 0xff, 4, 0, 3),
            (0x05, 0, 3, 1, 0xff, 5, 1, 3),
            (0x05, 2, 3, 1, 0xff, 5, 0, 3),
            (0x05, 3, 3, 1, 0xff, 5, 2, 3),
            (0x06, 1, 4, 1, 0xff, 6, 8, 4),
            (0x06, 2, 4, 1, 0xff, 6, 9, 4),
            (0x06, 3, 4, 1, 0xff, 6, 10, 4),
            (0x11, 0, 3, 1, 0xff, 10, 0x102, 3),
            (0x01, 0, 2, 3, 3, 10, 0x102, 6),
        ];
        for (prl, rlq, n, sec, srl, lvl, layout, disks) in cases {
            let g = md_geometry(&config(prl, rlq, n, sec, srl)).expect("supported");
            assert_eq!(
                (g.level, g.layout, g.raid_disks),
                (lvl, layout, disks),
                "{prl:#x}/{rlq}"
            );
        }
        assert_eq!(
            md_geometry(&config(0x1f, 0, 2, 1, 0xff)).map(|g| g.level),
            Ok(-1)
        );
        assert_eq!(
            md_geometry(&config(0x11, 1, 2, 1, 0xff)).map(|g| g.layout),
            Ok(0x201)
        );
        assert_eq!(
            md_geometry(&config(0x01, 1, 3, 2, 0)).map(|g| g.layout),
            Ok(0x103)
        );
        assert!(
            md_geometry(&config(0x01, 0, 3, 1, 0xff)).is_err(),
            "2-way RLQ on 3 disks"
        );
        assert!(
            md_geometry(&config(0x05, 1, 3, 1, 0xff)).is_err(),
            "raid5 has no RLQ 1"
        );
        assert!(
            md_geometry(&config(0x00, 0, 2, 2, 0)).is_err(),
            "only mirrors span"
        );
        assert!(md_geometry(&config(0x15, 0, 3, 1, 0xff)).is_err(), "RAID5E");
    }

    /// mdadm's `layout_md2ddf` is the inverse of `layout_ddf2md` on what it
    /// accepts: every description maps back to the same md shape.
    #[test]
    fn ddf_level_inverts_md_geometry() {
        let cases: [(i32, u32, u32); 15] = [
            (0, 0, 3),
            (1, 0, 2),
            (1, 0, 3),
            (4, 0, 3),
            (5, 0, 3),
            (5, 1, 4),
            (5, 2, 5),
            (6, 8, 4),
            (6, 9, 5),
            (6, 10, 6),
            (10, 0x102, 4),
            (10, 0x102, 6),
            (10, 0x103, 6),
            (10, 0x102, 3),
            (10, 0x201, 4),
        ];
        for (lvl, layout, n) in cases {
            let d = ddf_level(lvl, layout, n).expect("supported");
            let mut c = config(d.prl, d.rlq, d.prim_elmnt_count, d.sec_elmnt_count, d.srl);
            c.sec_elmnt_seq = 0;
            let g = md_geometry(&c).expect("readable");
            assert_eq!(
                (g.level, g.layout, g.raid_disks),
                (lvl, layout, n),
                "{lvl}/{layout:#x}/{n}"
            );
        }
        assert!(ddf_level(1, 0, 4).is_err(), "4-way mirror");
        assert!(ddf_level(5, 3, 4).is_err(), "right-symmetric");
        assert!(ddf_level(10, 0x202, 4).is_err(), "far 2");
        assert_eq!(ddf_level(-1, 0, 2).map(|d| d.prl), Ok(PRL_CONCAT));
    }
}

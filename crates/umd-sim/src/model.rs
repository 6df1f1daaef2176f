//! The reference model the checker compares the array with: per logical
//! sector, which writes it may hold.
//!
//! Every write gets an id and a content derived from (id, sector), so a
//! sector read back names the write it came from; id 0 is zeroes (never
//! written, or trimmed). Per sector the model keeps the *stable* id (the
//! last write known durable: acknowledged before a FLUSH that completed, or
//! written with FUA) and the ids written since. While nothing crashed, a
//! read must return the newest; after a crash, any of stable-or-later
//! (acknowledged but unflushed writes may be lost, as NBD allows) and
//! nothing else: an older value is lost durable data, an unknown value is
//! data that was never written.

/// The model's id for content that is no write's: a chunk of a lost member
/// that a power loss left torn (see [`Model::check_after_crash`]). A sector
/// taken as unknown must then keep reading as unknown bytes.
pub const UNKNOWN: u64 = u64::MAX;

/// Content of `sector` written by write `id` (id 0: zeroes).
pub fn fill_sector(id: u64, sector: u64, out: &mut [u8]) {
    assert_eq!(out.len(), 512, "one sector");
    if id == 0 {
        out.fill(0);
        return;
    }
    out[..8].copy_from_slice(&id.to_le_bytes());
    out[8..16].copy_from_slice(&sector.to_le_bytes());
    let mut x = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ sector;
    for chunk in out[16..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
}

/// Which write a sector's content came from; `None`: no write's content.
#[must_use]
pub fn identify(sector: u64, bytes: &[u8]) -> Option<u64> {
    let id = u64::from_le_bytes(bytes[..8].try_into().ok()?);
    let mut want = [0u8; 512];
    fill_sector(id, sector, &mut want);
    (want[..] == bytes[..]).then_some(id)
}

#[derive(Debug, Clone, Default)]
struct SectorModel {
    stable: u64,
    since: Vec<u64>,
    /// The newest write completed on every member: reads must return it.
    exact: bool,
}

/// The model of a whole array.
#[derive(Debug, Clone)]
pub struct Model {
    sectors: Vec<SectorModel>,
}

impl Model {
    /// An array of `sectors` zero sectors.
    #[must_use]
    pub fn new(sectors: u64) -> Self {
        let s = SectorModel {
            stable: 0,
            since: Vec::new(),
            exact: true,
        };
        Self {
            sectors: vec![s; sectors as usize],
        }
    }

    /// The array grew to `sectors`: the new sectors were never written
    /// (a grow fills them with zeroes). Never shrinks.
    pub fn grow(&mut self, sectors: u64) {
        let s = SectorModel {
            stable: 0,
            since: Vec::new(),
            exact: true,
        };
        if sectors as usize > self.sectors.len() {
            self.sectors.resize(sectors as usize, s);
        }
    }

    /// A write is about to be issued: after a crash it may be there.
    pub fn issued(&mut self, sector: u64, len: u64, id: u64) {
        for s in &mut self.sectors[sector as usize..(sector + len) as usize] {
            s.since.push(id);
            s.exact = false;
        }
    }

    /// The write completed (acknowledged); with FUA it is durable.
    pub fn acknowledged(&mut self, sector: u64, len: u64, fua: bool) {
        for s in &mut self.sectors[sector as usize..(sector + len) as usize] {
            s.exact = true;
            if fua {
                s.stable = s.since.pop().expect("issued first");
                s.since.clear();
            }
        }
    }

    /// A FLUSH completed: every acknowledged write is durable.
    pub fn flushed(&mut self) {
        for s in &mut self.sectors {
            if s.exact {
                if let Some(&last) = s.since.last() {
                    s.stable = last;
                }
                s.since.clear();
            }
        }
    }

    /// Check a sector read while nothing crashed since it was written.
    pub fn check_read(&self, sector: u64, got: Option<u64>) -> Result<(), String> {
        let s = &self.sectors[sector as usize];
        let got = Some(got.unwrap_or(UNKNOWN));
        let newest = s.since.last().copied().unwrap_or(s.stable);
        match got {
            Some(id) if id == newest => Ok(()),
            Some(id) if !s.exact && (id == s.stable || s.since.contains(&id)) => Ok(()),
            _ => Err(format!(
                "sector {sector}: read {} but the newest write is {newest}{}",
                show(got),
                if s.exact {
                    ""
                } else {
                    " (or an earlier unacknowledged one)"
                }
            )),
        }
    }

    /// Check a sector read after a crash, then take it as the truth.
    /// `lost_member`: the sector lies on a role whose member was missing or
    /// not yet recovered when the array started again. Such a sector
    /// written since its last durable point may read as anything: a stripe
    /// torn by the crash rebuilds a lost member's chunk that the torn write
    /// modified from parity that matches neither the old nor the new data
    /// (an XOR of writes, which may even look like another write). md's PPL
    /// restores the chunks a write left alone, never the ones it modified
    /// (docs/simulation.md); durable sectors must still read back. Returns
    /// whether the sector read back as no write it may hold (a torn chunk
    /// of a lost member).
    pub fn check_after_crash(
        &mut self,
        sector: u64,
        got: Option<u64>,
        lost_member: bool,
    ) -> Result<bool, String> {
        let s = &mut self.sectors[sector as usize];
        let torn_lost = lost_member && !s.since.is_empty();
        let got = got.unwrap_or(UNKNOWN);
        let strict = got == s.stable || s.since.contains(&got);
        if !strict && !torn_lost {
            let why = match got {
                UNKNOWN => "data that was never written",
                id if id < s.stable => "durable data lost",
                _ => "a write that was never issued there",
            };
            return Err(format!(
                "sector {sector} after a crash: read {} ({why}); durable {} then {:?}",
                show(Some(got)),
                s.stable,
                s.since
            ));
        }
        s.stable = got;
        s.since.clear();
        s.exact = true;
        Ok(!strict)
    }
}

fn show(id: Option<u64>) -> String {
    match id {
        None | Some(UNKNOWN) => "unknown bytes".into(),
        Some(i) => format!("write {i}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{fill_sector, identify, Model};

    #[test]
    fn content_names_its_write() {
        let mut b = [0u8; 512];
        fill_sector(42, 7, &mut b);
        assert_eq!(identify(7, &b), Some(42));
        assert_eq!(identify(8, &b), None, "another sector's content");
        b[300] ^= 1;
        assert_eq!(identify(7, &b), None, "a torn or corrupt sector");
        assert_eq!(identify(3, &[0u8; 512]), Some(0));
    }

    #[test]
    fn crash_rules() {
        let mut m = Model::new(4);
        m.issued(0, 1, 1);
        m.acknowledged(0, 1, false);
        m.flushed();
        m.issued(0, 1, 2);
        m.acknowledged(0, 1, false);
        assert!(m.check_read(0, Some(2)).is_ok());
        assert!(
            m.check_read(0, Some(1)).is_err(),
            "stale read without a crash"
        );
        assert!(
            m.clone().check_after_crash(0, Some(1), false).is_ok(),
            "unflushed lost"
        );
        assert!(
            m.clone().check_after_crash(0, Some(0), false).is_err(),
            "flushed lost"
        );
        assert!(
            m.clone().check_after_crash(0, None, false).is_err(),
            "garbage"
        );
        m.issued(1, 1, 3);
        m.acknowledged(1, 1, true);
        assert!(m.check_after_crash(1, Some(3), false).is_ok());
    }

    #[test]
    fn a_lost_member_may_lose_only_what_was_not_durable() {
        let mut m = Model::new(2);
        m.issued(0, 2, 1);
        m.acknowledged(0, 2, true);
        m.issued(0, 1, 2);
        m.acknowledged(0, 1, false);
        assert!(
            m.clone().check_after_crash(1, None, true).is_err(),
            "a durable sector of a lost member reads wrong"
        );
        assert!(
            m.clone().check_after_crash(0, None, false).is_err(),
            "garbage on a member that is there"
        );
        assert_eq!(m.check_after_crash(0, None, true), Ok(true));
        assert!(
            m.check_read(0, None).is_ok(),
            "the torn chunk stays unknown"
        );
        assert!(m.check_read(0, Some(2)).is_err());
        m.issued(0, 1, 4);
        m.acknowledged(0, 1, true);
        assert!(m.check_read(0, None).is_err(), "rewritten: known again");
    }
}

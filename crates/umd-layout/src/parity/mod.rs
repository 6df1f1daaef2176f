//! RAID parity: XOR and RAID6 P/Q in md's GF(2^8).

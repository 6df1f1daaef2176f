//! Unit tests of the handler on small containers built in memory; the tests
//! against mdadm's own reading are in `tests/ddf_mon.rs`.

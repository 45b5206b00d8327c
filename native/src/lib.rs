//! The native core of tbrewrite, one layer per module as in TensorBoard's RustBoard
//! (`tensorboard/data/server/`): [`masked_crc`] → [`tf_record`] (framing, damage, resync)
//! → [`proto`] (is it an `Event`?, by upb's rules) and [`wire`] (the common-shape peek and
//! retag) → [`event_file`] (the per-file scan, as columns) and [`scalar`].
//!
//! The Python package (`tbrewrite`) owns the API, the docs and the errors; the module
//! `tbrewrite._native` ([`python`], built with the `python` feature) is a thin layer that
//! works on whole files or buffers per call, with the GIL released.

pub mod event_file;
pub mod masked_crc;
pub mod proto;
pub mod rewrite;
pub mod scalar;
pub mod schema;
pub mod tf_record;
pub mod wire;

#[cfg(feature = "python")]
mod python;

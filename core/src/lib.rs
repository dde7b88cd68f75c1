//! Spoor's core: the span model and every piece of trace logic that must behave identically in
//! the daemon, the browser, plugins and the edge worker.
//!
//! This crate is `#![no_std]` + `alloc`. It does no I/O, reads no clock and owns no randomness:
//! time ("now") and anything random are passed in as arguments. That is what lets the same code
//! run in `wasm32-unknown-unknown` and on bare metal, which CI proves by building it for those
//! targets with `--no-default-features`.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod analysis;
pub mod batch;
pub mod block;
pub mod decoded;
pub mod deps;
pub mod model;
pub mod propagation;
pub mod query;
pub mod red;
pub mod sampling;
pub mod skew;
pub mod tail;
pub mod validate;

pub use decoded::Decoded;
pub use model::*;
pub use query::TraceQuery;

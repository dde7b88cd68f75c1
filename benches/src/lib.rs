//! Spoor's load generator and benchmark support: a reproducible trace generator, OTLP payload
//! pools, export clients, the network run with its report, store preloading and a smoke check.
//!
//! The `spoor-loadgen` binary wires these together; the Criterion benchmarks in
//! `benches/micro.rs` use the generator and preloading for their inputs.

pub mod client;
pub mod gen;
pub mod hist;
pub mod payload;
pub mod preload;
pub mod rng;
pub mod run;
pub mod smoke;
pub mod units;

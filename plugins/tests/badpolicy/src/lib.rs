//! Hostile tail-sampling policy for the sandbox tests and the daemon's e2e test, chosen by
//! `{"how": ...}`: `trap` (panics), `loop` (never returns: runs out of fuel), `fail` (answers
//! `failed`), `bomb` (allocates until the memory cap), or the well-behaved controls `yes` and
//! `no`. Never deployed; built for wasm32-wasip2 by `make plugins-hostile`.

use spoor_plugin_sdk::{Error, Policy, Span};

/// The policy and how it misbehaves.
pub struct BadPolicy {
    how: How,
}

#[derive(serde::Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum How {
    Trap,
    Loop,
    Fail,
    Bomb,
    Yes,
    No,
}

/// `{"how": "trap" | "loop" | "fail" | "bomb" | "yes" | "no"}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    how: How,
}

impl Policy for BadPolicy {
    const NAME: &'static str = "badpolicy";
    const VERSION: &'static str = "0.1.0";
    type Config = Config;

    fn configure(config: Config) -> Result<Self, Error> {
        Ok(BadPolicy { how: config.how })
    }

    fn decide(&mut self, trace: &[Span]) -> Result<bool, Error> {
        match self.how {
            How::Trap => panic!("policy trapped on a trace of {} spans", trace.len()),
            How::Loop => {
                let mut n = trace.len() as u64;
                loop {
                    n = std::hint::black_box(n.wrapping_mul(31).wrapping_add(7));
                }
            }
            How::Fail => Err(Error::failed("this policy always fails")),
            How::Bomb => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            How::Yes => Ok(true),
            How::No => Ok(false),
        }
    }
}

spoor_plugin_sdk::export_policy!(BadPolicy);

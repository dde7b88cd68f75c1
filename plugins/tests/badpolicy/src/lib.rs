//! Hostile tail-sampling policy for the sandbox tests and the daemon's e2e test, chosen by
//! `{"how": ...}`: `trap` (panics), `loop` (never returns: runs out of fuel), `fail` (answers
//! `failed`), `bomb` (allocates until the memory cap), or the well-behaved controls `yes`, `no`
//! and `consistent`. `consistent` is how the host's tests run `spoor-core`'s consistent-sampling
//! test vectors on the plugin target: it decides a trace with core's sampler, at the probability
//! its first span carries in the double attribute `test.probability`, from that span's trace id
//! and trace state. Never deployed; built for wasm32-wasip2 by `make plugins-hostile`.

use spoor_plugin_sdk::spoor_core::model::AnyValue;
use spoor_plugin_sdk::spoor_core::sampling::consistent::{sample, Threshold};
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
    Consistent,
}

/// `{"how": "trap" | "loop" | "fail" | "bomb" | "yes" | "no" | "consistent"}`; `{}` is `no`
/// (so it takes the same config as `slo`'s `{}` in the reload tests).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "no")]
    how: How,
}

fn no() -> How {
    How::No
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
            How::Consistent => {
                let first = trace
                    .first()
                    .ok_or_else(|| Error::failed("an empty trace"))?;
                let p = first
                    .attributes
                    .iter()
                    .find(|kv| kv.key == "test.probability")
                    .and_then(|kv| match kv.value {
                        AnyValue::Double(p) => Some(p),
                        _ => None,
                    })
                    .ok_or_else(|| Error::failed("no double attribute test.probability"))?;
                let threshold = Threshold::from_probability(p)
                    .map_err(|e| Error::failed(format!("test.probability {p}: {e}")))?;
                Ok(sample(threshold, first.trace_id, &first.trace_state))
            }
        }
    }
}

spoor_plugin_sdk::export_policy!(BadPolicy);

//! Decodes one generated 1,000-span OTLP protobuf batch N times, for instruction counts under
//! callgrind, which are repeatable on a shared machine: the cost of 20 decodes is the count at
//! N = 40 minus the count at N = 20 (see BENCHMARKS.md).
use spoor_bench::gen::{GenConfig, Generator};
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(10, |s| s.parse().expect("n"));
    let cfg = GenConfig {
        spans_per_trace: 20,
        seed: 1,
        ..GenConfig::default()
    };
    let mut g = Generator::new(cfg).expect("gen");
    let spans: Vec<_> = (0..50).flat_map(|_| g.next_trace()).collect();
    let b = spoor_otlp::encode_proto(&spans);
    let mut total = 0;
    for _ in 0..n {
        total += spoor_otlp::decode_proto(&b).expect("decode").spans.len();
    }
    println!("{total}");
}

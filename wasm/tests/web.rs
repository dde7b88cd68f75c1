//! The bindings as JavaScript sees them, run in Node by `wasm-bindgen-test-runner`
//! (`make wasm-test`): every format through `TraceSet`, timeline rows and collapse, critical
//! path, diff, root cause, and timings on generated 10,000- and 100,000-span traces.
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Reflect, JSON};
use spoor_wasm::{detect_format, synth, TraceSet};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

const JAEGER: &[u8] = include_bytes!("fixtures/jaeger_trace.json");
const ZIPKIN: &[u8] = include_bytes!("fixtures/zipkin_trace.json");
const OTLP: &[u8] = include_bytes!("../../tests/fixtures/otlp_trace.json");

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap()
}

fn num(v: &JsValue, key: &str) -> f64 {
    get(v, key)
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number"))
}

fn now() -> f64 {
    js_sys::Date::now()
}

#[wasm_bindgen_test]
fn parses_every_format() {
    // (file, format, traces, spans)
    let cases: [(&[u8], &str, usize, usize); 3] = [
        (JAEGER, "jaeger", 1, 3),
        (OTLP, "otlp", 2, 5),
        (ZIPKIN, "zipkin", 2, 3),
    ];
    for (body, format, traces, spans) in cases {
        assert_eq!(detect_format(body).unwrap(), format);
        let set = TraceSet::new(body).unwrap();
        assert_eq!(
            (set.format(), set.trace_count(), set.span_count()),
            (format.to_string(), traces, spans)
        );
        let list = Array::from(&set.traces().unwrap());
        assert_eq!(list.length() as usize, traces);
        assert_eq!(num(&list.get(0), "index"), 0.0);
    }
}

#[wasm_bindgen_test]
fn errors_are_js_errors_with_the_path() {
    let e = match TraceSet::from_text("{\"data\":{}}") {
        Err(e) => JsValue::from(e),
        Ok(_) => panic!("accepted a bad file"),
    };
    let message = get(&e, "message").as_string().unwrap();
    assert_eq!(
        message,
        "jaeger json: data: expected an array, got an object"
    );
    let set = TraceSet::from_text(
        "{\"data\":[{\"spans\":[{\"traceID\":\"1\",\"spanID\":\"zz\",\"startTime\":1}]}]}",
    )
    .unwrap();
    assert_eq!(set.rejected(), 1);
    assert!(set.problems()[0].starts_with("data[0].spans[0].spanID: "));
}

#[wasm_bindgen_test]
fn timeline_rows_collapse_and_detail() {
    let mut set = TraceSet::new(JAEGER).unwrap();
    let rows = Array::from(&set.rows(0, 0, 100).unwrap());
    assert_eq!(rows.length(), 3);
    let r1 = rows.get(1);
    assert_eq!(get(&r1, "operation").as_string().unwrap(), "charge");
    assert_eq!((num(&r1, "offset"), num(&r1, "width")), (0.04, 0.8));
    assert_eq!(get(&r1, "error"), JsValue::TRUE);
    assert_eq!(set.toggle(0, 1).unwrap(), 2);
    assert_eq!(set.row_of(0, 2).unwrap(), None);
    assert_eq!(set.collapsed_spans(0).unwrap(), [1]);
    assert_eq!(set.expand_all(0).unwrap(), 3);
    let d = set.span(0, 1).unwrap();
    assert_eq!(
        get(&d, "status_message").as_string().unwrap(),
        "card declined"
    );
    let attrs = Array::from(&get(&d, "attributes"));
    assert_eq!(
        get(&attrs.get(0), "value").as_string().unwrap(),
        "9007199254740993"
    );
    assert!(set.span(0, 3).is_err());
    assert!(set.rows(5, 0, 1).is_err());
}

#[wasm_bindgen_test]
fn critical_path_diff_and_root_cause() {
    let mut set = TraceSet::new(JAEGER).unwrap();
    let cp = set.critical_path(0).unwrap();
    let segments = Array::from(&get(&cp, "segments"));
    let total: f64 = segments
        .iter()
        .map(|s| num(&s, "end") - num(&s, "start"))
        .sum();
    // absolute nanoseconds as f64 are rounded (~256 ns at today's epoch); durations are exact
    assert!((total - 250_000_000.0).abs() < 1024.0, "{total}");
    let mut other = TraceSet::new(ZIPKIN).unwrap();
    let d = set.diff_with(0, &mut other, 0).unwrap();
    assert!(Array::from(&get(&d, "nodes")).length() >= 2);
    let same = set.diff(0, 0).unwrap();
    let nodes = Array::from(&get(&same, "nodes"));
    assert!(nodes
        .iter()
        .all(|n| num(&n, "count_a") == num(&n, "count_b")));
    let rc = set.root_cause(0, 3, None).unwrap();
    assert_eq!(
        Array::from(&get(&rc, "error_origins")).to_vec(),
        [JsValue::from(1)]
    );
    let graph = set.service_graph().unwrap();
    assert_eq!(Array::from(&get(&graph, "edges")).length(), 1);
    let stats = set.stats(0).unwrap();
    assert_eq!(num(&get(&stats, "all"), "count"), 3.0);
    assert_eq!(set.search(0, "FRAUD").unwrap(), [2]);
}

/// Parse + first timeline page + collapse + critical path on a generated trace, timed.
fn timed(n: usize) {
    let body = synth::jaeger_json(n, 3);
    let t0 = now();
    let mut set = TraceSet::new(body.as_bytes()).unwrap();
    let t1 = now();
    let info = set.timeline(0).unwrap();
    let t2 = now();
    let page = Array::from(&set.rows(0, 0, 100).unwrap());
    let t3 = now();
    let rows = set.collapse_below_depth(0, 2).unwrap();
    set.expand_all(0).unwrap();
    let t4 = now();
    let cp = set.critical_path(0).unwrap();
    let t5 = now();
    let cp_json = JSON::stringify(&cp).unwrap().as_string().unwrap();
    assert_eq!((set.span_count(), num(&info, "row_count") as usize), (n, n));
    assert_eq!((page.length(), rows), (100, 21));
    assert!(cp_json.len() > 100);
    console_log!(
        "{n} spans ({} KiB json): parse {:.0} ms, tree+timeline {:.0} ms, 100 rows {:.1} ms, collapse+expand {:.1} ms, critical path {:.0} ms",
        body.len() / 1024,
        t1 - t0,
        t2 - t1,
        t3 - t2,
        t4 - t3,
        t5 - t4
    );
}

#[wasm_bindgen_test]
fn generated_10k_span_trace() {
    timed(10_000);
}

#[wasm_bindgen_test]
fn generated_100k_span_trace() {
    timed(100_000);
}

/// The consistent-sampling test vectors of `spoor-core`, decided in WebAssembly: the browser,
/// the edge worker and plugins must keep exactly the traces the daemon keeps.
#[wasm_bindgen_test]
fn consistent_sampling_vectors_decide_the_same_in_wasm() {
    use spoor_core::sampling::consistent::sample;
    use spoor_core::sampling::{Threshold, CONSISTENT_VECTORS};
    use spoor_core::TraceId;
    assert!(CONSISTENT_VECTORS.len() >= 12);
    for v in CONSISTENT_VECTORS {
        let t = Threshold::from_probability(v.probability).expect("vector probability is valid");
        assert_eq!(
            sample(t, TraceId(v.trace_id), v.trace_state),
            v.sampled,
            "trace {:032x} at p = {}",
            v.trace_id,
            v.probability
        );
        let th = t
            .encode()
            .map(|h| h.as_str().to_string())
            .unwrap_or_default();
        assert_eq!(th, v.th, "th of p = {}", v.probability);
    }
}

#[wasm_bindgen_test]
fn span_table_is_typed_arrays() {
    let mut set = TraceSet::new(OTLP).unwrap();
    let t = set.span_table(0).unwrap();
    let services: Vec<String> = Array::from(&get(&t, "services"))
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert_eq!(services, ["frontend", "cart"]);
    let pre = js_sys::Uint32Array::from(get(&t, "preorder")).to_vec();
    assert_eq!(pre, [0, 1, 2, 3]);
    let data = js_sys::Float64Array::from(get(&t, "data")).to_vec();
    // span 2 (POST /cart): parent 1, depth 2, start 15 ms, 80 ms long, 60 ms self, cart, error
    assert_eq!(data[16..24], [1.0, 2.0, 15e6, 80e6, 60e6, 1.0, 2.0, 1.0]);
    assert!(set.span_table(3).is_err());
}

//! Spoor's browser module: reads trace files (Jaeger, OTLP and Zipkin JSON) and runs the trace
//! analyses of `spoor-core` in WebAssembly, for the web UI, also offline.
//!
//! JavaScript gets one handle, [`TraceSet`]: a file is parsed once and its traces stay in wasm
//! memory; every method answers plain data (JSON-compatible objects, arrays of numbers,
//! strings: never markup). Spans are named by their index in their trace, traces by their
//! index in the set. Times are nanoseconds as JS numbers (exact for durations; absolute times
//! are rounded to a few hundred nanoseconds by the f64 representation).
//!
//! Answers are built as JSON by `serde_json` (already linked for parsing) and turned into JS
//! values by the engine's `JSON.parse`: one crossing of the boundary per answer, where
//! `serde-wasm-bindgen` crosses once per field and adds its own code to the module.
//!
//! Layers: [`formats`] (detect and decode), [`session`] (owned traces, trees, timelines and
//! every answer as Rust data, tested natively), and the bindings below.

#![warn(missing_docs)]

pub mod formats;
pub mod session;
pub mod synth;

/// talc instead of dlmalloc in the browser: much faster with the many small allocations of a
/// large trace file (see wasm/Cargo.toml).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::formats::Format;
use crate::session::Traces;

/// Serialises an answer to JSON text.
pub fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<String, JsError> {
    serde_json::to_string(v).map_err(|e| JsError::new(&format!("cannot encode answer: {e}")))
}

/// Serialises an answer and parses it into a JS value.
fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, JsError> {
    js_sys::JSON::parse(&to_json(v)?).map_err(|_| JsError::new("cannot parse answer"))
}

fn err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// The format of a trace file: `"jaeger"`, `"otlp"`, `"zipkin"` or `"zipkin-v1"`; throws
/// when the file is not JSON or none of them.
#[wasm_bindgen(js_name = detectFormat)]
pub fn detect_format(data: &[u8]) -> Result<String, JsError> {
    formats::detect(data)
        .map(|f| f.name().to_string())
        .map_err(err)
}

/// The parsed traces of one file, kept in wasm memory. Free it with `free()` when done.
#[wasm_bindgen]
pub struct TraceSet {
    inner: Traces,
}

impl TraceSet {
    /// The Rust side of the handle.
    pub fn inner(&mut self) -> &mut Traces {
        &mut self.inner
    }
}

#[wasm_bindgen]
impl TraceSet {
    /// Parses a file, detecting its format. Throws an `Error` whose message says what was wrong
    /// and where (JSON line and column, or JSON path).
    #[wasm_bindgen(constructor)]
    pub fn new(data: &[u8]) -> Result<TraceSet, JsError> {
        Ok(TraceSet {
            inner: Traces::parse(data, None).map_err(err)?,
        })
    }

    /// Parses a file as `format` (`"auto"`, `"jaeger"`, `"otlp"`, `"zipkin"`, `"zipkin-v1"`).
    pub fn parse(data: &[u8], format: &str) -> Result<TraceSet, JsError> {
        let format = Format::from_name(format).map_err(err)?;
        Ok(TraceSet {
            inner: Traces::parse(data, format).map_err(err)?,
        })
    }

    /// Parses JSON text (a convenience over `new TraceSet(new TextEncoder().encode(text))`).
    #[wasm_bindgen(js_name = fromText)]
    pub fn from_text(text: &str) -> Result<TraceSet, JsError> {
        TraceSet::new(text.as_bytes())
    }

    /// The format that was read.
    #[wasm_bindgen(getter)]
    pub fn format(&self) -> String {
        self.inner.format().to_string()
    }

    /// Number of traces.
    #[wasm_bindgen(getter, js_name = traceCount)]
    pub fn trace_count(&self) -> usize {
        self.inner.len()
    }

    /// Number of spans in all traces.
    #[wasm_bindgen(getter, js_name = spanCount)]
    pub fn span_count(&self) -> usize {
        self.inner.span_count()
    }

    /// Spans rejected while decoding.
    #[wasm_bindgen(getter)]
    pub fn rejected(&self) -> usize {
        self.inner.rejected()
    }

    /// One line per rejected span: `"<json path>: <problem>"`.
    pub fn problems(&self) -> Vec<String> {
        self.inner.problems().to_vec()
    }

    /// The trace list: `[{index, trace_id, root_service, root_operation, start_unix_nanos,
    /// duration_nanos, span_count, error_count, services}]`, in file order.
    pub fn traces(&self) -> Result<JsValue, JsError> {
        to_js(self.inner.summaries())
    }

    /// The index of the trace with this hex id, or `undefined`.
    #[wasm_bindgen(js_name = indexOf)]
    pub fn index_of(&self, trace_id: &str) -> Option<usize> {
        self.inner.index_of(trace_id)
    }

    /// `{start_unix_nanos, end_unix_nanos, row_count, span_count, max_depth}` of a trace's
    /// timeline.
    pub fn timeline(&mut self, trace: usize) -> Result<JsValue, JsError> {
        to_js(&self.inner.timeline(trace).map_err(err)?)
    }

    /// Visible timeline rows `start..end` (clamped): `[{span, depth, has_children, collapsed,
    /// offset, width, span_id, service, operation, duration_nanos, error}]`; `offset` and
    /// `width` are fractions of the trace window.
    pub fn rows(&mut self, trace: usize, start: usize, end: usize) -> Result<JsValue, JsError> {
        to_js(&self.inner.rows(trace, start, end).map_err(err)?)
    }

    /// Number of visible rows.
    #[wasm_bindgen(js_name = rowCount)]
    pub fn row_count(&mut self, trace: usize) -> Result<usize, JsError> {
        Ok(self.inner.timeline(trace).map_err(err)?.row_count)
    }

    /// Collapses or expands span `span`; returns the new row count.
    #[wasm_bindgen(js_name = setCollapsed)]
    pub fn set_collapsed(
        &mut self,
        trace: usize,
        span: usize,
        collapsed: bool,
    ) -> Result<usize, JsError> {
        self.inner
            .set_collapsed(trace, span, collapsed)
            .map_err(err)
    }

    /// Flips span `span`'s collapse state; returns the new row count.
    pub fn toggle(&mut self, trace: usize, span: usize) -> Result<usize, JsError> {
        self.inner.toggle(trace, span).map_err(err)
    }

    /// Expands every span; returns the new row count.
    #[wasm_bindgen(js_name = expandAll)]
    pub fn expand_all(&mut self, trace: usize) -> Result<usize, JsError> {
        self.inner.expand_all(trace).map_err(err)
    }

    /// Shows spans down to `depth` and collapses those at `depth` (0: only roots); returns
    /// the new row count.
    #[wasm_bindgen(js_name = collapseBelowDepth)]
    pub fn collapse_below_depth(&mut self, trace: usize, depth: usize) -> Result<usize, JsError> {
        self.inner.collapse_below_depth(trace, depth).map_err(err)
    }

    /// The collapsed spans that have children, in display order.
    #[wasm_bindgen(js_name = collapsedSpans)]
    pub fn collapsed_spans(&mut self, trace: usize) -> Result<Vec<u32>, JsError> {
        Ok(to_u32(self.inner.collapsed_spans(trace).map_err(err)?))
    }

    /// The visible row showing span `span`, or `undefined` when it is hidden.
    #[wasm_bindgen(js_name = rowOf)]
    pub fn row_of(&mut self, trace: usize, span: usize) -> Result<Option<usize>, JsError> {
        self.inner.row_of(trace, span).map_err(err)
    }

    /// The index of the span with this hex id in the trace, or `undefined`.
    #[wasm_bindgen(js_name = spanIndex)]
    pub fn span_index(&mut self, trace: usize, span_id: &str) -> Result<Option<usize>, JsError> {
        self.inner.span_index(trace, span_id).map_err(err)
    }

    /// Everything about one span as plain data (see `SpanDetail` in `session.rs`).
    pub fn span(&mut self, trace: usize, span: usize) -> Result<JsValue, JsError> {
        to_js(&self.inner.span(trace, span).map_err(err)?)
    }

    /// Every span of a trace as numbers, in one call: `{services, operations, preorder, data}`
    /// where `preorder` (`Uint32Array`) lists the span indices in display order and `data`
    /// (`Float64Array`) holds 8 numbers per span by span index: parent (-1 for a root), depth,
    /// start (ns after the trace start), duration (ns), self time (ns), service index and
    /// operation index into `services` / `operations`, error (1 or 0).
    #[wasm_bindgen(js_name = spanTable)]
    pub fn span_table(&mut self, trace: usize) -> Result<JsValue, JsError> {
        let c = self.inner.span_columns(trace).map_err(err)?;
        let out = js_sys::Object::new();
        let set = |k: &str, v: &JsValue| {
            js_sys::Reflect::set(&out, &JsValue::from_str(k), v)
                .map(|_| ())
                .map_err(|_| JsError::new("cannot build the span table"))
        };
        set("services", &to_js(&c.services)?)?;
        set("operations", &to_js(&c.operations)?)?;
        set(
            "preorder",
            &js_sys::Uint32Array::from(&c.preorder[..]).into(),
        )?;
        set("data", &js_sys::Float64Array::from(&c.data[..]).into())?;
        Ok(out.into())
    }

    /// `{segments: [{span, start, end}], span_nanos: [..]}`.
    #[wasm_bindgen(js_name = criticalPath)]
    pub fn critical_path(&mut self, trace: usize) -> Result<JsValue, JsError> {
        to_js(&self.inner.critical_path(trace).map_err(err)?)
    }

    /// `{all, by_service, by_operation, by_service_operation, self_nanos}`.
    pub fn stats(&mut self, trace: usize) -> Result<JsValue, JsError> {
        to_js(&self.inner.stats(trace).map_err(err)?)
    }

    /// `[{key, stat}]` grouped by the text of attribute `key` (`null` key: spans without it).
    #[wasm_bindgen(js_name = statsByAttribute)]
    pub fn stats_by_attribute(&mut self, trace: usize, key: &str) -> Result<JsValue, JsError> {
        to_js(&self.inner.stats_by_attribute(trace, key).map_err(err)?)
    }

    /// Indices of the spans matching `query` (case-insensitive), in display order.
    pub fn search(&mut self, trace: usize, query: &str) -> Result<Vec<u32>, JsError> {
        Ok(to_u32(self.inner.search(trace, query).map_err(err)?))
    }

    /// The structural diff of traces `a` and `b` of this set:
    /// `{nodes: [...], node_of_a: [...], node_of_b: [...]}`.
    pub fn diff(&mut self, a: usize, b: usize) -> Result<JsValue, JsError> {
        to_js(&self.inner.diff(a, None, b).map_err(err)?)
    }

    /// The diff of trace `a` of this set and trace `b` of `other` (another set: pass this set
    /// to `diff` instead of here, a set cannot be borrowed twice).
    #[wasm_bindgen(js_name = diffWith)]
    pub fn diff_with(
        &mut self,
        a: usize,
        other: &mut TraceSet,
        b: usize,
    ) -> Result<JsValue, JsError> {
        to_js(&self.inner.diff(a, Some(&mut other.inner), b).map_err(err)?)
    }

    /// Root-cause summary `{error_origins, critical_owners, slower}` of a trace, the `top_n`
    /// biggest of each, against trace `baseline` of this set when given.
    #[wasm_bindgen(js_name = rootCause)]
    pub fn root_cause(
        &mut self,
        trace: usize,
        top_n: usize,
        baseline: Option<usize>,
    ) -> Result<JsValue, JsError> {
        let base = baseline.map(|b| (None, b));
        to_js(&self.inner.root_cause(trace, top_n, base).map_err(err)?)
    }

    /// The root-cause summary against trace `baseline` of another set.
    #[wasm_bindgen(js_name = rootCauseWith)]
    pub fn root_cause_with(
        &mut self,
        trace: usize,
        top_n: usize,
        other: &mut TraceSet,
        baseline: usize,
    ) -> Result<JsValue, JsError> {
        let base = Some((Some(&mut other.inner), baseline));
        to_js(&self.inner.root_cause(trace, top_n, base).map_err(err)?)
    }

    /// `{nodes: [{service, span_count, error_count}], edges: [{parent, child, call_count}]}`
    /// of all traces.
    #[wasm_bindgen(js_name = serviceGraph)]
    pub fn service_graph(&self) -> Result<JsValue, JsError> {
        to_js(&self.inner.service_graph())
    }
}

fn to_u32(v: Vec<usize>) -> Vec<u32> {
    v.into_iter().map(|i| i as u32).collect()
}

//! The Jaeger Thrift IDL (`jaeger.thrift`, `agent.thrift`) as Rust structs, read from and
//! written to the protocol-neutral [`TValue`] tree with the IDL's exact field ids.

use crate::thrift::{TType, TValue};
use crate::DecodeError;

/// `TagType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagType {
    /// 0
    String,
    /// 1
    Double,
    /// 2
    Bool,
    /// 3
    Long,
    /// 4
    Binary,
}

/// `Tag`: a typed key/value. Only the field of `v_type` is meaningful.
#[derive(Clone, Debug, PartialEq)]
pub struct Tag {
    /// 1: key
    pub key: String,
    /// 2: vType
    pub v_type: TagType,
    /// 3: vStr
    pub v_str: Option<String>,
    /// 4: vDouble
    pub v_double: Option<f64>,
    /// 5: vBool
    pub v_bool: Option<bool>,
    /// 6: vLong
    pub v_long: Option<i64>,
    /// 7: vBinary
    pub v_binary: Option<Vec<u8>>,
}

impl Tag {
    fn empty(key: &str, v_type: TagType) -> Tag {
        Tag {
            key: key.to_string(),
            v_type,
            v_str: None,
            v_double: None,
            v_bool: None,
            v_long: None,
            v_binary: None,
        }
    }

    /// A string tag.
    pub fn string(key: &str, v: &str) -> Tag {
        Tag {
            v_str: Some(v.to_string()),
            ..Tag::empty(key, TagType::String)
        }
    }

    /// A double tag.
    pub fn double(key: &str, v: f64) -> Tag {
        Tag {
            v_double: Some(v),
            ..Tag::empty(key, TagType::Double)
        }
    }

    /// A bool tag.
    pub fn bool(key: &str, v: bool) -> Tag {
        Tag {
            v_bool: Some(v),
            ..Tag::empty(key, TagType::Bool)
        }
    }

    /// A long tag.
    pub fn long(key: &str, v: i64) -> Tag {
        Tag {
            v_long: Some(v),
            ..Tag::empty(key, TagType::Long)
        }
    }

    /// A binary tag.
    pub fn binary(key: &str, v: &[u8]) -> Tag {
        Tag {
            v_binary: Some(v.to_vec()),
            ..Tag::empty(key, TagType::Binary)
        }
    }
}

/// `Log`: a timestamped list of fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Log {
    /// 1: timestamp, microseconds since the epoch
    pub timestamp: i64,
    /// 2: fields
    pub fields: Vec<Tag>,
}

/// `SpanRefType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanRefType {
    /// 0
    ChildOf,
    /// 1
    FollowsFrom,
}

/// `SpanRef`.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRef {
    /// 1: refType
    pub ref_type: SpanRefType,
    /// 2: traceIdLow
    pub trace_id_low: i64,
    /// 3: traceIdHigh
    pub trace_id_high: i64,
    /// 4: spanId
    pub span_id: i64,
}

/// `Span`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Span {
    /// 1: traceIdLow
    pub trace_id_low: i64,
    /// 2: traceIdHigh (0 for 64-bit ids)
    pub trace_id_high: i64,
    /// 3: spanId
    pub span_id: i64,
    /// 4: parentSpanId (0 for none)
    pub parent_span_id: i64,
    /// 5: operationName
    pub operation_name: String,
    /// 6: references
    pub references: Vec<SpanRef>,
    /// 7: flags (1 sampled, 2 debug)
    pub flags: i32,
    /// 8: startTime, microseconds since the epoch
    pub start_time: i64,
    /// 9: duration, microseconds
    pub duration: i64,
    /// 10: tags
    pub tags: Vec<Tag>,
    /// 11: logs
    pub logs: Vec<Log>,
    /// 12: incomplete
    pub incomplete: Option<bool>,
}

/// `Process`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Process {
    /// 1: serviceName
    pub service_name: String,
    /// 2: tags
    pub tags: Vec<Tag>,
}

/// `ClientStats`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ClientStats {
    /// 1: fullQueueDroppedSpans
    pub full_queue_dropped_spans: i64,
    /// 2: tooLargeDroppedSpans
    pub too_large_dropped_spans: i64,
    /// 3: failedToEmitSpans
    pub failed_to_emit_spans: i64,
}

/// `Batch`: one process and its spans.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Batch {
    /// 1: process
    pub process: Process,
    /// 2: spans
    pub spans: Vec<Span>,
    /// 3: seqNo
    pub seq_no: Option<i64>,
    /// 4: stats
    pub stats: Option<ClientStats>,
}

/// Reads one struct from its fields.
type FromFields<T> = fn(&[(i16, TValue)]) -> Result<T, DecodeError>;

/// Reads the fields of one struct, checking types and required fields.
struct Fields<'a> {
    name: &'static str,
    fields: &'a [(i16, TValue)],
}

impl<'a> Fields<'a> {
    fn get(&self, id: i16, field: &str, t: TType) -> Result<Option<&'a TValue>, DecodeError> {
        // the last occurrence wins, as in the generated Thrift readers
        match self.fields.iter().rev().find(|(i, _)| *i == id) {
            None => Ok(None),
            Some((_, v)) if v.ttype() == t => Ok(Some(v)),
            Some((_, v)) => Err(DecodeError::Field {
                field: format!("{}.{field}", self.name),
                message: format!("has type {}, expected {}", v.ttype().name(), t.name()),
            }),
        }
    }

    fn required(&self, id: i16, field: &str, t: TType) -> Result<&'a TValue, DecodeError> {
        self.get(id, field, t)?.ok_or_else(|| DecodeError::Field {
            field: format!("{}.{field}", self.name),
            message: "is missing".to_string(),
        })
    }

    fn i64(&self, id: i16, field: &str) -> Result<Option<i64>, DecodeError> {
        Ok(match self.get(id, field, TType::I64)? {
            Some(TValue::I64(v)) => Some(*v),
            _ => None,
        })
    }

    fn req_i64(&self, id: i16, field: &str) -> Result<i64, DecodeError> {
        self.required(id, field, TType::I64)?;
        Ok(self.i64(id, field)?.unwrap_or(0))
    }

    fn req_i32(&self, id: i16, field: &str) -> Result<i32, DecodeError> {
        match self.required(id, field, TType::I32)? {
            TValue::I32(v) => Ok(*v),
            _ => Ok(0),
        }
    }

    fn string(&self, id: i16, field: &str) -> Result<Option<String>, DecodeError> {
        match self.get(id, field, TType::Binary)? {
            Some(TValue::Binary(b)) => match String::from_utf8(b.clone()) {
                Ok(s) => Ok(Some(s)),
                Err(_) => Err(DecodeError::Field {
                    field: format!("{}.{field}", self.name),
                    message: "is not UTF-8".to_string(),
                }),
            },
            _ => Ok(None),
        }
    }

    fn req_string(&self, id: i16, field: &str) -> Result<String, DecodeError> {
        self.required(id, field, TType::Binary)?;
        Ok(self.string(id, field)?.unwrap_or_default())
    }

    fn list<T>(&self, id: i16, field: &str, elem: FromFields<T>) -> Result<Vec<T>, DecodeError> {
        match self.get(id, field, TType::List)? {
            None => Ok(Vec::new()),
            Some(TValue::List(TType::Struct, items)) => items
                .iter()
                .map(|v| match v {
                    TValue::Struct(f) => elem(f),
                    // a list's elements all have its element type
                    _ => elem(&[]),
                })
                .collect(),
            Some(TValue::List(_, items)) if items.is_empty() => Ok(Vec::new()),
            Some(TValue::List(t, _)) => Err(DecodeError::Field {
                field: format!("{}.{field}", self.name),
                message: format!("is a list of {}, expected list of struct", t.name()),
            }),
            Some(_) => Ok(Vec::new()),
        }
    }
}

impl Tag {
    /// Reads a `Tag` struct.
    pub fn from_fields(fields: &[(i16, TValue)]) -> Result<Tag, DecodeError> {
        let f = Fields {
            name: "Tag",
            fields,
        };
        let key = f.req_string(1, "key")?;
        let t = f.req_i32(2, "vType")?;
        let v_type = match t {
            0 => TagType::String,
            1 => TagType::Double,
            2 => TagType::Bool,
            3 => TagType::Long,
            4 => TagType::Binary,
            _ => {
                return Err(DecodeError::Field {
                    field: "Tag.vType".to_string(),
                    message: format!("{t} is not a TagType (tag {key:?})"),
                })
            }
        };
        Ok(Tag {
            key,
            v_type,
            v_str: f.string(3, "vStr")?,
            v_double: match f.get(4, "vDouble", TType::Double)? {
                Some(TValue::Double(d)) => Some(*d),
                _ => None,
            },
            v_bool: match f.get(5, "vBool", TType::Bool)? {
                Some(TValue::Bool(b)) => Some(*b),
                _ => None,
            },
            v_long: f.i64(6, "vLong")?,
            v_binary: match f.get(7, "vBinary", TType::Binary)? {
                Some(TValue::Binary(b)) => Some(b.clone()),
                _ => None,
            },
        })
    }

    /// The `Tag` struct.
    pub fn to_value(&self) -> TValue {
        let mut f = vec![
            (1, TValue::Binary(self.key.clone().into_bytes())),
            (2, TValue::I32(self.v_type as i32)),
        ];
        if let Some(s) = &self.v_str {
            f.push((3, TValue::Binary(s.clone().into_bytes())));
        }
        if let Some(d) = self.v_double {
            f.push((4, TValue::Double(d)));
        }
        if let Some(b) = self.v_bool {
            f.push((5, TValue::Bool(b)));
        }
        if let Some(l) = self.v_long {
            f.push((6, TValue::I64(l)));
        }
        if let Some(b) = &self.v_binary {
            f.push((7, TValue::Binary(b.clone())));
        }
        TValue::Struct(f)
    }
}

fn struct_list<T>(items: &[T], f: impl Fn(&T) -> TValue) -> TValue {
    TValue::List(TType::Struct, items.iter().map(f).collect())
}

impl Log {
    fn from_fields(fields: &[(i16, TValue)]) -> Result<Log, DecodeError> {
        let f = Fields {
            name: "Log",
            fields,
        };
        Ok(Log {
            timestamp: f.req_i64(1, "timestamp")?,
            fields: f.list(2, "fields", Tag::from_fields)?,
        })
    }

    fn to_value(&self) -> TValue {
        TValue::Struct(vec![
            (1, TValue::I64(self.timestamp)),
            (2, struct_list(&self.fields, Tag::to_value)),
        ])
    }
}

impl SpanRef {
    fn from_fields(fields: &[(i16, TValue)]) -> Result<SpanRef, DecodeError> {
        let f = Fields {
            name: "SpanRef",
            fields,
        };
        let t = f.req_i32(1, "refType")?;
        let ref_type = match t {
            0 => SpanRefType::ChildOf,
            1 => SpanRefType::FollowsFrom,
            _ => {
                return Err(DecodeError::Field {
                    field: "SpanRef.refType".to_string(),
                    message: format!("{t} is not a SpanRefType"),
                })
            }
        };
        Ok(SpanRef {
            ref_type,
            trace_id_low: f.req_i64(2, "traceIdLow")?,
            trace_id_high: f.req_i64(3, "traceIdHigh")?,
            span_id: f.req_i64(4, "spanId")?,
        })
    }

    fn to_value(&self) -> TValue {
        TValue::Struct(vec![
            (1, TValue::I32(self.ref_type as i32)),
            (2, TValue::I64(self.trace_id_low)),
            (3, TValue::I64(self.trace_id_high)),
            (4, TValue::I64(self.span_id)),
        ])
    }
}

impl Span {
    fn from_fields(fields: &[(i16, TValue)]) -> Result<Span, DecodeError> {
        let f = Fields {
            name: "Span",
            fields,
        };
        Ok(Span {
            trace_id_low: f.req_i64(1, "traceIdLow")?,
            trace_id_high: f.req_i64(2, "traceIdHigh")?,
            span_id: f.req_i64(3, "spanId")?,
            parent_span_id: f.req_i64(4, "parentSpanId")?,
            operation_name: f.req_string(5, "operationName")?,
            references: f.list(6, "references", SpanRef::from_fields)?,
            flags: f.req_i32(7, "flags")?,
            start_time: f.req_i64(8, "startTime")?,
            duration: f.req_i64(9, "duration")?,
            tags: f.list(10, "tags", Tag::from_fields)?,
            logs: f.list(11, "logs", Log::from_fields)?,
            incomplete: match f.get(12, "incomplete", TType::Bool)? {
                Some(TValue::Bool(b)) => Some(*b),
                _ => None,
            },
        })
    }

    fn to_value(&self) -> TValue {
        let mut f = vec![
            (1, TValue::I64(self.trace_id_low)),
            (2, TValue::I64(self.trace_id_high)),
            (3, TValue::I64(self.span_id)),
            (4, TValue::I64(self.parent_span_id)),
            (5, TValue::Binary(self.operation_name.clone().into_bytes())),
        ];
        if !self.references.is_empty() {
            f.push((6, struct_list(&self.references, SpanRef::to_value)));
        }
        f.push((7, TValue::I32(self.flags)));
        f.push((8, TValue::I64(self.start_time)));
        f.push((9, TValue::I64(self.duration)));
        if !self.tags.is_empty() {
            f.push((10, struct_list(&self.tags, Tag::to_value)));
        }
        if !self.logs.is_empty() {
            f.push((11, struct_list(&self.logs, Log::to_value)));
        }
        if let Some(b) = self.incomplete {
            f.push((12, TValue::Bool(b)));
        }
        TValue::Struct(f)
    }
}

impl Process {
    fn from_fields(fields: &[(i16, TValue)]) -> Result<Process, DecodeError> {
        let f = Fields {
            name: "Process",
            fields,
        };
        Ok(Process {
            service_name: f.req_string(1, "serviceName")?,
            tags: f.list(2, "tags", Tag::from_fields)?,
        })
    }

    fn to_value(&self) -> TValue {
        let mut f = vec![(1, TValue::Binary(self.service_name.clone().into_bytes()))];
        if !self.tags.is_empty() {
            f.push((2, struct_list(&self.tags, Tag::to_value)));
        }
        TValue::Struct(f)
    }
}

impl Batch {
    /// Reads a `Batch` struct.
    pub fn from_fields(fields: &[(i16, TValue)]) -> Result<Batch, DecodeError> {
        let f = Fields {
            name: "Batch",
            fields,
        };
        let process = match f.required(1, "process", TType::Struct)? {
            TValue::Struct(p) => Process::from_fields(p)?,
            _ => Process::default(),
        };
        f.required(2, "spans", TType::List)?;
        let stats = match f.get(4, "stats", TType::Struct)? {
            Some(TValue::Struct(s)) => {
                let s = Fields {
                    name: "ClientStats",
                    fields: s,
                };
                Some(ClientStats {
                    full_queue_dropped_spans: s.req_i64(1, "fullQueueDroppedSpans")?,
                    too_large_dropped_spans: s.req_i64(2, "tooLargeDroppedSpans")?,
                    failed_to_emit_spans: s.req_i64(3, "failedToEmitSpans")?,
                })
            }
            _ => None,
        };
        Ok(Batch {
            process,
            spans: f.list(2, "spans", Span::from_fields)?,
            seq_no: f.i64(3, "seqNo")?,
            stats,
        })
    }

    /// The `Batch` struct's fields.
    pub fn to_fields(&self) -> Vec<(i16, TValue)> {
        let mut f = vec![
            (1, self.process.to_value()),
            (2, struct_list(&self.spans, Span::to_value)),
        ];
        if let Some(s) = self.seq_no {
            f.push((3, TValue::I64(s)));
        }
        if let Some(s) = &self.stats {
            f.push((
                4,
                TValue::Struct(vec![
                    (1, TValue::I64(s.full_queue_dropped_spans)),
                    (2, TValue::I64(s.too_large_dropped_spans)),
                    (3, TValue::I64(s.failed_to_emit_spans)),
                ]),
            ));
        }
        f
    }
}

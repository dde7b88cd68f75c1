//! Hand-written readers and writers for the Thrift compact and binary protocols, going through a
//! protocol-neutral value tree ([`TValue`]) so that the Jaeger structs are mapped once.
//!
//! The readers never panic and never allocate more than the input can hold: every length is
//! checked against the bytes that remain, and nesting is capped at [`MAX_DEPTH`].

use crate::DecodeError;

/// Deepest struct/list nesting accepted (Jaeger's deepest is Batch > Span > Log > Tag).
pub const MAX_DEPTH: usize = 16;

/// Which Thrift protocol a payload uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// TCompactProtocol (varints, field deltas).
    Compact,
    /// TBinaryProtocol (big-endian fixed-width).
    Binary,
}

/// A Thrift type, numbered as in the binary protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TType {
    /// bool
    Bool,
    /// byte (i8)
    Byte,
    /// double
    Double,
    /// i16
    I16,
    /// i32 (and enums)
    I32,
    /// i64
    I64,
    /// string / binary
    Binary,
    /// struct
    Struct,
    /// map
    Map,
    /// set
    Set,
    /// list
    List,
}

impl TType {
    fn binary_id(self) -> u8 {
        match self {
            TType::Bool => 2,
            TType::Byte => 3,
            TType::Double => 4,
            TType::I16 => 6,
            TType::I32 => 8,
            TType::I64 => 10,
            TType::Binary => 11,
            TType::Struct => 12,
            TType::Map => 13,
            TType::Set => 14,
            TType::List => 15,
        }
    }

    fn from_binary(id: u8) -> Option<TType> {
        Some(match id {
            2 => TType::Bool,
            3 => TType::Byte,
            4 => TType::Double,
            6 => TType::I16,
            8 => TType::I32,
            10 => TType::I64,
            11 => TType::Binary,
            12 => TType::Struct,
            13 => TType::Map,
            14 => TType::Set,
            15 => TType::List,
            _ => return None,
        })
    }

    fn compact_id(self) -> u8 {
        match self {
            TType::Bool => 1,
            TType::Byte => 3,
            TType::I16 => 4,
            TType::I32 => 5,
            TType::I64 => 6,
            TType::Double => 7,
            TType::Binary => 8,
            TType::List => 9,
            TType::Set => 10,
            TType::Map => 11,
            TType::Struct => 12,
        }
    }

    fn from_compact(id: u8) -> Option<TType> {
        Some(match id {
            1 | 2 => TType::Bool,
            3 => TType::Byte,
            4 => TType::I16,
            5 => TType::I32,
            6 => TType::I64,
            7 => TType::Double,
            8 => TType::Binary,
            9 => TType::List,
            10 => TType::Set,
            11 => TType::Map,
            12 => TType::Struct,
            _ => return None,
        })
    }

    /// Smallest encoding of one value of this type, used to bound element counts.
    fn min_size(self, protocol: Protocol) -> usize {
        match (protocol, self) {
            (Protocol::Binary, TType::Double | TType::I64) => 8,
            (Protocol::Binary, TType::I32 | TType::Binary | TType::Map | TType::Set) => 4,
            (Protocol::Binary, TType::List) => 5,
            (Protocol::Binary, TType::I16) => 2,
            (Protocol::Compact, TType::Double) => 8,
            _ => 1,
        }
    }

    /// The Thrift IDL name, for error messages.
    pub fn name(self) -> &'static str {
        match self {
            TType::Bool => "bool",
            TType::Byte => "byte",
            TType::Double => "double",
            TType::I16 => "i16",
            TType::I32 => "i32",
            TType::I64 => "i64",
            TType::Binary => "string",
            TType::Struct => "struct",
            TType::Map => "map",
            TType::Set => "set",
            TType::List => "list",
        }
    }
}

/// A decoded Thrift value.
#[derive(Clone, Debug, PartialEq)]
pub enum TValue {
    /// bool
    Bool(bool),
    /// byte
    Byte(i8),
    /// double
    Double(f64),
    /// i16
    I16(i16),
    /// i32
    I32(i32),
    /// i64
    I64(i64),
    /// string or binary
    Binary(Vec<u8>),
    /// struct: (field id, value) in wire order
    Struct(Vec<(i16, TValue)>),
    /// map with its key and value types
    Map(TType, TType, Vec<(TValue, TValue)>),
    /// set with its element type
    Set(TType, Vec<TValue>),
    /// list with its element type
    List(TType, Vec<TValue>),
}

impl TValue {
    /// The value's type.
    pub fn ttype(&self) -> TType {
        match self {
            TValue::Bool(_) => TType::Bool,
            TValue::Byte(_) => TType::Byte,
            TValue::Double(_) => TType::Double,
            TValue::I16(_) => TType::I16,
            TValue::I32(_) => TType::I32,
            TValue::I64(_) => TType::I64,
            TValue::Binary(_) => TType::Binary,
            TValue::Struct(_) => TType::Struct,
            TValue::Map(..) => TType::Map,
            TValue::Set(..) => TType::Set,
            TValue::List(..) => TType::List,
        }
    }
}

/// Thrift message types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    /// A call expecting a reply.
    Call = 1,
    /// A reply.
    Reply = 2,
    /// An exception reply.
    Exception = 3,
    /// A call without reply (`emitBatch`).
    Oneway = 4,
}

impl MessageType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => MessageType::Call,
            2 => MessageType::Reply,
            3 => MessageType::Exception,
            4 => MessageType::Oneway,
            _ => return None,
        })
    }
}

/// A decoded Thrift message: header and argument struct.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Method name.
    pub name: String,
    /// Message type.
    pub kind: MessageType,
    /// Sequence id.
    pub seq_id: i32,
    /// The arguments struct's fields.
    pub args: Vec<(i16, TValue)>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    protocol: Protocol,
}

impl<'a> Reader<'a> {
    fn truncated(&self, need: usize, what: &str) -> DecodeError {
        DecodeError::Truncated {
            offset: self.pos,
            need,
            what: what.to_string(),
            left: self.buf.len() - self.pos,
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(self.truncated(n, what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    fn fixed<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn varint(&mut self, what: &str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.u8(what)?;
            if shift == 63 && b > 1 {
                return Err(DecodeError::Malformed {
                    offset: start,
                    message: format!("varint for {what} overflows 64 bits"),
                });
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Malformed {
            offset: start,
            message: format!("varint for {what} is longer than 10 bytes"),
        })
    }

    fn zigzag(&mut self, what: &str) -> Result<i64, DecodeError> {
        let v = self.varint(what)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn i16(&mut self, what: &str) -> Result<i16, DecodeError> {
        match self.protocol {
            Protocol::Binary => Ok(i16::from_be_bytes(self.fixed(what)?)),
            Protocol::Compact => {
                let start = self.pos;
                let v = self.zigzag(what)?;
                i16::try_from(v).map_err(|_| DecodeError::Malformed {
                    offset: start,
                    message: format!("{what} {v} does not fit in i16"),
                })
            }
        }
    }

    fn i32(&mut self, what: &str) -> Result<i32, DecodeError> {
        match self.protocol {
            Protocol::Binary => Ok(i32::from_be_bytes(self.fixed(what)?)),
            Protocol::Compact => {
                let start = self.pos;
                let v = self.zigzag(what)?;
                i32::try_from(v).map_err(|_| DecodeError::Malformed {
                    offset: start,
                    message: format!("{what} {v} does not fit in i32"),
                })
            }
        }
    }

    fn i64(&mut self, what: &str) -> Result<i64, DecodeError> {
        match self.protocol {
            Protocol::Binary => Ok(i64::from_be_bytes(self.fixed(what)?)),
            Protocol::Compact => self.zigzag(what),
        }
    }

    fn double(&mut self) -> Result<f64, DecodeError> {
        Ok(match self.protocol {
            Protocol::Binary => f64::from_be_bytes(self.fixed("double")?),
            Protocol::Compact => f64::from_le_bytes(self.fixed("double")?),
        })
    }

    /// A length prefix, checked against the remaining bytes (`unit` bytes per element).
    fn length(&mut self, what: &str, unit: usize) -> Result<usize, DecodeError> {
        let start = self.pos;
        let n: i64 = match self.protocol {
            Protocol::Binary => i64::from(i32::from_be_bytes(self.fixed(what)?)),
            Protocol::Compact => i64::try_from(self.varint(what)?).unwrap_or(i64::MAX),
        };
        let left = self.buf.len() - self.pos;
        if n < 0 {
            return Err(DecodeError::Malformed {
                offset: start,
                message: format!("negative {what} {n}"),
            });
        }
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n.saturating_mul(unit) > left {
            return Err(DecodeError::Malformed {
                offset: start,
                message: format!("{what} {n} exceeds the {left} bytes left"),
            });
        }
        Ok(n)
    }

    fn binary(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = self.length("string length", 1)?;
        Ok(self.take(n, "string")?.to_vec())
    }

    fn ttype(&mut self, id: u8, at: usize) -> Result<TType, DecodeError> {
        let t = match self.protocol {
            Protocol::Binary => TType::from_binary(id),
            Protocol::Compact => TType::from_compact(id),
        };
        t.ok_or_else(|| DecodeError::Malformed {
            offset: at,
            message: format!("unknown type id {id}"),
        })
    }

    fn value(&mut self, t: TType, depth: usize) -> Result<TValue, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::Malformed {
                offset: self.pos,
                message: format!("nesting deeper than {MAX_DEPTH}"),
            });
        }
        Ok(match t {
            TType::Bool => {
                let at = self.pos;
                match self.u8("bool")? {
                    // binary writes 0/1, compact writes 1 (true) / 2 (false) inside collections
                    1 => TValue::Bool(true),
                    0 | 2 => TValue::Bool(false),
                    b => {
                        return Err(DecodeError::Malformed {
                            offset: at,
                            message: format!("bool byte {b} is not 0, 1 or 2"),
                        })
                    }
                }
            }
            TType::Byte => TValue::Byte(self.u8("byte")? as i8),
            TType::Double => TValue::Double(self.double()?),
            TType::I16 => TValue::I16(self.i16("i16")?),
            TType::I32 => TValue::I32(self.i32("i32")?),
            TType::I64 => TValue::I64(self.i64("i64")?),
            TType::Binary => TValue::Binary(self.binary()?),
            TType::Struct => TValue::Struct(self.fields(depth + 1)?),
            TType::List | TType::Set => {
                let (elem, items) = self.list(depth + 1)?;
                if t == TType::List {
                    TValue::List(elem, items)
                } else {
                    TValue::Set(elem, items)
                }
            }
            TType::Map => self.map(depth + 1)?,
        })
    }

    fn list(&mut self, depth: usize) -> Result<(TType, Vec<TValue>), DecodeError> {
        let at = self.pos;
        let (elem, n) = match self.protocol {
            Protocol::Binary => {
                let id = self.u8("list element type")?;
                let elem = self.ttype(id, at)?;
                (
                    elem,
                    self.length("list size", elem.min_size(self.protocol))?,
                )
            }
            Protocol::Compact => {
                let h = self.u8("list header")?;
                let elem = self.ttype(h & 0x0f, at)?;
                let n = if h >> 4 == 0x0f {
                    self.length("list size", elem.min_size(self.protocol))?
                } else {
                    usize::from(h >> 4)
                };
                (elem, n)
            }
        };
        let mut items = Vec::with_capacity(n.min(self.buf.len() - self.pos));
        for _ in 0..n {
            items.push(self.value(elem, depth)?);
        }
        Ok((elem, items))
    }

    fn map(&mut self, depth: usize) -> Result<TValue, DecodeError> {
        let at = self.pos;
        let (k, v, n) = match self.protocol {
            Protocol::Binary => {
                let k = self.u8("map key type")?;
                let v = self.u8("map value type")?;
                let (k, v) = (self.ttype(k, at)?, self.ttype(v, at + 1)?);
                (k, v, self.length("map size", 2)?)
            }
            Protocol::Compact => {
                let n = self.length("map size", 2)?;
                if n == 0 {
                    return Ok(TValue::Map(TType::Binary, TType::Binary, Vec::new()));
                }
                let h = self.u8("map types")?;
                (self.ttype(h >> 4, at)?, self.ttype(h & 0x0f, at)?, n)
            }
        };
        let mut items = Vec::with_capacity(n.min(self.buf.len() - self.pos));
        for _ in 0..n {
            let key = self.value(k, depth)?;
            let val = self.value(v, depth)?;
            items.push((key, val));
        }
        Ok(TValue::Map(k, v, items))
    }

    fn fields(&mut self, depth: usize) -> Result<Vec<(i16, TValue)>, DecodeError> {
        let mut out = Vec::new();
        let mut last_id: i16 = 0;
        loop {
            let at = self.pos;
            let h = self.u8("field header")?;
            if h == 0 {
                return Ok(out);
            }
            match self.protocol {
                Protocol::Binary => {
                    let t = self.ttype(h, at)?;
                    let id = self.i16("field id")?;
                    out.push((id, self.value(t, depth)?));
                }
                Protocol::Compact => {
                    let tid = h & 0x0f;
                    let t = self.ttype(tid, at)?;
                    let delta = h >> 4;
                    let id = if delta == 0 {
                        self.i16("field id")?
                    } else {
                        last_id.checked_add(i16::from(delta)).ok_or_else(|| {
                            DecodeError::Malformed {
                                offset: at,
                                message: format!("field id {last_id} + {delta} overflows"),
                            }
                        })?
                    };
                    last_id = id;
                    let v = if t == TType::Bool {
                        TValue::Bool(tid == 1)
                    } else {
                        self.value(t, depth)?
                    };
                    out.push((id, v));
                }
            }
        }
    }

    fn message(&mut self) -> Result<Message, DecodeError> {
        let (name, kind, seq_id) = match self.protocol {
            Protocol::Compact => {
                let id = self.u8("protocol id")?;
                if id != 0x82 {
                    return Err(DecodeError::Malformed {
                        offset: 0,
                        message: format!("protocol id 0x{id:02x} is not compact (0x82)"),
                    });
                }
                let vt = self.u8("version and type")?;
                if vt & 0x1f != 1 {
                    return Err(DecodeError::Malformed {
                        offset: 1,
                        message: format!("compact protocol version {} is not 1", vt & 0x1f),
                    });
                }
                let kind = message_type(vt >> 5, 1)?;
                let seq = i32::try_from(self.varint("sequence id")?).unwrap_or(0);
                let name = self.binary()?;
                (name, kind, seq)
            }
            Protocol::Binary => {
                let head = i32::from_be_bytes(self.fixed("message header")?);
                if head < 0 {
                    let version = (head as u32) & 0xffff_0000;
                    if version != 0x8001_0000 {
                        return Err(DecodeError::Malformed {
                            offset: 0,
                            message: format!(
                                "binary protocol version 0x{version:08x} is not 0x80010000"
                            ),
                        });
                    }
                    let kind = message_type((head & 0xff) as u8, 3)?;
                    let name = self.binary()?;
                    let seq = self.i32("sequence id")?;
                    (name, kind, seq)
                } else {
                    // old non-strict header: name length, name, type byte, seq id
                    self.pos = 0;
                    let name = self.binary()?;
                    let at = self.pos;
                    let kind = message_type(self.u8("message type")?, at)?;
                    let seq = self.i32("sequence id")?;
                    (name, kind, seq)
                }
            }
        };
        let name = String::from_utf8(name).map_err(|_| DecodeError::Malformed {
            offset: 0,
            message: "message name is not UTF-8".to_string(),
        })?;
        let args = self.fields(1)?;
        Ok(Message {
            name,
            kind,
            seq_id,
            args,
        })
    }
}

fn message_type(v: u8, offset: usize) -> Result<MessageType, DecodeError> {
    MessageType::from_u8(v).ok_or_else(|| DecodeError::Malformed {
        offset,
        message: format!("unknown message type {v}"),
    })
}

/// Reads one Thrift message (header and argument struct); trailing bytes are an error.
pub fn read_message(buf: &[u8], protocol: Protocol) -> Result<Message, DecodeError> {
    let mut r = Reader {
        buf,
        pos: 0,
        protocol,
    };
    let m = r.message()?;
    trailing(&r)?;
    Ok(m)
}

/// Reads one bare struct (as Jaeger's HTTP endpoint receives a `Batch`).
pub fn read_struct(buf: &[u8], protocol: Protocol) -> Result<Vec<(i16, TValue)>, DecodeError> {
    let mut r = Reader {
        buf,
        pos: 0,
        protocol,
    };
    let f = r.fields(1)?;
    trailing(&r)?;
    Ok(f)
}

fn trailing(r: &Reader<'_>) -> Result<(), DecodeError> {
    if r.pos != r.buf.len() {
        return Err(DecodeError::Malformed {
            offset: r.pos,
            message: format!("{} trailing bytes", r.buf.len() - r.pos),
        });
    }
    Ok(())
}

/// Writes Thrift values in either protocol.
pub struct Writer {
    out: Vec<u8>,
    protocol: Protocol,
    last_id: Vec<i16>,
}

impl Writer {
    /// An empty writer.
    pub fn new(protocol: Protocol) -> Self {
        Writer {
            out: Vec::new(),
            protocol,
            last_id: Vec::new(),
        }
    }

    /// The bytes written.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    fn length(&mut self, n: usize) {
        match self.protocol {
            Protocol::Binary => self
                .out
                .extend_from_slice(&(i32::try_from(n).unwrap_or(i32::MAX)).to_be_bytes()),
            Protocol::Compact => self.varint(n as u64),
        }
    }

    fn binary(&mut self, b: &[u8]) {
        self.length(b.len());
        self.out.extend_from_slice(b);
    }

    fn type_id(&self, t: TType) -> u8 {
        match self.protocol {
            Protocol::Binary => t.binary_id(),
            Protocol::Compact => t.compact_id(),
        }
    }

    /// Writes a message header and its argument struct.
    pub fn message(&mut self, name: &str, kind: MessageType, seq_id: i32, args: &[(i16, TValue)]) {
        match self.protocol {
            Protocol::Compact => {
                self.out.push(0x82);
                self.out.push(((kind as u8) << 5) | 1);
                self.varint(u64::from(seq_id as u32));
                self.binary(name.as_bytes());
            }
            Protocol::Binary => {
                let head = 0x8001_0000u32 | kind as u32;
                self.out.extend_from_slice(&head.to_be_bytes());
                self.binary(name.as_bytes());
                self.out.extend_from_slice(&seq_id.to_be_bytes());
            }
        }
        self.fields(args);
    }

    /// Writes a struct's fields and its stop byte.
    pub fn fields(&mut self, fields: &[(i16, TValue)]) {
        self.last_id.push(0);
        for (id, v) in fields {
            let t = v.ttype();
            match self.protocol {
                Protocol::Binary => {
                    self.out.push(t.binary_id());
                    self.out.extend_from_slice(&id.to_be_bytes());
                    self.value(v);
                }
                Protocol::Compact => {
                    let tid = match v {
                        TValue::Bool(true) => 1,
                        TValue::Bool(false) => 2,
                        _ => t.compact_id(),
                    };
                    let last = self.last_id.last().copied().unwrap_or(0);
                    let delta = i32::from(*id) - i32::from(last);
                    if (1..=15).contains(&delta) {
                        self.out.push(((delta as u8) << 4) | tid);
                    } else {
                        self.out.push(tid);
                        self.zigzag(i64::from(*id));
                    }
                    if let Some(l) = self.last_id.last_mut() {
                        *l = *id;
                    }
                    if !matches!(v, TValue::Bool(_)) {
                        self.value(v);
                    }
                }
            }
        }
        self.last_id.pop();
        self.out.push(0);
    }

    fn value(&mut self, v: &TValue) {
        match v {
            TValue::Bool(b) => self.out.push(match (self.protocol, b) {
                (Protocol::Compact, false) => 2,
                (_, b) => u8::from(*b),
            }),
            TValue::Byte(b) => self.out.push(*b as u8),
            TValue::Double(d) => match self.protocol {
                Protocol::Binary => self.out.extend_from_slice(&d.to_be_bytes()),
                Protocol::Compact => self.out.extend_from_slice(&d.to_le_bytes()),
            },
            TValue::I16(i) => match self.protocol {
                Protocol::Binary => self.out.extend_from_slice(&i.to_be_bytes()),
                Protocol::Compact => self.zigzag(i64::from(*i)),
            },
            TValue::I32(i) => match self.protocol {
                Protocol::Binary => self.out.extend_from_slice(&i.to_be_bytes()),
                Protocol::Compact => self.zigzag(i64::from(*i)),
            },
            TValue::I64(i) => match self.protocol {
                Protocol::Binary => self.out.extend_from_slice(&i.to_be_bytes()),
                Protocol::Compact => self.zigzag(*i),
            },
            TValue::Binary(b) => self.binary(b),
            TValue::Struct(f) => self.fields(f),
            TValue::List(t, items) | TValue::Set(t, items) => {
                let elem = self.type_id(*t);
                match self.protocol {
                    Protocol::Binary => {
                        self.out.push(elem);
                        self.length(items.len());
                    }
                    Protocol::Compact if items.len() < 15 => {
                        self.out.push(((items.len() as u8) << 4) | elem);
                    }
                    Protocol::Compact => {
                        self.out.push(0xf0 | elem);
                        self.varint(items.len() as u64);
                    }
                }
                for i in items {
                    self.value(i);
                }
            }
            TValue::Map(k, val, items) => {
                let (kid, vid) = (self.type_id(*k), self.type_id(*val));
                match self.protocol {
                    Protocol::Binary => {
                        self.out.push(kid);
                        self.out.push(vid);
                        self.length(items.len());
                    }
                    Protocol::Compact => {
                        self.varint(items.len() as u64);
                        if !items.is_empty() {
                            self.out.push((kid << 4) | vid);
                        }
                    }
                }
                for (a, b) in items {
                    self.value(a);
                    self.value(b);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<(i16, TValue)> {
        vec![
            (1, TValue::I64(-5)),
            (2, TValue::Bool(true)),
            (3, TValue::Bool(false)),
            (20, TValue::Binary(b"hi".to_vec())),
            (-3, TValue::Double(1.5)),
            (
                21,
                TValue::List(TType::Bool, vec![TValue::Bool(true), TValue::Bool(false)]),
            ),
            (
                22,
                TValue::List(TType::I32, (0..20).map(TValue::I32).collect()),
            ),
            (
                23,
                TValue::Map(
                    TType::Binary,
                    TType::I16,
                    vec![(TValue::Binary(b"k".to_vec()), TValue::I16(-7))],
                ),
            ),
            (24, TValue::Struct(vec![(1, TValue::Byte(-1))])),
            (25, TValue::Set(TType::I64, vec![TValue::I64(i64::MIN)])),
        ]
    }

    #[test]
    fn round_trip_both_protocols() {
        for p in [Protocol::Compact, Protocol::Binary] {
            let mut w = Writer::new(p);
            w.message("emitBatch", MessageType::Oneway, 7, &sample());
            let bytes = w.finish();
            let m = read_message(&bytes, p).unwrap();
            assert_eq!(m.name, "emitBatch");
            assert_eq!(m.kind, MessageType::Oneway);
            assert_eq!(m.seq_id, 7);
            assert_eq!(m.args, sample(), "{p:?}");
            // every prefix is an error, never a panic
            for n in 0..bytes.len() {
                assert!(read_message(&bytes[..n], p).is_err(), "{p:?} prefix {n}");
            }
        }
    }

    #[test]
    fn compact_bytes_are_as_specified() {
        let mut w = Writer::new(Protocol::Compact);
        w.message(
            "a",
            MessageType::Oneway,
            1,
            &[(1, TValue::I32(-1)), (2, TValue::Bool(true))],
        );
        assert_eq!(
            w.finish(),
            [0x82, 0x81, 0x01, 0x01, b'a', 0x15, 0x01, 0x11, 0x00]
        );
        let mut w = Writer::new(Protocol::Binary);
        w.message("a", MessageType::Oneway, 1, &[(1, TValue::I32(-1))]);
        assert_eq!(
            w.finish(),
            [
                0x80, 0x01, 0x00, 0x04, 0, 0, 0, 1, b'a', 0, 0, 0, 1, 8, 0, 1, 0xff, 0xff, 0xff,
                0xff, 0
            ]
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let cases: &[(Protocol, &[u8], &str)] = &[
            (
                Protocol::Compact,
                b"",
                "truncated input at byte 0: protocol id needs 1 bytes, 0 left",
            ),
            (
                Protocol::Compact,
                &[0x80, 0x01],
                "malformed thrift at byte 0: protocol id 0x80 is not compact (0x82)",
            ),
            (
                Protocol::Binary,
                &[0x82, 0x81, 0, 0],
                "malformed thrift at byte 0: binary protocol version 0x82810000 is not 0x80010000",
            ),
            (
                Protocol::Compact,
                &[0x82, 0x81, 0x01, 0x7f],
                "malformed thrift at byte 3: string length 127 exceeds the 0 bytes left",
            ),
            (
                Protocol::Compact,
                &[0x82, 0x81, 0x01, 0x00, 0x1d],
                "malformed thrift at byte 4: unknown type id 13",
            ),
            (
                Protocol::Binary,
                &[
                    0x80, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 1, 12, 0x7f, 0xff, 0xff, 0xff,
                ],
                "malformed thrift at byte 16: list size 2147483647 exceeds the 0 bytes left",
            ),
            (
                Protocol::Compact,
                &[0x82, 0x81, 0x01, 0x00, 0x00, 0x00],
                "malformed thrift at byte 5: 1 trailing bytes",
            ),
        ];
        for (p, bytes, want) in cases {
            let got = read_message(bytes, *p).unwrap_err().to_string();
            assert_eq!(&got, want, "{bytes:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        // 100 nested lists of lists in compact: header 0x19 (1 element, type list)
        let mut b = vec![0x82, 0x81, 0x01, 0x00, 0x19];
        b.extend(std::iter::repeat_n(0x19, 100));
        let e = read_message(&b, Protocol::Compact).unwrap_err().to_string();
        assert!(e.contains("nesting deeper than 16"), "{e}");
    }
}

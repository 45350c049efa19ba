//! Reading the `.pt` files `torch.save(model.state_dict(), path)` writes.
//!
//! Since PyTorch 1.6 such a file is a zip archive (entries stored
//! uncompressed) under one folder, `archive/` or the file's stem:
//! - `<prefix>data.pkl`: a pickle (protocol 2 by default) of the
//!   `OrderedDict`. Each tensor in it is a call
//!   `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`
//!   whose storage is a persistent id
//!   `('storage', torch.FloatStorage, key, location, numel)`;
//! - `<prefix>data/<key>`: the raw little-endian bytes of each storage;
//! - `<prefix>byteorder`: `little` (absent from older files).
//!
//! A tensor is a strided view of its storage: element `(i_0, .., i_n)` lives
//! at `offset + Σ i_k·stride_k`, and several tensors may share one storage.
//! burn-store 0.21's `PytorchStore` ignores the stride, so it reads
//! transposed or sliced views in the wrong order; this module reads the
//! archive itself and honours strides and offsets.
//!
//! The pickle interpreter knows only the opcodes `torch.save` emits for a
//! state_dict and never runs code: globals are names, matched against the
//! few torch rebuild functions, and anything else becomes an opaque value
//! that is skipped. Malformed input gives an error, never a panic: lengths
//! are checked against the bytes left, nesting and ranks are limited, and
//! the tensors expanded are bounded by the file's size.

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read};
use std::rc::Rc;

use burn::tensor::{Element, TensorData, bf16, f16};
use zip::ZipArchive;
use zip::result::ZipError;

/// One tensor of a state_dict, named by its dotted key path.
#[derive(Debug)]
pub(crate) struct PtTensor {
    pub name: String,
    pub data: TensorData,
}

/// The first bytes of a legacy (pre-1.6, non-zip) `torch.save` file: the
/// pickled magic number 0x1950a86a20f9469cfc6c.
const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
/// Deepest nesting of pickled containers accepted.
const MAX_DEPTH: u16 = 256;
/// Most dimensions a tensor may have.
const MAX_RANK: usize = 64;
/// Bytes of tensor names the flattening may produce.
const MAX_NAME_BYTES: usize = 1 << 27;

/// Reads every tensor of a torch.save zip archive, nested dicts flattened with '.'.
pub(crate) fn read_pt(bytes: &[u8]) -> Result<Vec<PtTensor>, String> {
    if bytes.starts_with(LEGACY_MAGIC) {
        return Err(
            "a legacy (pre-1.6) torch.save file: re-save it with a current torch.save".into(),
        );
    }
    let mut zip = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("not a PyTorch zip archive ({e})"))?;
    // `archive/data.pkl` (or `<stem>/data.pkl`): one folder deep at most.
    let prefix = zip
        .file_names()
        .find_map(|name| {
            name.strip_suffix("data.pkl")
                .filter(|p| p.is_empty() || (p.ends_with('/') && p.matches('/').count() == 1))
                .map(str::to_owned)
        })
        .ok_or("not a PyTorch zip archive (it has no data.pkl)")?;
    if entry(&mut zip, &format!("{prefix}byteorder"))?.is_some_and(|o| o.trim_ascii() == b"big") {
        return Err("a big-endian torch.save file: these are not supported".into());
    }
    let pickle = entry(&mut zip, &format!("{prefix}data.pkl"))?.ok_or("data.pkl is unreadable")?;
    let root = Unpickler {
        data: &pickle,
        pos: 0,
        at: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
    }
    .run()?;
    let Value::Dict(dict, _) = &root else {
        return Err(
            "data.pkl holds no state_dict (a pickled module? save model.state_dict() instead)"
                .into(),
        );
    };
    let mut views = Vec::new();
    let mut name_budget = MAX_NAME_BYTES;
    flatten(dict, "", &mut views, &mut name_budget)?;

    // Views share storages: read each storage entry once.
    let mut storages: HashMap<Rc<str>, Vec<u8>> = HashMap::new();
    let mut seen = HashSet::new();
    // Tied views may repeat a storage's data; bound the total all the same.
    let mut budget = bytes.len().saturating_mul(8).saturating_add(1 << 26);
    let mut tensors = Vec::with_capacity(views.len());
    for (name, view) in views {
        if !seen.insert(name.clone()) {
            return Err(format!("tensor {name} appears twice in the state_dict"));
        }
        let key = &view.storage.key;
        if !storages.contains_key(key) {
            let data = entry(&mut zip, &format!("{prefix}data/{key}"))?.ok_or_else(|| {
                format!("tensor {name}: storage data/{key} is missing from the archive")
            })?;
            storages.insert(key.clone(), data);
        }
        let storage = storages.get(key).map(Vec::as_slice).unwrap_or_default();
        let data = gather(&name, &view, storage, &mut budget)?;
        tensors.push(PtTensor { name, data });
    }
    Ok(tensors)
}

/// The bytes of an archive entry, or `None` when there is none of that name.
fn entry(zip: &mut ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<Option<Vec<u8>>, String> {
    let mut file = match zip.by_name(name) {
        Ok(file) => file,
        Err(ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(format!("{name}: {e}")),
    };
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(Some(data))
}

/// The element types of torch storages.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dtype {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl Dtype {
    /// By storage class (`torch.FloatStorage`) or dtype (`torch.float32`) name.
    fn from_class(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" | "float32" | "float" => Self::F32,
            "DoubleStorage" | "float64" | "double" => Self::F64,
            "HalfStorage" | "float16" | "half" => Self::F16,
            "BFloat16Storage" | "bfloat16" => Self::BF16,
            "LongStorage" | "int64" | "long" => Self::I64,
            "IntStorage" | "int32" | "int" => Self::I32,
            "ShortStorage" | "int16" | "short" => Self::I16,
            "CharStorage" | "int8" => Self::I8,
            "ByteStorage" | "uint8" | "UntypedStorage" => Self::U8,
            "BoolStorage" | "bool" => Self::Bool,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }
}

/// A storage named by a persistent id: `numel` elements in `data/<key>`.
struct Storage {
    dtype: Dtype,
    key: Rc<str>,
    numel: usize,
}

/// A tensor: a strided view of a storage, as `_rebuild_tensor_v2` got it
/// (validated when gathered, so that errors can name the tensor).
struct View {
    storage: Rc<Storage>,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

/// A pickled value. Containers are shared, copied on write (`Rc::make_mut`),
/// and carry their nesting depth, so that neither memo references nor deep
/// nesting can blow up memory or the stack.
#[derive(Clone)]
enum Value {
    None,
    Bool,
    Int(i64),
    Float,
    Str(Rc<str>),
    Tuple(Rc<Vec<Value>>, u16),
    List(Rc<Vec<Value>>, u16),
    /// Entries in insertion order.
    Dict(Rc<Vec<(Value, Value)>>, u16),
    Global(Rc<str>, Rc<str>),
    Storage(Rc<Storage>),
    Tensor(Rc<View>),
    /// The MARK opcode's stack marker; never inside a container.
    Mark,
    /// Anything this reader does not interpret (bytes, sets, other objects).
    Opaque,
}

impl Value {
    fn depth(&self) -> u16 {
        match self {
            Value::Tuple(_, d) | Value::List(_, d) | Value::Dict(_, d) => *d,
            _ => 0,
        }
    }
}

/// The depth of a container holding values of depths `inner`.
fn nest(inner: impl Iterator<Item = u16>, at: usize) -> Result<u16, String> {
    let depth = inner.max().unwrap_or(0) + 1;
    if depth > MAX_DEPTH {
        return Err(format!(
            "data.pkl nests containers deeper than {MAX_DEPTH} levels (byte {at})"
        ));
    }
    Ok(depth)
}

/// Pairs up `[k0, v0, k1, v1, ..]`.
fn pairs(items: Vec<Value>, at: usize) -> Result<Vec<(Value, Value)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err(format!(
            "data.pkl: a dict of an odd number of items (byte {at})"
        ));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(key), Some(value)) = (items.next(), items.next()) {
        out.push((key, value));
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Rc<str> {
    Rc::from(String::from_utf8_lossy(bytes).as_ref())
}

/// A pickle virtual machine for the opcodes of protocols 2 to 5 that
/// `torch.save` uses.
struct Unpickler<'a> {
    data: &'a [u8],
    /// The next byte to read.
    pos: usize,
    /// Where the current opcode starts (for error messages).
    at: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
}

impl<'a> Unpickler<'a> {
    fn fail(&self, why: &str) -> String {
        format!("data.pkl: {why} (byte {})", self.at)
    }

    fn truncated(&self) -> String {
        format!("data.pkl is truncated (byte {})", self.at)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let data: &'a [u8] = self.data;
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| data.get(self.pos..end))
            .ok_or_else(|| self.truncated())?;
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| self.truncated())
    }

    fn len64(&mut self) -> Result<usize, String> {
        let n = u64::from_le_bytes(self.array::<8>()?);
        usize::try_from(n).map_err(|_| self.truncated())
    }

    /// A newline-terminated line (the operands of GLOBAL).
    fn line(&mut self) -> Result<Rc<str>, String> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.truncated())?;
        let line = self.take(n)?;
        self.take(1)?;
        Ok(text(line))
    }

    fn top(&self) -> Result<&Value, String> {
        match self.stack.last() {
            Some(Value::Mark) => Err(self.fail("a MARK where a value was expected")),
            Some(value) => Ok(value),
            None => Err(self.fail("stack underflow")),
        }
    }

    fn pop(&mut self) -> Result<Value, String> {
        self.top()?;
        self.stack.pop().ok_or_else(|| self.fail("stack underflow"))
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<Value>, String> {
        let mut items = (0..n).map(|_| self.pop()).collect::<Result<Vec<_>, _>>()?;
        items.reverse();
        Ok(items)
    }

    /// The values above the topmost MARK, which is removed too.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self
            .stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or_else(|| self.fail("no MARK on the stack"))?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn push_seq(&mut self, items: Vec<Value>, list: bool) -> Result<(), String> {
        let depth = nest(items.iter().map(Value::depth), self.at)?;
        let items = Rc::new(items);
        self.stack.push(if list {
            Value::List(items, depth)
        } else {
            Value::Tuple(items, depth)
        });
        Ok(())
    }

    /// APPEND(S) and SETITEM(S): adds `items` to the list (or, with
    /// `into_dict`, the dict) on top of the stack.
    fn add_items(&mut self, items: Vec<Value>, into_dict: bool) -> Result<(), String> {
        let at = self.at;
        let inner = nest(items.iter().map(Value::depth), at)?;
        match (self.stack.last_mut(), into_dict) {
            (Some(Value::List(list, depth)), false) => {
                *depth = (*depth).max(inner);
                Rc::make_mut(list).extend(items);
            }
            (Some(Value::Dict(dict, depth)), true) => {
                *depth = (*depth).max(inner);
                Rc::make_mut(dict).extend(pairs(items, at)?);
            }
            (Some(Value::Opaque), _) => {}
            _ => {
                let target = if into_dict { "dict" } else { "list" };
                return Err(format!(
                    "data.pkl: items added to something that is no {target} (byte {at})"
                ));
            }
        }
        Ok(())
    }

    fn put(&mut self, index: u32) -> Result<(), String> {
        let value = self.top()?.clone();
        self.memo.insert(index, value);
        Ok(())
    }

    fn get(&mut self, index: u32) -> Result<(), String> {
        let value = self
            .memo
            .get(&index)
            .cloned()
            .ok_or_else(|| self.fail(&format!("memo entry {index} is missing")))?;
        self.stack.push(value);
        Ok(())
    }

    /// Runs the pickle up to STOP and returns its value.
    fn run(mut self) -> Result<Value, String> {
        loop {
            self.at = self.pos;
            let [op] = self.array::<1>()?;
            match op {
                0x80 => {
                    self.take(1)?; // PROTO
                }
                b'.' => return self.pop(), // STOP
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'}' => self.stack.push(Value::Dict(Rc::default(), 1)),
                b')' => self.stack.push(Value::Tuple(Rc::default(), 1)),
                b']' => self.stack.push(Value::List(Rc::default(), 1)),
                b'(' => self.stack.push(Value::Mark),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push_seq(items, false)?;
                }
                0x85..=0x87 => {
                    // TUPLE1, TUPLE2, TUPLE3
                    let items = self.pop_n(usize::from(op - 0x84))?;
                    self.push_seq(items, false)?;
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push_seq(items, true)?;
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let depth = nest(items.iter().map(Value::depth), self.at)?;
                    let dict = pairs(items, self.at)?;
                    self.stack.push(Value::Dict(Rc::new(dict), depth));
                }
                b'a' => {
                    let value = self.pop()?;
                    self.add_items(vec![value], false)?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.add_items(items, false)?;
                }
                b's' => {
                    let items = self.pop_n(2)?;
                    self.add_items(items, true)?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.add_items(items, true)?;
                }
                // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, SHORT_BINSTRING, BINSTRING
                b'X' | 0x8c | 0x8d | b'U' | b'T' => {
                    let n = match op {
                        b'X' => u32::from_le_bytes(self.array::<4>()?) as usize,
                        0x8d => self.len64()?,
                        b'T' => usize::try_from(i32::from_le_bytes(self.array::<4>()?))
                            .map_err(|_| self.fail("a negative string length"))?,
                        _ => usize::from(self.array::<1>()?[0]),
                    };
                    let bytes = self.take(n)?;
                    self.stack.push(Value::Str(text(bytes)));
                }
                // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
                b'B' | b'C' | 0x8e | 0x96 => {
                    let n = match op {
                        b'B' => u32::from_le_bytes(self.array::<4>()?) as usize,
                        b'C' => usize::from(self.array::<1>()?[0]),
                        _ => self.len64()?,
                    };
                    self.take(n)?;
                    self.stack.push(Value::Opaque);
                }
                b'K' => {
                    let [n] = self.array::<1>()?;
                    self.stack.push(Value::Int(n.into()));
                }
                b'M' => {
                    let n = u16::from_le_bytes(self.array::<2>()?);
                    self.stack.push(Value::Int(n.into()));
                }
                b'J' => {
                    let n = i32::from_le_bytes(self.array::<4>()?);
                    self.stack.push(Value::Int(n.into()));
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes.
                    let [n] = self.array::<1>()?;
                    let raw = self.take(usize::from(n))?;
                    self.stack.push(if raw.len() <= 8 {
                        let sign = if raw.last().is_some_and(|b| (b & 0x80) != 0) {
                            0xff
                        } else {
                            0
                        };
                        let mut le = [sign; 8];
                        for (d, s) in le.iter_mut().zip(raw) {
                            *d = *s;
                        }
                        Value::Int(i64::from_le_bytes(le))
                    } else {
                        Value::Opaque
                    });
                }
                b'G' => {
                    self.take(8)?; // BINFLOAT: no float matters here
                    self.stack.push(Value::Float);
                }
                0x88 | 0x89 => self.stack.push(Value::Bool),
                b'N' => self.stack.push(Value::None),
                b'q' => {
                    let [i] = self.array::<1>()?;
                    self.put(i.into())?;
                }
                b'r' => {
                    let i = u32::from_le_bytes(self.array::<4>()?);
                    self.put(i)?;
                }
                0x94 => {
                    // MEMOIZE
                    let i =
                        u32::try_from(self.memo.len()).map_err(|_| self.fail("memo overflow"))?;
                    self.put(i)?;
                }
                b'h' => {
                    let [i] = self.array::<1>()?;
                    self.get(i.into())?;
                }
                b'j' => {
                    let i = u32::from_le_bytes(self.array::<4>()?);
                    self.get(i)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(module, name));
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return Err(self.fail("STACK_GLOBAL of non-strings"));
                    };
                    self.stack.push(Value::Global(module, name));
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let value = reduce(&func, &args, 0).map_err(|e| self.fail(&e))?;
                    self.stack.push(value);
                }
                b'b' => {
                    // BUILD: the state (an OrderedDict's `_metadata`) is dropped.
                    self.pop()?;
                    self.top()?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = storage(&pid).map_err(|e| self.fail(&e))?;
                    self.stack.push(storage);
                }
                0x81 => {
                    // NEWOBJ: cls, args
                    self.pop_n(2)?;
                    self.stack.push(Value::Opaque);
                }
                0x92 => {
                    // NEWOBJ_EX: cls, args, kwargs
                    self.pop_n(3)?;
                    self.stack.push(Value::Opaque);
                }
                b'0' => {
                    self.pop()?; // POP
                }
                b'1' => {
                    self.pop_mark()?; // POP_MARK
                }
                b'2' => {
                    // DUP
                    let value = self.top()?.clone();
                    self.stack.push(value);
                }
                0x8f => self.stack.push(Value::Opaque), // EMPTY_SET
                0x90 => {
                    // ADDITEMS (to a set)
                    self.pop_mark()?;
                    self.top()?;
                }
                0x91 => {
                    // FROZENSET
                    self.pop_mark()?;
                    self.stack.push(Value::Opaque);
                }
                _ => {
                    return Err(format!(
                        "data.pkl: unknown pickle opcode 0x{op:02x} at byte {}",
                        self.at
                    ));
                }
            }
        }
    }
}

/// BINPERSID: `('storage', class, key, location, numel)` names a storage.
fn storage(pid: &Value) -> Result<Value, String> {
    let bad = || "a persistent id that is not ('storage', class, key, location, numel)".to_string();
    let Value::Tuple(items, _) = pid else {
        return Err(bad());
    };
    let [
        Value::Str(tag),
        class,
        Value::Str(key),
        _,
        Value::Int(numel),
    ] = items.as_slice()
    else {
        return Err(bad());
    };
    let Value::Global(module, name) = class else {
        return Err(bad());
    };
    if &**tag != "storage" {
        return Err(bad());
    }
    let dtype = Dtype::from_class(name)
        .ok_or_else(|| format!("storage class {module}.{name} is not supported"))?;
    let numel =
        usize::try_from(*numel).map_err(|_| format!("storage {key} has a negative size"))?;
    Ok(Value::Storage(Rc::new(Storage {
        dtype,
        key: key.clone(),
        numel,
    })))
}

/// REDUCE: calls `func` on `args`, for the few torch functions that build a
/// state_dict; anything else gives an opaque value.
fn reduce(func: &Value, args: &Value, nested: u8) -> Result<Value, String> {
    let Value::Global(module, name) = func else {
        return Ok(Value::Opaque);
    };
    let args: &[Value] = match args {
        Value::Tuple(items, _) => items.as_slice(),
        _ => &[],
    };
    Ok(match (&**module, &**name) {
        ("collections", "OrderedDict") => Value::Dict(Rc::default(), 1),
        ("torch._utils", "_rebuild_tensor" | "_rebuild_tensor_v2") => {
            let [
                Value::Storage(storage),
                Value::Int(offset),
                size,
                stride,
                ..,
            ] = args
            else {
                return Err(format!("{name} takes (storage, offset, size, stride, ..)"));
            };
            let view = View {
                storage: storage.clone(),
                offset: *offset,
                size: ints(size)?,
                stride: ints(stride)?,
            };
            Value::Tensor(Rc::new(view))
        }
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => args
            .first()
            .cloned()
            .ok_or_else(|| format!("{name} without arguments"))?,
        // (func, type, args, state): a tensor subclass; rebuild the tensor.
        ("torch._tensor", "_rebuild_from_type_v2") if nested < 8 => match args {
            [func, _, inner, ..] => reduce(func, inner, nested + 1)?,
            _ => return Err("_rebuild_from_type_v2 takes (func, type, args, state)".into()),
        },
        _ => Value::Opaque,
    })
}

/// A tensor's size or stride tuple.
fn ints(value: &Value) -> Result<Vec<i64>, String> {
    let (Value::Tuple(items, _) | Value::List(items, _)) = value else {
        return Err("a tensor's size or stride is not a tuple".into());
    };
    if items.len() > MAX_RANK {
        return Err(format!("a tensor of more than {MAX_RANK} dimensions"));
    }
    let int = |v: &Value| match v {
        Value::Int(i) => Ok(*i),
        _ => Err("a tensor's size or stride holds a non-integer".to_string()),
    };
    items.iter().map(int).collect()
}

/// Lists the tensors of a dict, in order, nested dicts joined with '.';
/// other values are skipped. `budget` bounds the names' total length (a
/// pickle can reference one dict many times).
fn flatten(
    dict: &[(Value, Value)],
    prefix: &str,
    out: &mut Vec<(String, Rc<View>)>,
    budget: &mut usize,
) -> Result<(), String> {
    const TOO_LARGE: &str = "data.pkl: the state_dict's names are too long or too many";
    for (key, value) in dict {
        *budget = budget.checked_sub(1).ok_or(TOO_LARGE)?;
        let key = match key {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            _ => continue,
        };
        let name = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        *budget = budget.checked_sub(name.len()).ok_or(TOO_LARGE)?;
        match value {
            Value::Tensor(view) => out.push((name, view.clone())),
            // Depth is bounded by MAX_DEPTH, so is this recursion.
            Value::Dict(inner, _) => flatten(inner, &name, out, budget)?,
            _ => {}
        }
    }
    Ok(())
}

/// The storage positions of a view's elements, in row-major order.
struct Strided {
    size: Vec<usize>,
    stride: Vec<usize>,
    index: Vec<usize>,
    at: usize,
    left: usize,
}

impl Iterator for Strided {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        self.left = self.left.checked_sub(1)?;
        let here = self.at;
        // Odometer step. Wrapping arithmetic: a size-1 axis may have any
        // stride, and the true positions are in range (checked in `gather`).
        for ((i, &n), &s) in self
            .index
            .iter_mut()
            .zip(&self.size)
            .zip(&self.stride)
            .rev()
        {
            *i += 1;
            self.at = self.at.wrapping_add(s);
            if *i < n {
                break;
            }
            *i = 0;
            self.at = self.at.wrapping_sub(s.wrapping_mul(n));
        }
        Some(here)
    }
}

/// Copies a view's elements, row-major, out of its storage's bytes.
fn gather(name: &str, view: &View, bytes: &[u8], budget: &mut usize) -> Result<TensorData, String> {
    let bad = |why: &str| format!("tensor {name}: {why}");
    let storage = &view.storage;
    let non_negative = |v: &[i64], what: &str| {
        v.iter()
            .map(|&x| usize::try_from(x))
            .collect::<Result<Vec<usize>, _>>()
            .map_err(|_| bad(&format!("negative {what} {v:?}")))
    };
    let size = non_negative(view.size.as_slice(), "size")?;
    let stride = non_negative(view.stride.as_slice(), "stride")?;
    let offset = usize::try_from(view.offset).map_err(|_| bad("negative storage offset"))?;
    if size.len() != stride.len() {
        return Err(bad(&format!(
            "size {size:?} and stride {stride:?} differ in rank"
        )));
    }
    let total = size
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad("too many elements"))?;
    let elem = storage.dtype.size();
    let needed = storage
        .numel
        .checked_mul(elem)
        .ok_or_else(|| bad("storage too large"))?;
    if bytes.len() < needed {
        return Err(bad(&format!(
            "storage data/{} holds {} bytes, fewer than its {} elements need",
            storage.key,
            bytes.len(),
            storage.numel
        )));
    }
    if total > 0 {
        // Every size is at least 1 here; the last element is the farthest.
        let last = size.iter().zip(&stride).try_fold(offset, |at, (&d, &s)| {
            d.saturating_sub(1)
                .checked_mul(s)
                .and_then(|x| at.checked_add(x))
        });
        if last.is_none_or(|last| last >= storage.numel) {
            return Err(bad(&format!(
                "offset {offset}, size {size:?} and stride {stride:?} reach past its storage of {} elements",
                storage.numel
            )));
        }
    }
    let left = *budget;
    *budget = total
        .checked_mul(elem)
        .and_then(|n| left.checked_sub(n))
        .ok_or_else(|| bad("the views expand to far more data than the file holds"))?;
    let shape = size.clone();
    let positions = Strided {
        index: vec![0; size.len()],
        size,
        stride,
        at: offset,
        left: total,
    };
    let data = match storage.dtype {
        Dtype::F32 => decode::<f32, 4>(bytes, positions, shape, f32::from_le_bytes),
        Dtype::F64 => decode::<f64, 8>(bytes, positions, shape, f64::from_le_bytes),
        Dtype::F16 => decode::<f16, 2>(bytes, positions, shape, |b| {
            f16::from_bits(u16::from_le_bytes(b))
        }),
        Dtype::BF16 => decode::<bf16, 2>(bytes, positions, shape, |b| {
            bf16::from_bits(u16::from_le_bytes(b))
        }),
        Dtype::I64 => decode::<i64, 8>(bytes, positions, shape, i64::from_le_bytes),
        Dtype::I32 => decode::<i32, 4>(bytes, positions, shape, i32::from_le_bytes),
        Dtype::I16 => decode::<i16, 2>(bytes, positions, shape, i16::from_le_bytes),
        Dtype::I8 => decode::<i8, 1>(bytes, positions, shape, i8::from_le_bytes),
        Dtype::U8 => decode::<u8, 1>(bytes, positions, shape, u8::from_le_bytes),
        Dtype::Bool => decode::<bool, 1>(bytes, positions, shape, |[b]| b != 0),
    };
    data.ok_or_else(|| bad("a view reaches past its storage"))
}

/// Decodes the little-endian elements at `positions`.
fn decode<E: Element, const N: usize>(
    bytes: &[u8],
    positions: Strided,
    shape: Vec<usize>,
    convert: impl Fn([u8; N]) -> E,
) -> Option<TensorData> {
    let (words, _) = bytes.as_chunks::<N>();
    let mut values = Vec::with_capacity(positions.left);
    for p in positions {
        values.push(convert(*words.get(p)?));
    }
    Some(TensorData::new(values, shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::DType;
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, ZipWriter};

    /// Appends `s` as BINUNICODE.
    fn text(p: &mut Vec<u8>, s: &str) {
        p.push(b'X');
        p.extend((s.len() as u32).to_le_bytes());
        p.extend(s.as_bytes());
    }

    /// A protocol-2 pickle, as torch.save writes it, of an OrderedDict of
    /// views `(name, offset, size, stride)` of the 6-float storage "0".
    fn pickle(views: &[(&str, u8, &[u8], &[u8])]) -> Vec<u8> {
        let mut p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(".to_vec();
        for &(name, offset, size, stride) in views {
            text(&mut p, name);
            p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
            text(&mut p, "storage");
            p.extend(b"ctorch\nFloatStorage\n");
            text(&mut p, "0");
            text(&mut p, "cpu");
            p.extend([b'K', 6, b't', b'Q', b'K', offset, b'(']);
            for &d in size {
                p.extend([b'K', d]);
            }
            p.extend(b"t(");
            for &d in stride {
                p.extend([b'K', d]);
            }
            // requires_grad=False, hooks=OrderedDict(), close args, call.
            p.extend(b"t\x89h\x00)RtR");
        }
        p.extend(b"u}X\x09\x00\x00\x00_metadata}sb.");
        p
    }

    /// A torch.save zip holding `pkl` and storage "0" = [0, 1, 2, 3, 4, 5].
    fn archive(pkl: &[u8]) -> Vec<u8> {
        let storage: Vec<u8> = (0..6u8).flat_map(|i| f32::from(i).to_le_bytes()).collect();
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        let entries = [
            ("archive/data.pkl", pkl),
            ("archive/byteorder", b"little".as_slice()),
            ("archive/data/0", storage.as_slice()),
        ];
        for (name, data) in entries {
            zip.start_file(name, options).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    fn error(bytes: &[u8]) -> String {
        read_pt(bytes).map(|t| t.len()).unwrap_err()
    }

    #[test]
    fn reads_strided_views() {
        let pkl = pickle(&[
            ("a", 0, &[2, 3][..], &[1, 2][..]), // transpose of a 3x2 matrix
            ("b", 1, &[2][..], &[3][..]),       // a column
            ("c", 5, &[][..], &[][..]),         // 0-d
            ("d", 9, &[0, 3][..], &[3, 1][..]), // empty
        ]);
        let tensors = read_pt(&archive(&pkl)).unwrap();
        let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        let values = |i: usize| tensors[i].data.to_vec::<f32>().unwrap();
        assert_eq!(values(0), [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
        assert_eq!(tensors[0].data.shape.as_slice(), [2, 3]);
        assert_eq!(tensors[0].data.dtype, DType::F32);
        assert_eq!(values(1), [1.0, 4.0]);
        assert_eq!(values(2), [5.0]);
        assert!(tensors[2].data.shape.as_slice().is_empty());
        assert!(values(3).is_empty());
        assert_eq!(tensors[3].data.shape.as_slice(), [0, 3]);
    }

    #[test]
    fn rejects_malformed_files() {
        let good = pickle(&[("a", 0, &[2, 3][..], &[1, 2][..])]);
        assert!(error(&archive(&good[..good.len() / 2])).contains("truncated"));
        assert!(error(&archive(b"\x80\x02\xff.")).contains("0xff"));
        let outside = pickle(&[("a", 1, &[2, 3][..], &[3, 1][..])]);
        assert!(error(&archive(&outside)).contains("tensor a"));
        let mut legacy = LEGACY_MAGIC.to_vec();
        legacy.extend([0; 16]);
        assert!(error(&legacy).contains("legacy"));
        let noise: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        assert!(error(&noise).contains("not a PyTorch zip archive"));
    }
}

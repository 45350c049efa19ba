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
//! The pickle itself is run by [`super::pickle`]; this module says what its
//! torch calls mean ([`Torch`]: storages and the few rebuild functions of a
//! state_dict; anything else is opaque) and turns the views into tensors.
//! Malformed input gives a [`PtError`], never a panic: ranks are limited and
//! the tensors expanded are bounded by the file's size.

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read};
use std::rc::Rc;

use burn::tensor::{Element, TensorData, bf16, f16};
use zip::ZipArchive;
use zip::result::ZipError;

use super::pickle::{self, PickleError, Value};

/// One tensor of a state_dict, named by its dotted key path.
#[derive(Debug)]
pub(crate) struct PtTensor {
    pub name: String,
    pub data: TensorData,
}

/// Why a `.pt` file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PtError {
    /// A pre-1.6 `torch.save` file (a bare pickle, not a zip archive).
    #[error("a legacy (pre-1.6) torch.save file: re-save it with a current torch.save")]
    Legacy,
    /// Not a zip archive, or one without `data.pkl`.
    #[error("not a PyTorch zip archive ({reason})")]
    NotAnArchive {
        /// What the zip reader said, or what is missing.
        reason: String,
    },
    /// An archive entry that could not be read.
    #[error("{entry}: {reason}")]
    Entry {
        /// The entry's name in the archive.
        entry: String,
        /// What the zip reader said.
        reason: String,
    },
    /// A big-endian file.
    #[error("a big-endian torch.save file: these are not supported")]
    BigEndian,
    /// The pickle is malformed.
    #[error("data.pkl: {0}")]
    Pickle(#[from] PickleError),
    /// The pickle holds something else than a dict of tensors.
    #[error("data.pkl holds no state_dict (a pickled module? save model.state_dict() instead)")]
    NotAStateDict,
    /// The names of the dict's entries add up to more than the reader accepts.
    #[error("data.pkl: the state_dict's names are too long or too many")]
    NamesTooLong,
    /// Two tensors of one name.
    #[error("tensor {name} appears twice in the state_dict")]
    Duplicate {
        /// The tensor.
        name: String,
    },
    /// A tensor whose view does not fit its storage, or whose storage is
    /// missing.
    #[error("tensor {name}: {reason}")]
    Tensor {
        /// The tensor.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The first bytes of a legacy (pre-1.6, non-zip) `torch.save` file: the
/// pickled magic number 0x1950a86a20f9469cfc6c.
const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
/// Most dimensions a tensor may have.
const MAX_RANK: usize = 64;
/// Bytes of tensor names the flattening may produce.
const MAX_NAME_BYTES: usize = 1 << 27;
/// How deep `_rebuild_from_type_v2` calls may nest.
const MAX_REBUILD_NESTING: u8 = 8;

/// Reads every tensor of a torch.save zip archive, nested dicts flattened with '.'.
pub(crate) fn read_pt(bytes: &[u8]) -> Result<Vec<PtTensor>, PtError> {
    if bytes.starts_with(LEGACY_MAGIC) {
        return Err(PtError::Legacy);
    }
    let mut zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| PtError::NotAnArchive {
        reason: e.to_string(),
    })?;
    // `archive/data.pkl` (or `<stem>/data.pkl`): one folder deep at most.
    let prefix = zip
        .file_names()
        .find_map(|name| {
            name.strip_suffix("data.pkl")
                .filter(|p| p.is_empty() || (p.ends_with('/') && p.matches('/').count() == 1))
                .map(str::to_owned)
        })
        .ok_or_else(|| PtError::NotAnArchive {
            reason: "it has no data.pkl".into(),
        })?;
    if entry(&mut zip, &format!("{prefix}byteorder"))?.is_some_and(|o| o.trim_ascii() == b"big") {
        return Err(PtError::BigEndian);
    }
    let name = format!("{prefix}data.pkl");
    let pickle = entry(&mut zip, &name)?.ok_or_else(|| PtError::Entry {
        entry: name,
        reason: "unreadable".into(),
    })?;
    let Value::Dict(dict, _) = &pickle::load(&pickle, &mut Torch)? else {
        return Err(PtError::NotAStateDict);
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
            return Err(PtError::Duplicate { name });
        }
        let key = &view.storage.key;
        if !storages.contains_key(key) {
            let data = entry(&mut zip, &format!("{prefix}data/{key}"))?.ok_or_else(|| {
                PtError::Tensor {
                    name: name.clone(),
                    reason: format!("storage data/{key} is missing from the archive"),
                }
            })?;
            storages.insert(key.clone(), data);
        }
        let storage = storages.get(key).map(Vec::as_slice).unwrap_or_default();
        let data = gather(view, storage, &mut budget).map_err(|reason| PtError::Tensor {
            name: name.clone(),
            reason,
        })?;
        tensors.push(PtTensor { name, data });
    }
    Ok(tensors)
}

/// The bytes of an archive entry, or `None` when there is none of that name.
fn entry(zip: &mut ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<Option<Vec<u8>>, PtError> {
    let failed = |e: &dyn std::fmt::Display| PtError::Entry {
        entry: name.to_string(),
        reason: e.to_string(),
    };
    let mut file = match zip.by_name(name) {
        Ok(file) => file,
        Err(ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(failed(&e)),
    };
    let mut data = Vec::new();
    file.read_to_end(&mut data).map_err(|e| failed(&e))?;
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

/// What the torch calls of a state_dict pickle build.
enum TorchObject {
    Storage(Rc<Storage>),
    Tensor(View),
}

/// The meaning of a state_dict pickle's persistent ids and calls.
struct Torch;

type TorchValue = Value<TorchObject>;

impl pickle::Objects for Torch {
    type Object = TorchObject;

    /// `('storage', class, key, location, numel)` names a storage.
    fn persistent_load(&mut self, pid: &TorchValue) -> Result<TorchValue, String> {
        let bad =
            || "a persistent id that is not ('storage', class, key, location, numel)".to_string();
        let Value::Tuple(items, _) = pid else {
            return Err(bad());
        };
        let [
            Value::Str(tag),
            Value::Global(module, name),
            Value::Str(key),
            _,
            Value::Int(numel),
        ] = items.as_slice()
        else {
            return Err(bad());
        };
        if &**tag != "storage" {
            return Err(bad());
        }
        let dtype = Dtype::from_class(name)
            .ok_or_else(|| format!("storage class {module}.{name} is not supported"))?;
        let numel =
            usize::try_from(*numel).map_err(|_| format!("storage {key} has a negative size"))?;
        Ok(Value::Object(Rc::new(TorchObject::Storage(Rc::new(
            Storage {
                dtype,
                key: key.clone(),
                numel,
            },
        )))))
    }

    fn reduce(&mut self, func: &TorchValue, args: &TorchValue) -> Result<TorchValue, String> {
        rebuild(func, args, 0)
    }
}

/// Calls `func` on `args`, for the few torch functions that build a
/// state_dict; anything else gives an opaque value.
fn rebuild(func: &TorchValue, args: &TorchValue, nested: u8) -> Result<TorchValue, String> {
    let Value::Global(module, name) = func else {
        return Ok(Value::Opaque);
    };
    let args: &[TorchValue] = match args {
        Value::Tuple(items, _) => items.as_slice(),
        _ => &[],
    };
    Ok(match (&**module, &**name) {
        ("collections", "OrderedDict") => Value::Dict(Rc::default(), 1),
        ("torch._utils", "_rebuild_tensor" | "_rebuild_tensor_v2") => {
            let [Value::Object(storage), Value::Int(offset), size, stride, ..] = args else {
                return Err(format!("{name} takes (storage, offset, size, stride, ..)"));
            };
            let TorchObject::Storage(storage) = &**storage else {
                return Err(format!("{name} takes a storage first, not a tensor"));
            };
            let view = View {
                storage: storage.clone(),
                offset: *offset,
                size: ints(size)?,
                stride: ints(stride)?,
            };
            Value::Object(Rc::new(TorchObject::Tensor(view)))
        }
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => args
            .first()
            .cloned()
            .ok_or_else(|| format!("{name} without arguments"))?,
        // (func, type, args, state): a tensor subclass; rebuild the tensor.
        ("torch._tensor", "_rebuild_from_type_v2") if nested < MAX_REBUILD_NESTING => match args {
            [func, _, inner, ..] => rebuild(func, inner, nested + 1)?,
            _ => return Err("_rebuild_from_type_v2 takes (func, type, args, state)".into()),
        },
        _ => Value::Opaque,
    })
}

/// A tensor's size or stride tuple.
fn ints(value: &TorchValue) -> Result<Vec<i64>, String> {
    let (Value::Tuple(items, _) | Value::List(items, _)) = value else {
        return Err("a tensor's size or stride is not a tuple".into());
    };
    if items.len() > MAX_RANK {
        return Err(format!("a tensor of more than {MAX_RANK} dimensions"));
    }
    let int = |v: &TorchValue| match v {
        Value::Int(i) => Ok(*i),
        _ => Err("a tensor's size or stride holds a non-integer".to_string()),
    };
    items.iter().map(int).collect()
}

/// Lists the tensors of a dict, in order, nested dicts joined with '.';
/// other values are skipped. `budget` bounds the names' total length (a
/// pickle can reference one dict many times).
fn flatten<'a>(
    dict: &'a [(TorchValue, TorchValue)],
    prefix: &str,
    out: &mut Vec<(String, &'a View)>,
    budget: &mut usize,
) -> Result<(), PtError> {
    for (key, value) in dict {
        *budget = budget.checked_sub(1).ok_or(PtError::NamesTooLong)?;
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
        *budget = budget
            .checked_sub(name.len())
            .ok_or(PtError::NamesTooLong)?;
        match value {
            Value::Object(object) => {
                if let TorchObject::Tensor(view) = &**object {
                    out.push((name, view));
                }
            }
            // Depth is bounded by pickle::MAX_DEPTH, so is this recursion.
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
fn gather(view: &View, bytes: &[u8], budget: &mut usize) -> Result<TensorData, String> {
    let bad = |why: &str| why.to_string();
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
        read_pt(bytes).map(|t| t.len()).unwrap_err().to_string()
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
        let read = |bytes: &[u8]| read_pt(bytes).map(|t| t.len());
        assert!(matches!(
            read(&archive(&good[..good.len() / 2])),
            Err(PtError::Pickle(PickleError::Truncated { .. }))
        ));
        assert_eq!(
            read(&archive(b"\x80\x02\xff.")),
            Err(PtError::Pickle(PickleError::UnknownOpcode {
                op: 0xff,
                at: 2
            }))
        );
        let outside = pickle(&[("a", 1, &[2, 3][..], &[3, 1][..])]);
        assert!(
            matches!(read(&archive(&outside)), Err(PtError::Tensor { name, .. }) if name == "a")
        );
        assert!(error(&archive(&outside)).starts_with("tensor a: offset 1"));
        let mut legacy = LEGACY_MAGIC.to_vec();
        legacy.extend([0; 16]);
        assert_eq!(read(&legacy), Err(PtError::Legacy));
        let noise: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        assert!(matches!(read(&noise), Err(PtError::NotAnArchive { .. })));
        assert!(error(&noise).contains("not a PyTorch zip archive"));
    }
}

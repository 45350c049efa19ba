//! A pickle virtual machine for the opcodes of protocols 2 to 5 that
//! `torch.save` emits for a state_dict.
//!
//! It never runs code: a global is a name, and what calling it or loading a
//! persistent id means is left to an [`Objects`] implementation (the torch
//! rebuild functions live in `pt.rs`); anything else becomes an opaque
//! value. Malformed input gives a [`PickleError`], never a panic: lengths are
//! checked against the bytes left and nesting is limited.

use std::collections::HashMap;
use std::rc::Rc;

/// Deepest nesting of pickled containers accepted.
pub(crate) const MAX_DEPTH: u16 = 256;

/// Why a pickle could not be read. `at` is the byte where the opcode at
/// fault starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// The pickle ends inside an opcode or before STOP.
    #[error("truncated (byte {at})")]
    Truncated {
        /// Where the opcode starts.
        at: usize,
    },
    /// An opcode this reader does not know.
    #[error("unknown pickle opcode 0x{op:02x} at byte {at}")]
    UnknownOpcode {
        /// The opcode.
        op: u8,
        /// Where it is.
        at: usize,
    },
    /// Containers nested deeper than 256 levels (`MAX_DEPTH`).
    #[error("nests containers deeper than {MAX_DEPTH} levels (byte {at})")]
    TooDeep {
        /// Where the container is closed.
        at: usize,
    },
    /// An opcode that does not fit the stack (underflow, a missing MARK, a
    /// dict of an odd number of items, ...).
    #[error("{reason} (byte {at})")]
    Malformed {
        /// Where the opcode starts.
        at: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A memo reference to an entry never stored.
    #[error("memo entry {index} is missing (byte {at})")]
    MemoMissing {
        /// The memo index.
        index: u32,
        /// Where the reference is.
        at: usize,
    },
    /// A persistent id or call that the object builder rejected (e.g. a
    /// storage of an unsupported element type).
    #[error("{reason} (byte {at})")]
    Object {
        /// Where the opcode starts.
        at: usize,
        /// The builder's reason.
        reason: String,
    },
}

/// A pickled value. Containers are shared, copied on write (`Rc::make_mut`),
/// and carry their nesting depth, so that neither memo references nor deep
/// nesting can blow up memory or the stack. `O` is what an [`Objects`]
/// builds (storages and tensors for torch).
pub(crate) enum Value<O> {
    None,
    Bool,
    Int(i64),
    Float,
    Str(Rc<str>),
    Tuple(Rc<Vec<Value<O>>>, u16),
    List(Rc<Vec<Value<O>>>, u16),
    /// Entries in insertion order.
    Dict(Rc<Entries<O>>, u16),
    Global(Rc<str>, Rc<str>),
    /// Something the object builder made.
    Object(Rc<O>),
    /// The MARK opcode's stack marker; never inside a container.
    Mark,
    /// Anything this reader does not interpret (bytes, sets, other objects).
    Opaque,
}

impl<O> Clone for Value<O> {
    fn clone(&self) -> Self {
        match self {
            Value::None => Value::None,
            Value::Bool => Value::Bool,
            Value::Int(i) => Value::Int(*i),
            Value::Float => Value::Float,
            Value::Str(s) => Value::Str(s.clone()),
            Value::Tuple(items, d) => Value::Tuple(items.clone(), *d),
            Value::List(items, d) => Value::List(items.clone(), *d),
            Value::Dict(items, d) => Value::Dict(items.clone(), *d),
            Value::Global(m, n) => Value::Global(m.clone(), n.clone()),
            Value::Object(o) => Value::Object(o.clone()),
            Value::Mark => Value::Mark,
            Value::Opaque => Value::Opaque,
        }
    }
}

impl<O> Value<O> {
    fn depth(&self) -> u16 {
        match self {
            Value::Tuple(_, d) | Value::List(_, d) | Value::Dict(_, d) => *d,
            _ => 0,
        }
    }
}

/// What the pickle's calls and persistent ids mean: the only place where a
/// pickle's globals become values.
pub(crate) trait Objects {
    /// The values this builder makes.
    type Object;
    /// BINPERSID: the object a persistent id names.
    fn persistent_load(&mut self, pid: &Value<Self::Object>)
    -> Result<Value<Self::Object>, String>;
    /// REDUCE: `func(*args)`; an [`Value::Opaque`] for calls it does not know.
    fn reduce(
        &mut self,
        func: &Value<Self::Object>,
        args: &Value<Self::Object>,
    ) -> Result<Value<Self::Object>, String>;
}

/// Runs `data` up to STOP and returns its value.
pub(crate) fn load<J: Objects>(
    data: &[u8],
    objects: &mut J,
) -> Result<Value<J::Object>, PickleError> {
    Unpickler {
        data,
        pos: 0,
        at: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
        objects,
    }
    .run()
}

/// The depth of a container holding values of depths `inner`.
fn nest(inner: impl Iterator<Item = u16>, at: usize) -> Result<u16, PickleError> {
    let depth = inner.max().unwrap_or(0) + 1;
    if depth > MAX_DEPTH {
        return Err(PickleError::TooDeep { at });
    }
    Ok(depth)
}

/// A dict's entries, in insertion order.
type Entries<O> = Vec<(Value<O>, Value<O>)>;

/// Pairs up `[k0, v0, k1, v1, ..]`.
fn pairs<O>(items: Vec<Value<O>>, at: usize) -> Result<Entries<O>, PickleError> {
    if !items.len().is_multiple_of(2) {
        return Err(PickleError::Malformed {
            at,
            reason: "a dict of an odd number of items",
        });
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

struct Unpickler<'a, 'o, J: Objects> {
    data: &'a [u8],
    /// The next byte to read.
    pos: usize,
    /// Where the current opcode starts (for error messages).
    at: usize,
    stack: Vec<Value<J::Object>>,
    memo: HashMap<u32, Value<J::Object>>,
    objects: &'o mut J,
}

impl<'a, J: Objects> Unpickler<'a, '_, J> {
    fn malformed(&self, reason: &'static str) -> PickleError {
        PickleError::Malformed {
            at: self.at,
            reason,
        }
    }

    fn truncated(&self) -> PickleError {
        PickleError::Truncated { at: self.at }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let data: &'a [u8] = self.data;
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| data.get(self.pos..end))
            .ok_or_else(|| self.truncated())?;
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| self.truncated())
    }

    fn len64(&mut self) -> Result<usize, PickleError> {
        let n = u64::from_le_bytes(self.array::<8>()?);
        usize::try_from(n).map_err(|_| self.truncated())
    }

    /// A newline-terminated line (the operands of GLOBAL).
    fn line(&mut self) -> Result<Rc<str>, PickleError> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.truncated())?;
        let line = self.take(n)?;
        self.take(1)?;
        Ok(text(line))
    }

    fn top(&self) -> Result<&Value<J::Object>, PickleError> {
        match self.stack.last() {
            Some(Value::Mark) => Err(self.malformed("a MARK where a value was expected")),
            Some(value) => Ok(value),
            None => Err(self.malformed("stack underflow")),
        }
    }

    fn pop(&mut self) -> Result<Value<J::Object>, PickleError> {
        self.top()?;
        self.stack
            .pop()
            .ok_or_else(|| self.malformed("stack underflow"))
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<Value<J::Object>>, PickleError> {
        let mut items = (0..n).map(|_| self.pop()).collect::<Result<Vec<_>, _>>()?;
        items.reverse();
        Ok(items)
    }

    /// The values above the topmost MARK, which is removed too.
    fn pop_mark(&mut self) -> Result<Vec<Value<J::Object>>, PickleError> {
        let mark = self
            .stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or_else(|| self.malformed("no MARK on the stack"))?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn push_seq(&mut self, items: Vec<Value<J::Object>>, list: bool) -> Result<(), PickleError> {
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
    fn add_items(
        &mut self,
        items: Vec<Value<J::Object>>,
        into_dict: bool,
    ) -> Result<(), PickleError> {
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
            (_, true) => return Err(self.malformed("items added to something that is no dict")),
            (_, false) => return Err(self.malformed("items added to something that is no list")),
        }
        Ok(())
    }

    fn put(&mut self, index: u32) -> Result<(), PickleError> {
        let value = self.top()?.clone();
        self.memo.insert(index, value);
        Ok(())
    }

    fn get(&mut self, index: u32) -> Result<(), PickleError> {
        let value = self
            .memo
            .get(&index)
            .cloned()
            .ok_or(PickleError::MemoMissing { index, at: self.at })?;
        self.stack.push(value);
        Ok(())
    }

    fn object(
        &self,
        result: Result<Value<J::Object>, String>,
    ) -> Result<Value<J::Object>, PickleError> {
        result.map_err(|reason| PickleError::Object {
            at: self.at,
            reason,
        })
    }

    /// Runs the pickle up to STOP and returns its value.
    fn run(mut self) -> Result<Value<J::Object>, PickleError> {
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
                            .map_err(|_| self.malformed("a negative string length"))?,
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
                    let i = u32::try_from(self.memo.len())
                        .map_err(|_| self.malformed("memo overflow"))?;
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
                        return Err(self.malformed("STACK_GLOBAL of non-strings"));
                    };
                    self.stack.push(Value::Global(module, name));
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let value = self.objects.reduce(&func, &args);
                    let value = self.object(value)?;
                    self.stack.push(value);
                }
                b'b' => {
                    // BUILD: the state (an OrderedDict's `_metadata`) is dropped.
                    self.pop()?;
                    self.top()?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let value = self.objects.persistent_load(&pid);
                    let value = self.object(value)?;
                    self.stack.push(value);
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
                _ => return Err(PickleError::UnknownOpcode { op, at: self.at }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds nothing: every call and persistent id is opaque.
    struct Nothing;

    impl Objects for Nothing {
        type Object = ();
        fn persistent_load(&mut self, _: &Value<()>) -> Result<Value<()>, String> {
            Err("no persistent ids here".into())
        }
        fn reduce(&mut self, _: &Value<()>, _: &Value<()>) -> Result<Value<()>, String> {
            Ok(Value::Opaque)
        }
    }

    fn run(bytes: &[u8]) -> Result<Value<()>, PickleError> {
        load(bytes, &mut Nothing)
    }

    #[test]
    fn reads_containers_and_memo_references() {
        // {'a': [1, 2], 'b': <memo 2, the string 'a'>}: protocol 2.
        let pickle =
            b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x02]q\x01(K\x01K\x02eX\x01\x00\x00\x00bh\x02u.";
        let Ok(Value::Dict(items, depth)) = run(pickle) else {
            panic!("a dict");
        };
        assert_eq!((items.len(), depth), (2, 2));
        let Value::List(list, _) = &items[0].1 else {
            panic!("a is a list");
        };
        assert!(matches!(list.as_slice(), [Value::Int(1), Value::Int(2)]));
        assert!(matches!(&items[1].1, Value::Str(s) if &**s == "a"));
    }

    #[test]
    fn errors_are_typed_and_located() {
        assert_eq!(
            run(b"\x80\x02\xff.").err(),
            Some(PickleError::UnknownOpcode { op: 0xff, at: 2 })
        );
        assert_eq!(
            run(b"\x80\x02X\x09\x00\x00\x00ab").err(),
            Some(PickleError::Truncated { at: 2 })
        );
        assert_eq!(
            run(b"\x80\x02h\x07.").err(),
            Some(PickleError::MemoMissing { index: 7, at: 2 })
        );
        assert!(matches!(
            run(b"\x80\x02a."),
            Err(PickleError::Malformed {
                at: 2,
                reason: "stack underflow"
            })
        ));
        assert!(matches!(
            run(b"\x80\x02)Q."),
            Err(PickleError::Object { at: 3, .. })
        ));
        let deep: Vec<u8> = std::iter::repeat_n(b']', 300)
            .chain(std::iter::repeat_n(b'a', 299))
            .chain([b'.'])
            .collect();
        assert!(matches!(run(&deep), Err(PickleError::TooDeep { .. })));
    }
}

//! The fused kernels as Burn operations on the ndarray backend, with and
//! without autodiff.
//!
//! The cells are generic over any `Backend`; at run time they ask
//! [`available`] whether `B` is `NdArray<f32>` or `Autodiff<NdArray<f32>>`
//! (any checkpointing strategy), recognised by the type of the float tensor
//! primitive. If so, an op takes the primitives apart (zero-copy reads of
//! the ndarray buffers), runs the slice kernels of [`super`] and wraps the
//! result back; under autodiff [`custom_op`] registers one backward node
//! whose [`Backward`] implementation is the analytic gradient. Every other
//! backend keeps the cells' tensor-op paths.
//!
//! - this file: the plumbing every op shares (dispatch, casts, reads,
//!   [`custom_op`]);
//! - [`ltc`]: one LTC step;
//! - [`cfc`]: a dense CfC over a whole sequence;
//! - [`activation`]: the CfC/LSTM activations and the gated mix;
//! - [`linear`]: a linear layer over rows (the sequences' projection);
//! - [`columns`]: the leading columns of a tensor (a mixed-memory CfC's
//!   outputs).

pub(crate) mod activation;
pub(crate) mod cfc;
pub(crate) mod columns;
pub(crate) mod linear;
pub(crate) mod ltc;

use std::any::{Any, TypeId};
use std::borrow::Cow;

use burn::backend::NdArray;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::ops::{Backward, OpsKind};
use burn::backend::ndarray::NdArrayTensor;
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{TensorData, TensorMetadata};

/// The inner backend the fused ops run on.
pub(crate) type Nd = NdArray<f32>;

/// `FloatTensor` of `Autodiff<NdArray<f32>>`, whatever the checkpointing.
type AutodiffPrimitive = FloatTensor<burn::backend::Autodiff<Nd>>;

/// Whether `B` is a backend the fused step runs on.
pub fn available<B: Backend>() -> bool {
    let primitive = TypeId::of::<FloatTensor<B>>();
    TypeId::of::<B::FloatElem>() == TypeId::of::<f32>()
        && (primitive == TypeId::of::<NdArrayTensor>()
            || primitive == TypeId::of::<AutodiffPrimitive>())
}

/// Moves `value` into type `U` when it is one (no copy, no `unsafe`).
pub(crate) fn cast<T: 'static, U: 'static>(value: T) -> Result<U, T> {
    let mut slot = Some(value);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<U>>() {
        Some(u) => Ok(u.take().expect("just filled")),
        None => Err(slot.expect("not taken")),
    }
}

/// The values of an ndarray tensor as `f32`, borrowed when contiguous.
pub(crate) fn values(tensor: &NdArrayTensor) -> Cow<'_, [f32]> {
    match tensor {
        NdArrayTensor::F32(storage) => {
            let view = storage.view();
            match view.to_slice() {
                Some(slice) => Cow::Borrowed(slice),
                None => Cow::Owned(view.iter().copied().collect()),
            }
        }
        NdArrayTensor::F64(storage) => {
            Cow::Owned(storage.view().iter().map(|&x| x as f32).collect())
        }
        other => panic!(
            "the fused kernels need float tensors, got {:?}",
            other.dtype()
        ),
    }
}

pub(crate) fn ndarray_tensor(values: Vec<f32>, shape: Vec<usize>) -> NdArrayTensor {
    NdArrayTensor::from_data(TensorData::new(values, shape))
}

/// A plain `NdArray<f32>` tensor with a buffer of its own: a copy of its
/// values (Burn's `into_data` reads a shared buffer value by value through
/// a dynamic-rank iterator, 2.2 us for a control step's 64 outputs, where
/// taking a buffer of its own is free); any other primitive, autodiff's
/// included, back unchanged as `Err`.
pub(crate) fn own_buffer<B: Backend>(
    tensor: FloatTensor<B>,
) -> Result<FloatTensor<B>, FloatTensor<B>> {
    let plain = cast::<_, NdArrayTensor>(tensor)?;
    if !matches!(plain, NdArrayTensor::F32(_)) {
        // `values` would hand back f32s: the tensor's own type stays.
        return Err(into_type(plain));
    }
    let shape = plain.shape().to_vec();
    let copy = ndarray_tensor(values(&plain).into_owned(), shape);
    Ok(into_type(copy))
}

/// The ndarray tensor inside a float primitive of `NdArray<f32>` or
/// `Autodiff<NdArray<f32>>`.
pub(crate) fn ndarray_primitive<B: Backend>(tensor: FloatTensor<B>) -> NdArrayTensor {
    match cast::<_, NdArrayTensor>(tensor) {
        Ok(plain) => plain,
        Err(tracked) => into_type::<_, AutodiffPrimitive>(tracked).primitive,
    }
}

/// One custom operation on `NdArray<f32>`, with or without autodiff:
/// `forward` gets the inputs' ndarray tensors and whether the operation is
/// tracked, and returns the output and, when tracked, what its backward
/// pass keeps.
///
/// Under autodiff the inputs stay alive (their reference counts held) until
/// the step is registered: Burn's graph cleanup, run by a backward pass on
/// another thread, frees the steps of graphs no live tensor refers to, and
/// would otherwise drop the parents' steps while `forward` runs.
pub(crate) fn custom_op<B, O, const N: usize>(
    primitives: [FloatTensor<B>; N],
    backward: O,
    forward: impl FnOnce([NdArrayTensor; N], bool) -> (NdArrayTensor, Option<O::State>),
) -> FloatTensor<B>
where
    B: Backend,
    O: Backward<Nd, N>,
{
    if TypeId::of::<FloatTensor<B>>() == TypeId::of::<NdArrayTensor>() {
        let (output, _) = forward(primitives.map(into_type::<_, NdArrayTensor>), false);
        return into_type(output);
    }
    let tracked = primitives.map(into_type::<_, AutodiffPrimitive>);
    let nodes = tracked.each_ref().map(|t| t.node.clone());
    let inner = tracked.each_ref().map(|t| t.primitive.clone());
    let result = match O::prepare::<NoCheckpointing>(backward, nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (output, state) = forward(inner, true);
            prep.finish(state.expect("a tracked forward keeps its state"), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(inner, false).0),
    };
    drop(tracked);
    into_type(result)
}

/// [`cast`] where the types are known to agree (checked by the caller).
pub(crate) fn into_type<T: 'static, U: 'static>(value: T) -> U {
    match cast(value) {
        Ok(u) => u,
        Err(_) => unreachable!("the backend's primitive type was checked"),
    }
}

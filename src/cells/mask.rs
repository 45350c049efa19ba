//! A wiring's synapse mask as a recorded constant of a cell.

use burn::module::{
    AutodiffModule, Content, Devices, HasAutodiffModule, Module, ModuleDisplay,
    ModuleDisplayDefault, ModuleMapper, ModuleVisitor, Param, ParamId,
};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

/// A 0/1 synapse mask `[sources, destinations]` taken from a wiring, or
/// none (every synapse exists): a constant of the model (never trained,
/// not counted by `num_params`), but part of its record.
///
/// The record is what makes a saved model safe to load: loading a record
/// into a model whose wiring has other synapses (another seed, another
/// NCP layout of the same size) is refused with a panic that says so,
/// instead of running the saved weights through the wrong synapses
/// (Burn's `load_record` and `load_file` have no error channel for it).
///
/// ```
/// use burn::backend::NdArray;
/// use burn::prelude::*;
/// use ncps::cells::Mask;
///
/// let device = Default::default();
/// let mask = Mask::<NdArray>::new(Tensor::from_floats([[1.0, 0.0], [1.0, 1.0]], &device));
/// assert_eq!(mask.get().map(Tensor::dims), Some([2, 2]));
/// assert!(Mask::<NdArray>::none().get().is_none());
/// ```
#[derive(Clone, Debug)]
pub struct Mask<B: Backend> {
    tensor: Option<Tensor<B, 2>>,
}

impl<B: Backend> Mask<B> {
    /// Wraps a 0/1 matrix `[sources, destinations]`.
    pub fn new(tensor: Tensor<B, 2>) -> Self {
        Self {
            tensor: Some(tensor),
        }
    }

    /// No mask: every synapse exists.
    pub fn none() -> Self {
        Self { tensor: None }
    }

    /// The mask `[sources, destinations]`, if there is one.
    pub fn get(&self) -> Option<&Tensor<B, 2>> {
        self.tensor.as_ref()
    }

    /// The mask `[sources, destinations]`.
    ///
    /// # Panics
    /// When there is none (a cell that always has a mask uses this).
    pub fn val(&self) -> Tensor<B, 2> {
        self.get().expect("this cell has a synapse mask").clone()
    }

    /// Whether `other` holds the same synapses (both absent, or the same
    /// shape and entries).
    pub fn same_synapses(&self, other: Option<&Tensor<B, 2>>) -> bool {
        let entries = |t: &Tensor<B, 2>| t.to_data().iter::<f32>().collect::<Vec<_>>();
        match (self.get(), other) {
            (None, None) => true,
            (Some(ours), Some(theirs)) => {
                ours.dims() == theirs.dims() && entries(ours) == entries(theirs)
            }
            _ => false,
        }
    }
}

fn dims<B: Backend>(tensor: Option<&Tensor<B, 2>>) -> String {
    tensor.map_or("none".into(), |t| format!("{:?}", t.dims()))
}

impl<B: Backend> Module<B> for Mask<B> {
    type Record = Option<Param<Tensor<B, 2>>>;

    fn collect_devices(&self, devices: Devices<B>) -> Devices<B> {
        match &self.tensor {
            Some(tensor) => tensor.collect_devices(devices),
            None => devices,
        }
    }

    fn fork(self, device: &B::Device) -> Self {
        self.to_device(device)
    }

    fn to_device(self, device: &B::Device) -> Self {
        Self {
            tensor: self.tensor.map(|t| t.to_device(device)),
        }
    }

    // A constant: no parameter to visit or map.
    fn visit<V: ModuleVisitor<B>>(&self, _visitor: &mut V) {}

    fn map<M: ModuleMapper<B>>(self, _mapper: &mut M) -> Self {
        self
    }

    /// Keeps this model's mask after checking that the record holds the
    /// same synapses.
    ///
    /// # Panics
    /// When the record's mask differs: the record was saved from a model
    /// with another wiring.
    fn load_record(self, record: Self::Record) -> Self {
        let saved = record.map(|param| param.val());
        assert!(
            self.same_synapses(saved.as_ref()),
            "{}",
            mismatch_message(&dims(self.get()), &dims(saved.as_ref()))
        );
        self
    }

    fn into_record(self) -> Self::Record {
        self.tensor
            .map(|tensor| Param::initialized(ParamId::new(), tensor))
    }
}

/// The refusal of a record saved with another wiring.
fn mismatch_message(model: &str, record: &str) -> String {
    let detail = if model == record {
        "the same shape, other synapses".to_string()
    } else {
        format!("mask {record} in the record, {model} in the model")
    };
    format!(
        "the record was saved from a model with another wiring ({detail}): \
         build the model with the wiring it was saved with (e.g. AnyWiring::load \
         of the JSON saved beside it)"
    )
}

impl<B: AutodiffBackend> AutodiffModule<B> for Mask<B> {
    type InnerModule = Mask<B::InnerBackend>;

    fn valid(&self) -> Self::InnerModule {
        Mask {
            tensor: self.tensor.clone().map(Tensor::inner),
        }
    }

    fn from_inner(module: Self::InnerModule) -> Self {
        Mask {
            tensor: module.tensor.map(Tensor::from_inner),
        }
    }
}

impl<B: AutodiffBackend> HasAutodiffModule<B> for Mask<B::InnerBackend> {
    type TrainModule = Mask<B>;
}

impl<B: Backend> ModuleDisplayDefault for Mask<B> {
    fn content(&self, content: Content) -> Option<Content> {
        let string = format!("Mask {{shape: {}}}", dims(self.get()));
        content.add_formatted(&string).optional()
    }
}

impl<B: Backend> ModuleDisplay for Mask<B> {}

/* The step of an exported model, in C99: no heap, no global mutable
 * state, nothing from the C library (not even <math.h>: exp and tanh are
 * the crate's own). A line-by-line translation of the Rust runtime of
 * ncps (src/export/runtime.rs, which documents each function) and of its
 * kernels' exp and tanh (src/kernels/scalar.rs): the same arithmetic in the
 * same order, so the C step computes the Rust step's numbers bit for bit.
 * Generated files hold this text as it is, after the definition of
 * ncps_index (the smallest unsigned integer type that holds the model's
 * synapse indices). */

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD > 0
#error "ncps: float arithmetic must be single precision (FLT_EVAL_METHOD 0): on 32-bit x86 compile with -msse2 -mfpmath=sse"
#endif

/* e^x: Cody-Waite reduction x = n ln 2 + r, Cephes' degree-7 polynomial
 * for e^r, 2^n put into the exponent bits; x clamped to [-87.3, 88.3]. */
static float ncps_exp(float x)
{
    const float log2_e = 1.44269502f;
    const float ln2_hi = 0.693359375f;
    const float ln2_lo = -2.1219444e-4f;
    const float round = 12582912.0f; /* 1.5 2^23: adding it rounds to an integer */
    union { float f; uint32_t u; } bits;
    float t, n, r, p, e_r;
    int32_t k;
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    t = x * log2_e + round;
    n = t - round;
    r = x - n * ln2_hi - n * ln2_lo;
    p = ((((1.9875692e-4f * r + 1.3981999e-3f) * r + 8.333452e-3f) * r + 4.1665796e-2f) * r
            + 1.6666665e-1f)
            * r
        + 0.5f;
    e_r = p * r * r + r + 1.0f;
    bits.f = t;
    k = (int32_t)bits.u - (int32_t)0x4B400000; /* the bits of round */
    bits.u = (uint32_t)(k + 127) << 23;
    return e_r * bits.f;
}

/* tanh(x): Cephes' odd polynomial below |x| = 0.625, 1 - 2 / (e^2|x| + 1)
 * above, with the sign of x. */
static float ncps_tanh(float x)
{
    float a = x < 0.0f ? -x : x;
    float z = x * x;
    float small = ((((-5.7049887e-3f * z + 2.0639089e-2f) * z - 5.3739716e-2f) * z + 1.3331442e-1f) * z
                      - 3.3333282e-1f)
            * z * x
        + x;
    float large = 1.0f - 2.0f / (ncps_exp(2.0f * a) + 1.0f);
    large = x < 0.0f ? -large : large;
    return a < 0.625f ? small : large;
}

static float ncps_sigmoid(float x)
{
    return 1.0f / (1.0f + ncps_exp(-x));
}

/* y = W x + b (PyTorch's nn.Linear); weight row-major [outputs][inputs],
 * bias NULL for none. */
typedef struct {
    const float *weight;
    const float *bias;
    int inputs;
    int outputs;
} ncps_linear;

static void ncps_linear_forward(const ncps_linear *l, const float *x, float *y)
{
    int j, i, lane;
    int whole = l->inputs - l->inputs % 8;
    for (j = 0; j < l->outputs; j++) {
        const float *row = l->weight + (long)j * l->inputs;
        float lanes[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        float sum;
        for (i = 0; i < whole; i += 8) {
            for (lane = 0; lane < 8; lane++) {
                lanes[lane] += row[i + lane] * x[i + lane];
            }
        }
        /* Halves added lane by lane, then the four sums pairwise. */
        sum = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6]))
            + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
        for (i = whole; i < l->inputs; i++) {
            sum += row[i] * x[i];
        }
        y[j] = l->bias ? sum + l->bias[j] : sum;
    }
}

enum { NCPS_LECUN_TANH, NCPS_SILU, NCPS_RELU, NCPS_TANH };

/* LeCun's scaled tanh, 1.7159 tanh(0.666 x). */
static float ncps_lecun_tanh(float x)
{
    return 1.7159f * ncps_tanh(0.666f * x);
}

static void ncps_activate(float *values, int n, int activation)
{
    int i;
    for (i = 0; i < n; i++) {
        float x = values[i];
        switch (activation) {
        case NCPS_LECUN_TANH: values[i] = ncps_lecun_tanh(x); break;
        case NCPS_SILU: values[i] = x * ncps_sigmoid(x); break;
        case NCPS_RELU: values[i] = x > 0.0f ? x : 0.0f; break;
        default: values[i] = ncps_tanh(x); break;
        }
    }
}

/* One CfC cell: a dense CfC, or one layer of a wired CfC (no backbone,
 * ff1/ff2 weights already multiplied by the layer's mask). pure = 0: the
 * gated heads ff2, time_a, time_b (gated = 0 for no_gate), ff1 and ff2
 * squashed by tanh (lecun = 0) or LeCun's tanh (lecun = 1); pure = 1:
 * w_tau and a. */
typedef struct {
    int inputs;
    int hidden;
    const ncps_linear *backbone;
    int backbone_layers;
    int backbone_units;
    int activation;
    ncps_linear ff1;
    int pure;
    int gated;
    int lecun;
    ncps_linear ff2;
    ncps_linear time_a;
    ncps_linear time_b;
    const float *w_tau;
    const float *a;
} ncps_cfc_layer;

/* scratch: inputs + hidden + 2 backbone_units + 4 hidden floats. */
static void ncps_cfc_step(const ncps_cfc_layer *layer, const float *x, float *h,
                          float elapsed, float *scratch)
{
    int i;
    float *cat = scratch;
    float *ping = cat + layer->inputs + layer->hidden;
    float *pong = ping + layer->backbone_units;
    float *ff1 = pong + layer->backbone_units;
    const float *features = cat;
    for (i = 0; i < layer->inputs; i++) {
        cat[i] = x[i];
    }
    for (i = 0; i < layer->hidden; i++) {
        cat[layer->inputs + i] = h[i];
    }
    /* Backbone layers alternate between the two buffers. */
    for (i = 0; i < layer->backbone_layers; i++) {
        float *out = i % 2 == 0 ? ping : pong;
        ncps_linear_forward(&layer->backbone[i], features, out);
        ncps_activate(out, layer->backbone_units, layer->activation);
        features = out;
    }
    ncps_linear_forward(&layer->ff1, features, ff1);
    if (!layer->pure) {
        float *f2 = ff1 + layer->hidden;
        float *ta = f2 + layer->hidden;
        float *tb = ta + layer->hidden;
        ncps_linear_forward(&layer->ff2, features, f2);
        ncps_linear_forward(&layer->time_a, features, ta);
        ncps_linear_forward(&layer->time_b, features, tb);
        for (i = 0; i < layer->hidden; i++) {
            float f1 = layer->lecun ? ncps_lecun_tanh(ff1[i]) : ncps_tanh(ff1[i]);
            float g2 = layer->lecun ? ncps_lecun_tanh(f2[i]) : ncps_tanh(f2[i]);
            float t = ncps_sigmoid(ta[i] * elapsed + tb[i]);
            h[i] = layer->gated ? f1 * (1.0f - t) + t * g2 : f1 + t * g2;
        }
    } else {
        for (i = 0; i < layer->hidden; i++) {
            float w_tau = layer->w_tau[i] < 0.0f ? -layer->w_tau[i] : layer->w_tau[i];
            float f1 = ff1[i] < 0.0f ? -ff1[i] : ff1[i];
            float decay = ncps_exp(-elapsed * (w_tau + f1));
            h[i] = -layer->a[i] * decay * ff1[i] + layer->a[i];
        }
    }
}

/* The synapses of an LTC grouped by destination neuron: those of neuron d
 * are offsets[d] .. offsets[d + 1] - 1. */
typedef struct {
    const ncps_index *offsets;
    const ncps_index *sources;
    const float *w;
    const float *mu;
    const float *sigma;
    const float *erev;
} ncps_synapses;

/* a = w sigmoid(sigma (pre[src] - mu)) of every synapse into act: the
 * gather, then the sigmoids in a loop of their own. */
static void ncps_synapse_activate(const ncps_synapses *s, int count, const float *pre, float *act)
{
    int k;
    for (k = 0; k < count; k++) {
        act[k] = s->sigma[k] * (pre[s->sources[k]] - s->mu[k]);
    }
    for (k = 0; k < count; k++) {
        act[k] = s->w[k] * ncps_sigmoid(act[k]);
    }
}

/* (sum of a erev, sum of a) over the synapses into dest. */
static void ncps_synapse_sums(const ncps_synapses *s, const float *act, int dest,
                              float *num, float *den)
{
    int k;
    float n = 0.0f, d = 0.0f;
    for (k = s->offsets[dest]; k < (int)s->offsets[dest + 1]; k++) {
        n += act[k] * s->erev[k];
        d += act[k];
    }
    *num = n;
    *den = d;
}

/* A liquid time-constant cell; absent maps are NULL. */
typedef struct {
    int neurons;
    int motor;
    const float *input_w;
    const float *input_b;
    const float *output_w;
    const float *output_b;
    ncps_synapses sensory;
    ncps_synapses recurrent;
    const float *cm;
    const float *gleak;
    const float *vleak;
    int unfolds;
    float epsilon;
} ncps_ltc;

static void ncps_map(float *values, int n, const float *weight, const float *bias)
{
    int i;
    if (weight) {
        for (i = 0; i < n; i++) {
            values[i] *= weight[i];
        }
    }
    if (bias) {
        for (i = 0; i < n; i++) {
            values[i] += bias[i];
        }
    }
}

/* scratch: inputs + 3 neurons floats, and one a synapse (of the larger
 * group). */
static void ncps_ltc_step(const ncps_ltc *ltc, const float *x, int inputs, float *v,
                          float elapsed, float *out, float *scratch)
{
    int d, i, unfold;
    int n = ltc->neurons;
    int sensory = ltc->sensory.offsets[n], recurrent = ltc->recurrent.offsets[n];
    float *mapped = scratch;
    float *numerator_leak = mapped + inputs;
    float *denominator_leak = numerator_leak + n;
    float *next = denominator_leak + n;
    float *act = next + n;
    float h;
    for (i = 0; i < inputs; i++) {
        mapped[i] = x[i];
    }
    ncps_map(mapped, inputs, ltc->input_w, ltc->input_b);
    ncps_synapse_activate(&ltc->sensory, sensory, mapped, act);
    for (d = 0; d < n; d++) {
        float num, den;
        ncps_synapse_sums(&ltc->sensory, act, d, &num, &den);
        numerator_leak[d] = ltc->gleak[d] * ltc->vleak[d] + num;
        denominator_leak[d] = ltc->gleak[d] + den + ltc->epsilon;
    }
    h = elapsed / (float)ltc->unfolds;
    for (unfold = 0; unfold < ltc->unfolds; unfold++) {
        ncps_synapse_activate(&ltc->recurrent, recurrent, v, act);
        for (d = 0; d < n; d++) {
            float num, den, denominator;
            ncps_synapse_sums(&ltc->recurrent, act, d, &num, &den);
            denominator = ltc->cm[d] + h * (denominator_leak[d] + den);
            next[d] = (ltc->cm[d] * v[d] + h * (numerator_leak[d] + num)) / denominator;
        }
        for (d = 0; d < n; d++) {
            v[d] = next[d];
        }
    }
    for (i = 0; i < ltc->motor; i++) {
        out[i] = v[i];
    }
    ncps_map(out, ltc->motor, ltc->output_w, ltc->output_b);
}

/* The LSTM cell mixed-memory models run before their cell. */
typedef struct {
    ncps_linear input_map;
    ncps_linear recurrent_map;
    float forget_bias;
} ncps_lstm;

/* h is overwritten in place; scratch: 8 hidden floats. */
static void ncps_lstm_step(const ncps_lstm *lstm, const float *x, float *h, float *c,
                           int hidden, float *scratch)
{
    int j;
    float *z = scratch;
    float *recurrent = z + 4 * hidden;
    ncps_linear_forward(&lstm->input_map, x, z);
    ncps_linear_forward(&lstm->recurrent_map, h, recurrent);
    for (j = 0; j < 4 * hidden; j++) {
        z[j] += recurrent[j];
    }
    for (j = 0; j < hidden; j++) {
        float i = z[j], ig = z[hidden + j], fg = z[2 * hidden + j], og = z[3 * hidden + j];
        c[j] = c[j] * ncps_sigmoid(fg + lstm->forget_bias) + ncps_tanh(i) * ncps_sigmoid(ig);
        h[j] = ncps_tanh(c[j]) * ncps_sigmoid(og);
    }
}

/* A whole model: optional LSTM (NULL) whose output is the cell's state for
 * the step (lstm_input = 0, upstream's) or the cell's input (lstm_input =
 * 1), the cell (ltc, or layer_count CfC layers with output positions in
 * the last one, NULL for all of it), optional projection (NULL). */
typedef struct {
    int inputs;
    int units;
    int cell_outputs;
    const ncps_lstm *lstm;
    int lstm_input;
    const ncps_ltc *ltc;
    const ncps_cfc_layer *layers;
    int layer_count;
    const ncps_index *output_positions;
    const ncps_linear *projection;
} ncps_model;

/* state: units floats (with mixed memory 2 units: hidden, then memory);
 * scratch: the cell's outputs, the LSTM's output when it is the cell's
 * input (units), then the larger of the LSTM's and the cell's scratch. */
static void ncps_model_step(const ncps_model *m, float *state, const float *input,
                            float elapsed, float *output, float *scratch)
{
    int i, l;
    float *cell_out = scratch;
    float *lstm_out = scratch + m->cell_outputs;
    float *work = lstm_out + (m->lstm_input ? m->units : 0);
    float *hidden = state;
    int cell_inputs = m->inputs;
    if (m->lstm && m->lstm_input) {
        /* The LSTM reads the cell's state and writes its output apart. */
        for (i = 0; i < m->units; i++) {
            lstm_out[i] = hidden[i];
        }
        ncps_lstm_step(m->lstm, input, lstm_out, state + m->units, m->units, work);
        input = lstm_out;
        cell_inputs = m->units;
    } else if (m->lstm) {
        ncps_lstm_step(m->lstm, input, hidden, state + m->units, m->units, work);
    }
    if (m->ltc) {
        ncps_ltc_step(m->ltc, input, cell_inputs, hidden, elapsed, cell_out, work);
    } else {
        int start = 0;
        const float *last;
        for (l = 0; l < m->layer_count; l++) {
            const ncps_cfc_layer *layer = &m->layers[l];
            const float *x = l == 0 ? input : hidden + start - layer->inputs;
            ncps_cfc_step(layer, x, hidden + start, elapsed, work);
            start += layer->hidden;
        }
        last = hidden + start - m->layers[m->layer_count - 1].hidden;
        for (i = 0; i < m->cell_outputs; i++) {
            cell_out[i] = m->output_positions ? last[m->output_positions[i]] : last[i];
        }
    }
    if (m->projection) {
        ncps_linear_forward(m->projection, cell_out, output);
    } else {
        for (i = 0; i < m->cell_outputs; i++) {
            output[i] = cell_out[i];
        }
    }
}

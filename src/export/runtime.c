/* The step of an exported model, in C99: no heap, no global mutable
 * state, nothing from the C library but <math.h>'s expf and tanhf.
 * A line-by-line translation of the Rust runtime of ncps
 * (src/export/runtime.rs, which documents each function): the same
 * arithmetic in the same order. Generated files hold this text as it is,
 * after the definition of ncps_index (the smallest unsigned integer type
 * that holds the model's synapse indices). */

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
    int j, i;
    for (j = 0; j < l->outputs; j++) {
        const float *row = l->weight + (long)j * l->inputs;
        float sum = 0.0f;
        for (i = 0; i < l->inputs; i++) {
            sum += row[i] * x[i];
        }
        y[j] = l->bias ? sum + l->bias[j] : sum;
    }
}

static float ncps_sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

enum { NCPS_LECUN_TANH, NCPS_SILU, NCPS_RELU, NCPS_TANH };

static void ncps_activate(float *values, int n, int activation)
{
    int i;
    for (i = 0; i < n; i++) {
        float x = values[i];
        switch (activation) {
        case NCPS_LECUN_TANH: values[i] = 1.7159f * tanhf(0.666f * x); break;
        case NCPS_SILU: values[i] = x * ncps_sigmoid(x); break;
        case NCPS_RELU: values[i] = x > 0.0f ? x : 0.0f; break;
        default: values[i] = tanhf(x); break;
        }
    }
}

/* One CfC cell: a dense CfC, or one layer of a wired CfC (no backbone,
 * ff1/ff2 weights already multiplied by the layer's mask). pure = 0: the
 * gated heads ff2, time_a, time_b (gated = 0 for no_gate); pure = 1:
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
            float f1 = tanhf(ff1[i]);
            float g2 = tanhf(f2[i]);
            float t = ncps_sigmoid(ta[i] * elapsed + tb[i]);
            h[i] = layer->gated ? f1 * (1.0f - t) + t * g2 : f1 + t * g2;
        }
    } else {
        for (i = 0; i < layer->hidden; i++) {
            float decay = expf(-elapsed * (fabsf(layer->w_tau[i]) + fabsf(ff1[i])));
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

static void ncps_synapse_sums(const ncps_synapses *s, const float *pre, int dest,
                              float *num, float *den)
{
    int k;
    float n = 0.0f, d = 0.0f;
    for (k = s->offsets[dest]; k < (int)s->offsets[dest + 1]; k++) {
        float act = ncps_sigmoid(s->sigma[k] * (pre[s->sources[k]] - s->mu[k]));
        float a = s->w[k] * act;
        n += a * s->erev[k];
        d += a;
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

/* scratch: inputs + 3 neurons floats. */
static void ncps_ltc_step(const ncps_ltc *ltc, const float *x, int inputs, float *v,
                          float elapsed, float *out, float *scratch)
{
    int d, i, unfold;
    int n = ltc->neurons;
    float *mapped = scratch;
    float *numerator_leak = mapped + inputs;
    float *denominator_leak = numerator_leak + n;
    float *next = denominator_leak + n;
    float h;
    for (i = 0; i < inputs; i++) {
        mapped[i] = x[i];
    }
    ncps_map(mapped, inputs, ltc->input_w, ltc->input_b);
    for (d = 0; d < n; d++) {
        float num, den;
        ncps_synapse_sums(&ltc->sensory, mapped, d, &num, &den);
        numerator_leak[d] = ltc->gleak[d] * ltc->vleak[d] + num;
        denominator_leak[d] = ltc->gleak[d] + den + ltc->epsilon;
    }
    h = elapsed / (float)ltc->unfolds;
    for (unfold = 0; unfold < ltc->unfolds; unfold++) {
        for (d = 0; d < n; d++) {
            float num, den, denominator;
            ncps_synapse_sums(&ltc->recurrent, v, d, &num, &den);
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
} ncps_lstm;

/* scratch: 8 hidden floats. */
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
        c[j] = c[j] * ncps_sigmoid(fg + 1.0f) + tanhf(i) * ncps_sigmoid(ig);
        h[j] = tanhf(c[j]) * ncps_sigmoid(og);
    }
}

/* A whole model: optional LSTM (NULL), the cell (ltc, or layer_count CfC
 * layers with output positions in the last one, NULL for all of it),
 * optional projection (NULL). */
typedef struct {
    int inputs;
    int units;
    int cell_outputs;
    const ncps_lstm *lstm;
    const ncps_ltc *ltc;
    const ncps_cfc_layer *layers;
    int layer_count;
    const ncps_index *output_positions;
    const ncps_linear *projection;
} ncps_model;

/* state: units floats (with mixed memory 2 units: hidden, then memory);
 * scratch: the cell's outputs, then the larger of the LSTM's and the
 * cell's scratch. */
static void ncps_model_step(const ncps_model *m, float *state, const float *input,
                            float elapsed, float *output, float *scratch)
{
    int i, l;
    float *cell_out = scratch;
    float *work = scratch + m->cell_outputs;
    float *hidden = state;
    if (m->lstm) {
        ncps_lstm_step(m->lstm, input, hidden, state + m->units, m->units, work);
    }
    if (m->ltc) {
        ncps_ltc_step(m->ltc, input, m->inputs, hidden, elapsed, cell_out, work);
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

// DynOPool on the CPU: a fused forward and a fused backward kernel.
//
// Built on first use by mmdynopool/ops/cpu_backend.py (PyTorch's JIT C++
// extension loader), which also computes the per-axis tables these kernels
// read: for each of an axis' 2 * out query points, the two input rows its
// bilinear sample reads and their weights (PyTorch's own interpolate
// arithmetic), and for alpha's gradient the row of the difference above it
// and the weights of the differences above and below it (the spec's
// pixel-centre rule, see functional.position_sensitivity).
//
// Forward, one output row at a time, straight from x: its two query rows
// interpolated along H (vectorised over the columns), sampled at the query
// columns (gathers) and rounded to x's dtype (as the deploy form's query grid
// is), then each cell's max (with a uint8 code of the winner: bit 0 the
// right column, bit 1 the bottom row; ties as max_pool2d's scan resolves
// them) or mean. No 2H x 2W query grid is ever built.
// Backward, one pass over the cells: each cell's gradient to the two query
// columns around its winning sample (all four samples for avg), giving the
// gradient of the output row's two interpolated query rows, which goes to
// the input rows (vectorised) and, against the input's row differences,
// into alpha_h's gradient; alpha_w's is the derivative of the winning sample
// along its interpolated query row.
//
// Work units own disjoint parts of x (an NCHW plane, or a block of channels
// of one channels-last sample), so the input gradient needs no atomics, and
// alpha's partial sums are kept per unit and added in unit order: the result
// does not depend on the number of threads.
#include <torch/extension.h>

#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace {

// Channels a channels-last work unit holds: a contiguous run the inner loop
// vectorises over (and enough units to keep every thread busy).
constexpr int64_t kChannelBlock = 16;

// One axis: tables of its 2 * out query points.
// (int32 indices: AVX-512 gathers 16 lanes of them at a time.)
template <typename acc_t>
struct Axis {
  const int32_t* row0;   // the two rows (columns) a sample reads
  const int32_t* row1;
  const acc_t* weight0;  // their weights
  const acc_t* weight1;
  const int32_t* lower;  // alpha: the difference v[lower+1] - v[lower] ...
  const acc_t* above;    // ... at this weight
  const acc_t* below;    // and v[lower] - v[lower-1] at this one
};

template <typename acc_t>
Axis<acc_t> axis_of(const at::Tensor& index, const at::Tensor& weight) {
  // index: int32 (3, 2 * out) = row0, row1, lower;
  // weight: acc_t (4, 2 * out) = weight0, weight1, above, below.
  const int64_t n = index.size(1);
  const int32_t* i = index.data_ptr<int32_t>();
  const acc_t* w = weight.data_ptr<acc_t>();
  return {i, i + n, w, w + n, i + 2 * n, w + 2 * n, w + 3 * n};
}

// Where a work unit lives: its batch index, first channel and channel count.
struct Unit {
  int64_t n, c0, channels;
};

struct Layout {
  bool channels_last;
  int64_t batch, channels, blocks;

  Layout(const at::Tensor& x, bool channels_last)
      : channels_last(channels_last), batch(x.size(0)), channels(x.size(1)),
        blocks(channels_last ? (x.size(1) + kChannelBlock - 1) / kChannelBlock
                             : x.size(1)) {}

  int64_t units() const { return batch * blocks; }

  Unit unit(int64_t u) const {
    const int64_t n = u / blocks, b = u % blocks;
    if (!channels_last) return {n, b, 1};
    const int64_t c0 = b * kChannelBlock;
    return {n, c0, std::min(kChannelBlock, channels - c0)};
  }
};

// Element strides of a 4-D tensor, and the offset of a unit's first value.
struct Strides {
  int64_t n, c, h, w;
  explicit Strides(const at::Tensor& t)
      : n(t.stride(0)), c(t.stride(1)), h(t.stride(2)), w(t.stride(3)) {}
  int64_t base(const Unit& u) const { return u.n * n + u.c0 * c; }
};

template <typename scalar_t, typename acc_t>
inline acc_t rounded(acc_t value) {
  // The deploy form's query grid holds x's dtype: compare what it compares.
  return static_cast<acc_t>(static_cast<scalar_t>(value));
}

// Index of column `col`, channel `k` of a row of x (or of the gradient):
// NCHW rows are contiguous (kPlanar: one channel per unit, so the compiler
// sees unit strides and vectorises across columns); channels-last rows
// interleave the channels (vectorised across the unit's channels).
template <bool kPlanar>
inline int64_t at_col(int64_t col, int64_t k, const Strides& s) {
  return kPlanar ? col : col * s.w + k;
}

// One query row of the H-interpolated input: for every input column (and
// channel of the unit), x[row0] * weight0 + x[row1] * weight1, into `dst`
// laid out [column][channel]. An axis resized to its own size (r = 0.5 on
// even sizes) copies, as PyTorch's resize does.
template <typename scalar_t, typename acc_t, bool kPlanar>
inline void interpolate_row(const scalar_t* xu, const Strides& xs,
                            const Axis<acc_t>& rows, int64_t r, int64_t width,
                            int64_t K, acc_t* dst) {
  const scalar_t* a = xu + rows.row0[r] * xs.h;
  const scalar_t* b = xu + rows.row1[r] * xs.h;
  const acc_t w0 = rows.weight0[r], w1 = rows.weight1[r];
  if (w1 == acc_t(0)) {
    for (int64_t col = 0; col < width; ++col)
      for (int64_t k = 0; k < K; ++k)
        dst[col * K + k] =
            static_cast<acc_t>(a[at_col<kPlanar>(col, k, xs)]) * w0;
    return;
  }
  for (int64_t col = 0; col < width; ++col)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t at = at_col<kPlanar>(col, k, xs);
      dst[col * K + k] = static_cast<acc_t>(a[at]) * w0 +
                         static_cast<acc_t>(b[at]) * w1;
    }
}

// Whether an axis is resized to its own size (its query points are its
// pixels: r = 0.5 on even sizes), where sampling it is the identity.
template <typename acc_t>
inline bool is_identity(const Axis<acc_t>& axis, int64_t queries,
                        int64_t size) {
  // (Checked on the tables: cheap, and exact.)
  if (queries != size) return false;
  for (int64_t q = 0; q < queries; ++q)
    if (axis.row0[q] != q || axis.weight1[q] != acc_t(0)) return false;
  return true;
}

// An interpolated row (see interpolate_row) sampled at the query columns:
// `dst` [query column][channel] (2 * out_w of them), rounded to x's dtype
// as the deploy form's query grid is.
template <typename scalar_t, typename acc_t, bool kPlanar>
inline void sample_row(const acc_t* __restrict row, const Axis<acc_t>& cols,
                       int64_t queries, int64_t K, acc_t* __restrict dst) {
  const int32_t* __restrict i0 = cols.row0;
  const int32_t* __restrict i1 = cols.row1;
  const acc_t* __restrict w0 = cols.weight0;
  const acc_t* __restrict w1 = cols.weight1;
  if (kPlanar) {  // one gather per weight and query column
    for (int64_t c = 0; c < queries; ++c)
      dst[c] = rounded<scalar_t, acc_t>(row[i0[c]] * w0[c] +
                                        row[i1[c]] * w1[c]);
    return;
  }
  for (int64_t c = 0; c < queries; ++c) {
    const acc_t* __restrict a = row + i0[c] * K;
    const acc_t* __restrict b = row + i1[c] * K;
    const acc_t wa = w0[c], wb = w1[c];
    acc_t* __restrict d = dst + c * K;
    for (int64_t k = 0; k < K; ++k)
      d[k] = rounded<scalar_t, acc_t>(a[k] * wa + b[k] * wb);
  }
}

// The max of one cell: each column's max (ties: the top row), then the
// columns' (ties: the left one), as max_pool2d's scan resolves them, NaN
// propagating; `code` gets the winner (bit 0: right column, bit 1: bottom
// row). Branch-free (selects only), so that loops over it vectorise.
template <typename acc_t>
inline acc_t max_of_cell(acc_t s00, acc_t s01, acc_t s10, acc_t s11,
                         uint8_t& code) {
  const bool low_left = s10 > s00, low_right = s11 > s01;
  const acc_t left = (low_left | (s10 != s10)) ? s10 : s00;
  const acc_t right = (low_right | (s11 != s11)) ? s11 : s01;
  const bool right_wins = right > left;
  const bool low = right_wins ? low_right : low_left;
  code = static_cast<uint8_t>(static_cast<uint8_t>(right_wins) |
                              (static_cast<uint8_t>(low) << 1));
  return (right_wins | (right != right)) ? right : left;
}

// The output cells of one output row from its query grid rows `top` and
// `bottom` ([query column][channel]): their max and the winners' codes
// (`code` not null) or their mean. Output cells lie `stride` values apart
// (NCHW: 1; channels-last: the channel count).
template <typename scalar_t, typename acc_t, bool kPlanar>
inline void aggregate_row(const acc_t* __restrict top,
                          const acc_t* __restrict bottom, int64_t cells,
                          int64_t K, int64_t stride, scalar_t* __restrict out,
                          uint8_t* __restrict code) {
  if (kPlanar) {
    if (code) {
      for (int64_t j = 0; j < cells; ++j)
        out[j] = static_cast<scalar_t>(max_of_cell(
            top[2 * j], top[2 * j + 1], bottom[2 * j], bottom[2 * j + 1],
            code[j]));
    } else {
      for (int64_t j = 0; j < cells; ++j)
        out[j] = static_cast<scalar_t>((top[2 * j] + top[2 * j + 1] +
                                        bottom[2 * j] + bottom[2 * j + 1]) /
                                       acc_t(4));
    }
    return;
  }
  for (int64_t j = 0; j < cells; ++j) {
    const acc_t* __restrict t = top + 2 * j * K;
    const acc_t* __restrict b = bottom + 2 * j * K;
    scalar_t* __restrict o = out + j * stride;
    if (code) {
      uint8_t* __restrict c = code + j * stride;
      for (int64_t k = 0; k < K; ++k)
        o[k] = static_cast<scalar_t>(
            max_of_cell(t[k], t[K + k], b[k], b[K + k], c[k]));
    } else {
      for (int64_t k = 0; k < K; ++k)
        o[k] = static_cast<scalar_t>((t[k] + t[K + k] + b[k] + b[K + k]) /
                                     acc_t(4));
    }
  }
}

// d sample / d alpha along an axis: the interpolant `v` (an interpolated
// row, or a column of x) differenced around the query point (the spec's
// pixel-centre rule lives in the tables: see position_sensitivity).
template <typename acc_t, typename V>
inline acc_t slope_of(const Axis<acc_t>& axis, int64_t q, V v) {
  const int64_t l = axis.lower[q];
  const acc_t at_l = v(l);
  acc_t d = axis.above[q] * (v(l + 1) - at_l);
  if (axis.below[q] != acc_t(0)) d += axis.below[q] * (at_l - v(l - 1));
  return d;
}

constexpr int64_t kLanes = 16;

// sum over i < n of a[i] * b(i), in kLanes independent partial sums (which
// the compiler vectorises without reassociating any one of them).
template <typename acc_t, typename B>
inline acc_t dot(const acc_t* a, B b, int64_t n) {
  acc_t part[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t t = 0; t < kLanes; ++t) part[t] += a[i + t] * b(i + t);
  acc_t total = 0;
  for (; i < n; ++i) total += a[i] * b(i);
  for (int64_t t = 0; t < kLanes; ++t) total += part[t];
  return total;
}

template <typename scalar_t, bool kPlanar>
void forward_impl(const at::Tensor& x, const at::Tensor& rows_index,
                  const at::Tensor& rows_weight, const at::Tensor& cols_index,
                  const at::Tensor& cols_weight, at::Tensor& out,
                  at::Tensor* code) {
  using acc_t = at::opmath_type<scalar_t>;
  const Axis<acc_t> rows = axis_of<acc_t>(rows_index, rows_weight);
  const Axis<acc_t> cols = axis_of<acc_t>(cols_index, cols_weight);
  const Layout layout(x, !kPlanar);
  const Strides xs(x), os(out);
  const int64_t in_w = x.size(3);
  const int64_t out_h = out.size(2), out_w = out.size(3);
  const scalar_t* x_data = x.data_ptr<scalar_t>();
  scalar_t* out_data = out.data_ptr<scalar_t>();
  uint8_t* code_data = code ? code->data_ptr<uint8_t>() : nullptr;

  const bool identity_w = is_identity(cols, 2 * out_w, in_w);

  at::parallel_for(0, layout.units(), 1, [&](int64_t begin, int64_t end) {
    const int64_t block = kPlanar ? 1 : kChannelBlock;
    // Per output row: its two query rows interpolated along H ([input
    // column][channel]) and sampled at the query columns ([query
    // column][channel]).
    std::vector<acc_t> interpolated(2 * in_w * block);
    std::vector<acc_t> samples(2 * 2 * out_w * block);
    for (int64_t u = begin; u < end; ++u) {
      const Unit unit = layout.unit(u);
      const int64_t K = kPlanar ? 1 : unit.channels;
      const scalar_t* xu = x_data + xs.base(unit);
      const int64_t ob = os.base(unit);
      for (int64_t i = 0; i < out_h; ++i) {
        const acc_t* s[2];
        for (int q = 0; q < 2; ++q) {
          acc_t* row = interpolated.data() + q * in_w * K;
          interpolate_row<scalar_t, acc_t, kPlanar>(xu, xs, rows, 2 * i + q,
                                                    in_w, K, row);
          if (identity_w && std::is_same<scalar_t, acc_t>::value) {
            s[q] = row;
          } else {
            acc_t* dst = samples.data() + q * 2 * out_w * K;
            sample_row<scalar_t, acc_t, kPlanar>(row, cols, 2 * out_w, K, dst);
            s[q] = dst;
          }
        }
        // (out and code share the output's strides.)
        const int64_t at = ob + i * os.h;
        aggregate_row<scalar_t, acc_t, kPlanar>(
            s[0], s[1], out_w, K, os.w, out_data + at,
            code_data ? code_data + at : nullptr);
      }
    }
  });
}

template <typename scalar_t, bool kPlanar>
void backward_impl(const at::Tensor& x, const at::Tensor& grad_out,
                   const at::Tensor* code, const at::Tensor& rows_index,
                   const at::Tensor& rows_weight, const at::Tensor& cols_index,
                   const at::Tensor& cols_weight, at::Tensor* grad_x,
                   bool learn_h, bool learn_w, double* alpha_grad) {
  using acc_t = at::opmath_type<scalar_t>;
  // fp32 / fp64 accumulate in grad_x itself; fp16 / bf16 in an fp32 buffer
  // per unit, rounded once at the end.
  constexpr bool direct = std::is_same<scalar_t, acc_t>::value;
  const Axis<acc_t> rows = axis_of<acc_t>(rows_index, rows_weight);
  const Axis<acc_t> cols = axis_of<acc_t>(cols_index, cols_weight);
  const Layout layout(x, !kPlanar);
  const Strides xs(x), gs(grad_out);
  const int64_t in_h = x.size(2), in_w = x.size(3);
  const int64_t out_h = grad_out.size(2), out_w = grad_out.size(3);
  const scalar_t* x_data = x.data_ptr<scalar_t>();
  const scalar_t* g_data = grad_out.data_ptr<scalar_t>();
  const uint8_t* code_data = code ? code->data_ptr<uint8_t>() : nullptr;
  scalar_t* gx_data = grad_x ? grad_x->data_ptr<scalar_t>() : nullptr;
  std::vector<double> partials(2 * layout.units(), 0.0);
  const int64_t block = kPlanar ? 1 : kChannelBlock;

  at::parallel_for(0, layout.units(), 1, [&](int64_t begin, int64_t end) {
    // Per query row (2 per output row): the H-interpolated input (for
    // alpha_w) and the gradient w.r.t. it, [column][channel].
    std::vector<acc_t> interpolated(2 * in_w * block);
    std::vector<acc_t> row_grad(2 * in_w * block);
    // The unit's input gradient, [row][column][channel].
    std::vector<acc_t> staging;
    for (int64_t u = begin; u < end; ++u) {
      const Unit unit = layout.unit(u);
      const int64_t K = kPlanar ? 1 : unit.channels;
      const int64_t row_size = in_w * K;
      const scalar_t* xu = x_data + xs.base(unit);
      const scalar_t* gu = g_data + gs.base(unit);
      const uint8_t* cu = code_data ? code_data + gs.base(unit) : nullptr;
      // Channels-last units and fp16 / bf16 accumulate in `staging`; NCHW
      // fp32 / fp64 planes in grad_x itself (contiguous rows).
      const bool in_place = direct && kPlanar;
      acc_t* acc = nullptr;
      if (gx_data) {
        if (in_place) {
          acc = reinterpret_cast<acc_t*>(gx_data + xs.base(unit));
          std::fill(acc, acc + in_h * row_size, acc_t(0));
        } else {
          staging.assign(in_h * row_size, acc_t(0));
          acc = staging.data();
        }
      }
      double sum_h = 0.0, sum_w = 0.0;
      for (int64_t i = 0; i < out_h; ++i) {
        acc_t* rg[2] = {row_grad.data(), row_grad.data() + row_size};
        acc_t* rb[2] = {interpolated.data(), interpolated.data() + row_size};
        std::fill(rg[0], rg[0] + 2 * row_size, acc_t(0));
        if (learn_w)
          for (int q = 0; q < 2; ++q)
            interpolate_row<scalar_t, acc_t, kPlanar>(xu, xs, rows, 2 * i + q,
                                                      in_w, K, rb[q]);
        acc_t dw[kChannelBlock] = {};
        for (int64_t j = 0; j < out_w; ++j) {
          const int64_t o = i * gs.h + j * gs.w;
          for (int64_t k = 0; k < K; ++k) {
            acc_t g = static_cast<acc_t>(gu[o + k * gs.c]);
            int first = 0, last = 4;  // the samples that take gradient
            if (cu) {
              first = cu[o + k * gs.c];
              last = first + 1;
            } else {
              // As the torch backend: a quarter of the gradient, in x's
              // dtype, to each sample.
              g = static_cast<acc_t>(static_cast<scalar_t>(g * acc_t(0.25)));
            }
            for (int sample = first; sample < last; ++sample) {
              const int q = sample >> 1;
              const int64_t c = 2 * j + (sample & 1);
              rg[q][cols.row0[c] * K + k] += g * cols.weight0[c];
              rg[q][cols.row1[c] * K + k] += g * cols.weight1[c];
              if (learn_w)
                dw[k] += g * slope_of(cols, c, [&](int64_t col) {
                  return rb[q][col * K + k];
                });
            }
          }
        }
        for (int64_t k = 0; k < K; ++k) sum_w += dw[k];
        // The row gradients into the input gradient, and alpha_h's
        // derivative: each query row's gradient against the input's row
        // differences around it.
        for (int q = 0; q < 2; ++q) {
          const int64_t r = 2 * i + q;
          const acc_t* grad_row = rg[q];
          if (acc) {
            acc_t* a = acc + rows.row0[r] * row_size;
            acc_t* b = acc + rows.row1[r] * row_size;
            const acc_t w0 = rows.weight0[r], w1 = rows.weight1[r];
            for (int64_t t = 0; t < row_size; ++t) a[t] += grad_row[t] * w0;
            if (w1 != acc_t(0))
              for (int64_t t = 0; t < row_size; ++t)
                b[t] += grad_row[t] * w1;
          }
          if (learn_h) {
            const int64_t l = rows.lower[r];
            const acc_t above = rows.above[r], below = rows.below[r];
            const scalar_t* up = xu + (l + 1) * xs.h;
            const scalar_t* mid = xu + l * xs.h;
            const scalar_t* down = xu + (below != acc_t(0) ? l - 1 : l) * xs.h;
            auto slope = [&](int64_t at) {
              const acc_t m = static_cast<acc_t>(mid[at]);
              return above * (static_cast<acc_t>(up[at]) - m) +
                     below * (m - static_cast<acc_t>(down[at]));
            };
            if (kPlanar) {
              sum_h += dot(grad_row, slope, in_w);
            } else {
              acc_t part[kChannelBlock] = {};
              for (int64_t col = 0; col < in_w; ++col)
                for (int64_t k = 0; k < K; ++k)
                  part[k] += grad_row[col * K + k] * slope(col * xs.w + k);
              for (int64_t k = 0; k < K; ++k) sum_h += part[k];
            }
          }
        }
      }
      partials[2 * u] = sum_h;
      partials[2 * u + 1] = sum_w;
      if (gx_data && !in_place) {
        scalar_t* target = gx_data + xs.base(unit);
        for (int64_t y = 0; y < in_h; ++y)
          for (int64_t col = 0; col < in_w; ++col)
            for (int64_t k = 0; k < K; ++k)
              target[y * xs.h + at_col<kPlanar>(col, k, xs)] =
                  static_cast<scalar_t>(acc[(y * in_w + col) * K + k]);
      }
    }
  });
  for (int64_t u = 0; u < layout.units(); ++u) {
    alpha_grad[0] += partials[2 * u];
    alpha_grad[1] += partials[2 * u + 1];
  }
}

void check_input(const at::Tensor& x, bool channels_last) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 4,
              "dynopool_cpu: x must be a 4-D CPU tensor");
  TORCH_CHECK(x.is_contiguous(channels_last ? at::MemoryFormat::ChannelsLast
                                            : at::MemoryFormat::Contiguous),
              "dynopool_cpu: x must be dense in the layout it is run in");
}

}  // namespace

// Returns (out, code); code is empty for avg.
std::vector<at::Tensor> forward(const at::Tensor& x,
                                const at::Tensor& rows_index,
                                const at::Tensor& rows_weight,
                                const at::Tensor& cols_index,
                                const at::Tensor& cols_weight, bool is_max,
                                bool channels_last) {
  check_input(x, channels_last);
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast
                                    : at::MemoryFormat::Contiguous;
  const int64_t out_h = rows_index.size(1) / 2, out_w = cols_index.size(1) / 2;
  at::Tensor out = at::empty({x.size(0), x.size(1), out_h, out_w},
                             x.options().memory_format(format));
  at::Tensor code;
  if (is_max)
    code = at::empty_like(out, out.options().dtype(at::kByte), format);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "dynopool_cpu_forward", [&] {
        at::Tensor* c = is_max ? &code : nullptr;
        if (channels_last)
          forward_impl<scalar_t, false>(x, rows_index, rows_weight,
                                        cols_index, cols_weight, out, c);
        else
          forward_impl<scalar_t, true>(x, rows_index, rows_weight,
                                       cols_index, cols_weight, out, c);
      });
  return {out, code};
}

// Returns (grad_x or an empty tensor, alpha's gradient as float64 (2,)).
std::vector<at::Tensor> backward(const at::Tensor& x,
                                 const at::Tensor& grad_out,
                                 const at::Tensor& code,
                                 const at::Tensor& rows_index,
                                 const at::Tensor& rows_weight,
                                 const at::Tensor& cols_index,
                                 const at::Tensor& cols_weight, bool want_x,
                                 bool learn_h, bool learn_w,
                                 bool channels_last) {
  check_input(x, channels_last);
  check_input(grad_out, channels_last);
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast
                                    : at::MemoryFormat::Contiguous;
  at::Tensor grad_x;
  if (want_x) grad_x = at::empty_like(x, x.options(), format);
  at::Tensor alpha_grad = at::zeros({2}, x.options().dtype(at::kDouble));
  const bool is_max = code.defined() && code.numel() > 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "dynopool_cpu_backward", [&] {
        const at::Tensor* c = is_max ? &code : nullptr;
        at::Tensor* gx = want_x ? &grad_x : nullptr;
        double* ga = alpha_grad.data_ptr<double>();
        if (channels_last)
          backward_impl<scalar_t, false>(x, grad_out, c, rows_index,
                                         rows_weight, cols_index, cols_weight,
                                         gx, learn_h, learn_w, ga);
        else
          backward_impl<scalar_t, true>(x, grad_out, c, rows_index,
                                        rows_weight, cols_index, cols_weight,
                                        gx, learn_h, learn_w, ga);
      });
  return {grad_x, alpha_grad};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "DynOPool forward (CPU)");
  m.def("backward", &backward, "DynOPool backward (CPU)");
}

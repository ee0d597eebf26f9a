/* Fused elementwise steps of the FiLM-SIREN fast path (float32, contiguous).
 *
 * torch.sin on CPU goes through MKL's high-accuracy vector maths and costs about
 * a quarter of a 256x256 matmul per element; these loops are 4x cheaper, fuse the
 * bias add and the backward multiply, and gcc/clang vectorise them at -O3.
 * Built and loaded by sine_kernels.py; torch ops are used where they cannot be.
 */
#include <stdint.h>
#include <math.h>

#define TWO_OVER_PI 0.636619772367581343f
#define PIO2_HI 1.57079637050628662109375f       /* float(pi/2) */
#define PIO2_LO -4.37113900018624283e-8f          /* pi/2 - PIO2_HI */
#define ROUNDER 12582912.0f                       /* 1.5 * 2^23: x + ROUNDER - ROUNDER rounds x */

/* sin and cos of x, abs error < 1e-7 for |x| < 1e5: x = k pi/2 + r with |r| <= pi/4,
   minimax polynomials in r (Cephes' sinf/cosf coefficients), quadrant k mod 4. */
static inline void sincos_f32(float x, float *sin_out, float *cos_out) {
    float k = (x * TWO_OVER_PI + ROUNDER) - ROUNDER;
    int q = (int)k;
    float r = fmaf(-k, PIO2_HI, x);
    r = fmaf(-k, PIO2_LO, r);
    float r2 = r * r;
    float s = r + r * r2 * (-1.6666654611e-1f + r2 * (8.3321608736e-3f + r2 * -1.9515295891e-4f));
    float c = 1.0f - 0.5f * r2
              + r2 * r2 * (4.166664568298827e-2f + r2 * (-1.388731625493765e-3f + r2 * 2.443315711809948e-5f));
    float sin_x = (q & 1) ? c : s;
    float cos_x = (q & 1) ? s : c;
    *sin_out = (q & 2) ? -sin_x : sin_x;
    *cos_out = ((q + 1) & 2) ? -cos_x : cos_x;
}

/* z[i, :] += bias[i / rows_per_bias, :]; y = sin(z).  z, y: [rows, cols]. */
void add_bias_sin(float *z, float *y, const float *bias, int64_t rows, int64_t cols, int64_t rows_per_bias) {
    for (int64_t i = 0; i < rows; i++) {
        float *z_row = z + i * cols, *y_row = y + i * cols;
        const float *b_row = bias + (i / rows_per_bias) * cols;
        for (int64_t j = 0; j < cols; j++) {
            float v = z_row[j] + b_row[j], s, c;
            sincos_f32(v, &s, &c);
            z_row[j] = v;
            y_row[j] = s;
        }
    }
}

/* s = sin(z); g *= cos(z).  All of n elements. */
void sin_and_mul_cos(const float *z, float *s, float *g, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float sin_z, cos_z;
        sincos_f32(z[i], &sin_z, &cos_z);
        s[i] = sin_z;
        g[i] *= cos_z;
    }
}

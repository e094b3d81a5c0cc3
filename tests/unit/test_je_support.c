/* test_je_support.c - poolmalloc's own exp, log and round (given to the
 * embedded jemalloc instead of libm's) agree with libm. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

double pm_je_support_exp(double x);
double pm_je_support_log(double x);
double pm_je_support_round(double x);
int pm_je_support__Unwind_Backtrace(int (*fn)(void *, void *), void *arg);

/* relative error in units of 2^-52 */
static double ulps(double got, double want) {
  if (got == want) return 0;
  return fabs(got - want) / (fabs(want) * 0x1p-52);
}

static uint64_t rng = 88172645463325252ull;
static double next_unit(void) { /* [0, 1) */
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (double)(rng >> 11) * 0x1p-53;
}

Test(je_support, log_matches_libm) {
  double worst = 0;
  for (int i = 0; i < 200000; i++) {
    double x = ldexp(0.5 + next_unit(), (int)(next_unit() * 2000) - 1000);
    double e = ulps(pm_je_support_log(x), log(x));
    if (e > worst) worst = e;
  }
  cr_expect(worst <= 4, "log: worst error %.2f ulp", worst);
  cr_expect(pm_je_support_log(1.0) == 0.0);
  cr_expect(ulps(pm_je_support_log(1 - 0x1p-20), log(1 - 0x1p-20)) <= 4);
  cr_expect(ulps(pm_je_support_log(0x1p-1070), log(0x1p-1070)) <= 4); /* subnormal */
  cr_expect(isinf(pm_je_support_log(0.0)) && pm_je_support_log(0.0) < 0);
  cr_expect(isnan(pm_je_support_log(-1.0)));
  cr_expect(isinf(pm_je_support_log(INFINITY)));
  cr_expect(isnan(pm_je_support_log(NAN)));
}

Test(je_support, exp_matches_libm) {
  double worst = 0;
  for (int i = 0; i < 200000; i++) {
    double x = (next_unit() - 0.5) * 1400;
    double e = ulps(pm_je_support_exp(x), exp(x));
    if (exp(x) > 0x1p-1000 && e > worst) worst = e;
  }
  cr_expect(worst <= 4, "exp: worst error %.2f ulp", worst);
  cr_expect(pm_je_support_exp(0) == 1.0);
  cr_expect(isinf(pm_je_support_exp(710)));
  cr_expect(pm_je_support_exp(-746) == 0);
  cr_expect(isnan(pm_je_support_exp(NAN)));
  cr_expect(fabs(pm_je_support_exp(-740) - exp(-740)) <= 0x1p-1074 * 2); /* subnormal */
}

Test(je_support, round_matches_libm) {
  const double xs[] = {0.0,        -0.0,        0.5,       -0.5,
                       1.5,        -1.5,        2.5,       0.49999999999999994,
                       1e15 + 0.5, -1e15 - 0.5, 0x1p52,    -0x1p53,
                       1e300,      INFINITY,    -INFINITY, 3.7,
                       -3.7};
  for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
    double got = pm_je_support_round(xs[i]), want = round(xs[i]);
    cr_expect(memcmp(&got, &want, sizeof got) == 0, "round(%a) = %a, libm %a", xs[i], got,
              want);
  }
  cr_expect(isnan(pm_je_support_round(NAN)));
  for (int i = 0; i < 100000; i++) {
    double x = (next_unit() - 0.5) * 1e6;
    cr_expect_eq(pm_je_support_round(x), round(x));
  }
}

static int count_frame(void *ctx, void *arg) {
  (void)ctx;
  ++*(int *)arg;
  return 0;
}

/* without libgcc_s in the process a backtrace is empty, never a crash; with
 * it (a C++ program), the real unwinder runs */
Test(je_support, unwind_backtrace_is_safe) {
  int frames = 0;
  int rc = pm_je_support__Unwind_Backtrace(count_frame, &frames);
  cr_expect(rc == 5 || frames > 0, "rc %d frames %d", rc, frames);
}

// Shared measuring helpers for bench cases.

/** Median of an array of numbers. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/**
 * Median nanoseconds per iteration of `body(iterations)` over `batches` batches, after one
 * warm-up batch. `body` runs `iterations` operations and returns nothing.
 */
export function nsPerOp(body, iterations, batches = 15) {
  body(iterations);
  const per = [];
  for (let b = 0; b < batches; b++) {
    const t0 = process.hrtime.bigint();
    body(iterations);
    per.push(Number(process.hrtime.bigint() - t0) / iterations);
  }
  return median(per);
}

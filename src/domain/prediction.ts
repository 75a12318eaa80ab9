// Disk full prediction: a least-squares line through recent usage samples, extrapolated to 100%.

export interface Sample {
  t: number;
  percent: number;
}

/** Milliseconds until the fitted line reaches 100%, or undefined when usage is not rising (or too few samples). */
export function timeUntilFull(samples: Sample[], nowMs: number, minSamples = 3): number | undefined {
  if (samples.length < minSamples) return undefined;
  const n = samples.length;
  const mt = samples.reduce((a, s) => a + s.t, 0) / n;
  const mp = samples.reduce((a, s) => a + s.percent, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.t - mt) * (s.percent - mp);
    den += (s.t - mt) ** 2;
  }
  if (den === 0) return undefined;
  const slope = num / den; // percent per ms
  if (slope <= 0) return undefined;
  const fullAt = mt + (100 - mp) / slope;
  return Math.max(0, fullAt - nowMs);
}

/** Keeps the last `max` samples per key (in memory: after a restart the history rebuilds in a few passes). */
export class SampleHistory {
  private readonly series = new Map<string, Sample[]>();
  private readonly max: number;
  constructor(max = 20) {
    this.max = max;
  }
  add(key: string, sample: Sample): Sample[] {
    const list = [...(this.series.get(key) ?? []), sample].slice(-this.max);
    this.series.set(key, list);
    return list;
  }
}

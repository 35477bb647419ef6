// Owns ScrapeTimeHistogram: a prom-client Histogram whose per-request observations are plain additions,
// rendered at scrape time exactly as prom-client's own Histogram renders them (Prometheus text and JSON).

import { Histogram, type MetricObjectWithValues, type MetricValueWithName, type Registry } from 'prom-client';

export interface HistogramSeries { readonly labels: Record<string, string>; readonly counts: number[]; sum: number; count: number }
interface HistogramValue { labels: Record<string, string | number>; sharedLabels: Record<string, string>; value: number; metricName: string; exemplar: null | undefined }

/**
 * A prom-client Histogram whose observations are plain additions into a series held here (prom-client's
 * observe() converts and hashes the labels and walks an object per call, twice per request), rendered at
 * scrape time in exactly the value list prom-client's own Histogram produces (same names, labels, order).
 */
export class ScrapeTimeHistogram extends Histogram<string> {
  private readonly bounds: readonly number[];
  private readonly seriesList: HistogramSeries[] = [];
  private readonly seriesByValue = new Map<string, HistogramSeries>();
  private overflowSeries: HistogramSeries | undefined;
  private readonly ownLabelNames: readonly string[];
  private readonly maxSeries: number;

  /** `maxSeries` bounds the distinct label sets; beyond it every new one is counted under `other`. */
  constructor(config: { name: string; help: string; buckets: number[]; labelNames?: readonly string[]; registers: Registry[]; maxSeries: number }) {
    const { maxSeries, ...histogram } = config;
    super({ ...histogram, labelNames: config.labelNames ?? [] });
    this.maxSeries = maxSeries;
    this.bounds = [...config.buckets].sort((a, b) => a - b);
    this.ownLabelNames = config.labelNames ?? [];
    // Like prom-client, a histogram without labels shows its (zero) series from the first scrape.
    if (this.ownLabelNames.length === 0) this.series();
  }

  /** The series for these label values (in labelNames order); bounded like every labelled metric here. */
  series(...values: string[]): HistogramSeries {
    const key = values.join('\u0000');
    let s = this.seriesByValue.get(key);
    if (s === undefined) {
      // Label sets beyond the ceiling are not remembered either: unbounded values must not grow the map.
      if (this.seriesList.length >= this.maxSeries) return this.overflow();
      s = this.newSeries(values);
      this.seriesByValue.set(key, s);
    }
    return s;
  }

  record(series: HistogramSeries, value: number): void {
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > (b[i] as number)) i++;
    (series.counts[i] as number)++;
    series.sum += value;
    series.count++;
  }

  /** What the registry renders (prom-client calls this for the text exposition). */
  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: HistogramValue[]; aggregator: string }> {
    const self = this as unknown as { name: string; help: string; aggregator: string };
    const bucket = `${self.name}_bucket`;
    const values: HistogramValue[] = [];
    for (const s of this.seriesList) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.counts[i] as number;
        values.push({ labels: { le }, sharedLabels: s.labels, value: acc, metricName: bucket, exemplar: null });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket, exemplar: null },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${self.name}_sum`, exemplar: undefined },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${self.name}_count`, exemplar: undefined },
      );
    }
    return { name: self.name, help: self.help, type: 'histogram', values, aggregator: self.aggregator };
  }

  /** JSON form (registry.getMetricsAsJSON, cluster aggregation): labels merged as prom-client does. */
  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } })),
    } as unknown as MetricObjectWithValues<MetricValueWithName<string>>;
  }

  private newSeries(values: string[]): HistogramSeries {
    const labels: Record<string, string> = {};
    this.ownLabelNames.forEach((n, i) => { labels[n] = values[i] as string; });
    const s: HistogramSeries = { labels, counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 };
    this.seriesList.push(s);
    return s;
  }

  private overflow(): HistogramSeries {
    this.overflowSeries ??= this.newSeries(this.ownLabelNames.map(() => 'other'));
    return this.overflowSeries;
  }
}

/**
 * An SVG chart of wake-up latency: for each wait strategy, the latency distribution as a
 * cumulative curve (x: latency, log scale; y: share of waits woken), with p50/p99 in the legend.
 */
import { percentile } from './stats.js';

export interface Series {
  label: string;
  values: number[];
  colour: string;
}

export function latencyChart(title: string, series: Series[]): string {
  const width = 760;
  const height = 420;
  const left = 70;
  const right = 20;
  const top = 50;
  const bottom = 60;
  const all = series.flatMap((s) => s.values).filter((v) => v > 0);
  const min = Math.max(1, Math.min(...all));
  const max = Math.max(...all);
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const x = (v: number) =>
    left + ((Math.log10(Math.max(v, 1)) - lo) / Math.max(hi - lo, 1)) * (width - left - right);
  const y = (share: number) => top + (1 - share) * (height - top - bottom);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12" role="img">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
  );
  for (let e = lo; e <= hi; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v < 10 ** lo || v > 10 ** hi) continue;
      const px = x(v);
      parts.push(
        `<line x1="${px}" y1="${top}" x2="${px}" y2="${height - bottom}" stroke="#ddd"/>`,
        `<text x="${px}" y="${height - bottom + 16}" text-anchor="middle">${v >= 1000 ? `${v / 1000}s` : `${v}ms`}</text>`,
      );
    }
  }
  for (const share of [0, 0.25, 0.5, 0.75, 0.95, 1]) {
    parts.push(
      `<line x1="${left}" y1="${y(share)}" x2="${width - right}" y2="${y(share)}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${y(share) + 4}" text-anchor="end">${Math.round(share * 100)}%</text>`,
    );
  }
  parts.push(
    `<text x="${width / 2}" y="${height - 18}" text-anchor="middle">wake-up latency after the worker's completion was accepted (log scale)</text>`,
    `<text transform="translate(16 ${height / 2}) rotate(-90)" text-anchor="middle">share of waits returned</text>`,
  );
  series.forEach((s, i) => {
    const sorted = [...s.values].sort((a, b) => a - b);
    const points = sorted.map(
      (v, j) => `${x(v).toFixed(1)},${y((j + 1) / sorted.length).toFixed(1)}`,
    );
    parts.push(
      `<polyline fill="none" stroke="${s.colour}" stroke-width="2" points="${points.join(' ')}"/>`,
    );
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    const ly = top + 14 + i * 18;
    parts.push(
      `<rect x="${left + 10}" y="${ly - 9}" width="14" height="4" fill="${s.colour}"/>`,
      `<text x="${left + 30}" y="${ly}">${escapeXml(s.label)}: p50 ${Math.round(p50)} ms, p99 ${Math.round(p99)} ms</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface StagePercentiles {
  label: string;
  p50: number;
  p95: number;
  p99: number;
}

/**
 * The stages of a wake-up as horizontal bars on a log scale: for each stage a thick bar to its
 * p50, a thinner one to its p95 and a tick at its p99.
 */
export function stageChart(title: string, stages: StagePercentiles[]): string {
  const width = 760;
  const rowHeight = 30;
  const top = 50;
  const left = 330;
  const right = 20;
  const height = top + stages.length * rowHeight + 50;
  const all = stages.flatMap((s) => [s.p50, s.p95, s.p99]).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.max(0.1, Math.min(...all, 1))));
  const hi = Math.ceil(Math.log10(Math.max(...all, 10)));
  const x = (v: number) =>
    left +
    ((Math.log10(Math.max(v, 10 ** lo)) - lo) / Math.max(hi - lo, 1)) * (width - left - right);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12" role="img">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
  ];
  for (let e = lo; e <= hi; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v < 10 ** lo || v > 10 ** hi) continue;
      parts.push(
        `<line x1="${x(v)}" y1="${top - 6}" x2="${x(v)}" y2="${height - 44}" stroke="#ddd"/>`,
        `<text x="${x(v)}" y="${height - 30}" text-anchor="middle">${v >= 1000 ? `${v / 1000}s` : `${Number(v.toPrecision(2))}ms`}</text>`,
      );
    }
  }
  stages.forEach((s, i) => {
    const y = top + i * rowHeight;
    parts.push(
      `<text x="${left - 8}" y="${y + 14}" text-anchor="end">${escapeXml(s.label)}</text>`,
      `<rect x="${left}" y="${y + 9}" width="${Math.max(0, x(s.p95) - left)}" height="6" fill="#aecbfa"/>`,
      `<rect x="${left}" y="${y + 4}" width="${Math.max(0, x(s.p50) - left)}" height="16" fill="#1a73e8"/>`,
      `<line x1="${x(s.p99)}" y1="${y + 2}" x2="${x(s.p99)}" y2="${y + 22}" stroke="#d93025" stroke-width="2"/>`,
    );
  });
  parts.push(
    `<text x="${width / 2}" y="${height - 10}" text-anchor="middle">bar: p50; light bar: p95; red tick: p99 (ms, log scale)</text>`,
    '</svg>',
  );
  return `${parts.join('\n')}\n`;
}

/** The latency chart above the stage chart, in one SVG. */
export function wakeChart(
  title: string,
  series: Series[],
  stages: { stages: Record<string, { p50: number; p95: number; p99: number }> },
  labels: Record<string, string>,
): string {
  const top = latencyChart(title, series);
  const rows = Object.entries(stages.stages).map(([key, s]) => ({
    label: labels[key] ?? key,
    p50: s.p50,
    p95: s.p95,
    p99: s.p99,
  }));
  const bottom = stageChart('Where the notification wait spends its time, per stage', rows);
  const height = (svg: string) => Number(/height="(\d+)"/.exec(svg)?.[1] ?? 0);
  const h1 = height(top);
  const h2 = height(bottom);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="760" height="${h1 + h2}" role="img">`,
    `<title>${escapeXml(title)}</title>`,
    top.replace('<svg ', '<svg x="0" y="0" '),
    bottom.replace('<svg ', `<svg x="0" y="${h1}" `),
    '</svg>',
    '',
  ].join('\n');
}

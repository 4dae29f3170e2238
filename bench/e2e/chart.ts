/**
 * bench/results-chart.svg, hand-written SVG (no dependencies): two panels side by side, objects/s
 * and CPU ms per object by snapshot size, both on log scales, with lines for the service, the
 * naive baseline and the ceiling; solid at 0 ms of added S3 latency, dashed with it.
 */
import type { CellStats } from './report.ts';

const W = 460;
const H = 360;
const M = { left: 70, right: 20, top: 40, bottom: 56 };
const SERIES = [
  { name: 'service', color: '#1f63b4' },
  { name: 'naive', color: '#d1462f' },
  { name: 'ceiling', color: '#3a9a4a' },
] as const;
type SeriesName = (typeof SERIES)[number]['name'];

interface Point {
  readonly x: number;
  readonly y: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (x: number) => (Math.round(x * 10) / 10).toString();

function tickLabel(v: number): string {
  if (v >= 1000) return `${(v / 1000).toLocaleString('en-US')}k`;
  return v >= 1 ? v.toLocaleString('en-US') : String(Number(v.toPrecision(1)));
}

function value(cell: CellStats, series: SeriesName, metric: 'objectsPerSecond' | 'cpuMsPerObject'): number | undefined {
  const stats = series === 'ceiling' ? cell.ceiling : cell.variants[series];
  const v = stats?.[metric].median;
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : undefined;
}

function panel(
  cells: readonly CellStats[],
  sizes: readonly number[],
  latencies: readonly number[],
  metric: 'objectsPerSecond' | 'cpuMsPerObject',
  title: string,
  yLabel: string,
  dx: number,
): string {
  const values = cells.flatMap((c) => SERIES.map((s) => value(c, s.name, metric))).filter((v): v is number => v !== undefined);
  const lo = values.length === 0 ? 0 : Math.floor(Math.log10(Math.min(...values)));
  const hi = values.length === 0 ? 1 : Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...values))));
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const x = (i: number) => dx + M.left + (sizes.length === 1 ? plotW / 2 : 30 + (i * (plotW - 60)) / (sizes.length - 1));
  const y = (v: number) => M.top + plotH - ((Math.log10(v) - lo) / (hi - lo)) * plotH;
  const out: string[] = [`<g>`, `<text x="${num(dx + W / 2)}" y="22" text-anchor="middle" class="title">${esc(title)}</text>`];
  out.push(`<rect x="${dx + M.left}" y="${M.top}" width="${plotW}" height="${plotH}" class="frame"/>`);
  for (let d = lo; d <= hi; d++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** d;
      if (Math.log10(v) > hi + 1e-9) continue;
      const yy = num(y(v));
      out.push(`<line x1="${dx + M.left}" x2="${dx + M.left + plotW}" y1="${yy}" y2="${yy}" class="${m === 1 ? 'grid' : 'minor'}"/>`);
      if (m === 1 || hi - lo <= 2) out.push(`<text x="${dx + M.left - 6}" y="${num(y(v) + 4)}" text-anchor="end" class="tick">${tickLabel(v)}</text>`);
    }
  }
  sizes.forEach((s, i) => {
    out.push(`<text x="${num(x(i))}" y="${H - M.bottom + 18}" text-anchor="middle" class="tick">${s.toLocaleString('en-US')}</text>`);
  });
  out.push(`<text x="${num(dx + M.left + plotW / 2)}" y="${H - 14}" text-anchor="middle" class="label">links per snapshot</text>`);
  const cy = M.top + plotH / 2;
  out.push(`<text transform="translate(${dx + 18} ${cy}) rotate(-90)" text-anchor="middle" class="label">${esc(yLabel)}</text>`);
  for (const latencyMs of latencies) {
    for (const s of SERIES) {
      const points: Point[] = [];
      sizes.forEach((size, i) => {
        const cell = cells.find((c) => c.links === size && c.latencyMs === latencyMs);
        const v = cell === undefined ? undefined : value(cell, s.name, metric);
        if (v !== undefined) points.push({ x: x(i), y: y(v) });
      });
      const dash = latencyMs === 0 ? '' : ' stroke-dasharray="6 4"';
      if (points.length > 1) {
        out.push(`<polyline points="${points.map((p) => `${num(p.x)},${num(p.y)}`).join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
      }
      for (const p of points) {
        out.push(`<circle cx="${num(p.x)}" cy="${num(p.y)}" r="3.5" fill="${latencyMs === 0 ? s.color : '#fff'}" stroke="${s.color}" stroke-width="1.5"/>`);
      }
    }
  }
  out.push('</g>');
  return out.join('\n');
}

export function renderChart(cells: readonly CellStats[], sizes: readonly number[], latencies: readonly number[], caption: readonly string[]): string {
  const width = 2 * W;
  const legendY = H + 8;
  const height = legendY + 30 + 15 * caption.length;
  const legend: string[] = [];
  let lx = 80;
  for (const s of SERIES) {
    legend.push(`<line x1="${lx}" x2="${lx + 28}" y1="${legendY + 10}" y2="${legendY + 10}" stroke="${s.color}" stroke-width="2"/>`);
    legend.push(`<circle cx="${lx + 14}" cy="${legendY + 10}" r="3.5" fill="${s.color}"/>`);
    legend.push(`<text x="${lx + 36}" y="${legendY + 14}" class="legend">${s.name}</text>`);
    lx += s.name === 'ceiling' ? 200 : 110;
  }
  const added = latencies.filter((l) => l !== 0);
  legend.push(
    `<text x="${lx}" y="${legendY + 14}" class="legend">solid: S3 direct (0 ms)${added.length > 0 ? `; dashed, open: S3 +${added.join('/+')} ms` : ''}</text>`,
  );
  for (const [i, line] of caption.entries()) legend.push(`<text x="80" y="${legendY + 36 + 15 * i}" class="note">${esc(line)}</text>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<title>${esc(`Throughput and CPU per object by snapshot size: service, naive, ceiling. ${caption.join(' ')}`)}</title>`,
    '<style>',
    '.title { font-size: 15px; font-weight: bold; fill: #222; }',
    '.label { font-size: 13px; fill: #333; }',
    '.tick { font-size: 11px; fill: #444; }',
    '.legend { font-size: 13px; fill: #222; }',
    '.note { font-size: 11px; fill: #555; }',
    '.frame { fill: none; stroke: #888; }',
    '.grid { stroke: #ccc; }',
    '.minor { stroke: #eee; }',
    '</style>',
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    panel(cells, sizes, latencies, 'objectsPerSecond', 'Throughput', 'objects/s (log scale)', 0),
    panel(cells, sizes, latencies, 'cpuMsPerObject', 'CPU per object', 'CPU ms per object (log scale)', W),
    ...legend,
    '</svg>',
    '',
  ].join('\n');
}

#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Draws docs/grafana/bullc-dashboard.json without Grafana (Debian does not
// package it): each panel's own PromQL queries run against a real Prometheus
// (query_range over the last --range seconds), drawn where the panel's
// gridPos puts it (24 columns, 30 px per row unit, as Grafana lays them
// out) with its title, unit, legend format and type (time series or stat),
// as SVG in one HTML page that headless Chromium screenshots.
//
//   node render.js --prometheus http://127.0.0.1:9090 --range 300 --out dashboard.png
//     [--dashboard FILE] [--rate-interval 15s] [--html page.html] [--chromium PATH] [--width 1600]
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { DASHBOARD, readDashboard, panels } = require('./queries');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const PROM = opt('prometheus', 'http://127.0.0.1:9090');
const RANGE = Number(opt('range', 300));
const OUT = path.resolve(opt('out', 'dashboard.png'));
const WIDTH = Number(opt('width', 1600));
const ROW = 30; // px per gridPos unit of height, Grafana's
const GAP = 8;
// Grafana's classic palette, in its order
const COLORS = ['#7EB26D', '#EAB839', '#6ED0E0', '#EF843C', '#E24D42', '#1F78C1', '#BA43A9', '#705DA0', '#508642', '#CCA300'];

async function queryRange(expr, start, end, step) {
  const u = `${PROM}/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${start}&end=${end}&step=${step}`;
  const r = await (await fetch(u)).json();
  if (r.status !== 'success') throw new Error(`Prometheus refused ${expr}: ${r.error}`);
  return r.data.result;
}

// Grafana's legend format: {{label}} replaced by the series' label value.
const legend = (fmt, metric) => (fmt ? fmt.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k) => metric[k] ?? '') : JSON.stringify(metric));

// A value in the panel's unit, as Grafana prints it (short: SI suffixes;
// s: ms/µs below a second; ops: per second).
function fmt(v, unit) {
  if (!Number.isFinite(v)) return String(v);
  const short = x => {
    const a = Math.abs(x);
    if (a >= 1e9) return `${+(x / 1e9).toFixed(2)} Bil`;
    if (a >= 1e6) return `${+(x / 1e6).toFixed(2)} Mil`;
    if (a >= 1e3) return `${+(x / 1e3).toFixed(2)} K`;
    if (a === 0) return '0';
    return a >= 10 ? `${+x.toFixed(1)}` : `${+x.toPrecision(3)}`;
  };
  if (unit === 's') {
    const a = Math.abs(v);
    if (a === 0) return '0 s';
    if (a < 1e-3) return `${+(v * 1e6).toPrecision(3)} µs`;
    if (a < 1) return `${+(v * 1e3).toPrecision(3)} ms`;
    return `${+v.toPrecision(3)} s`;
  }
  if (unit === 'ops') return `${short(v)} ops/s`;
  return short(v);
}

function niceTicks(min, max, n = 5) {
  if (min === max) max = min + 1;
  const raw = (max - min) / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(s => s >= raw);
  const ticks = [];
  for (let t = Math.floor(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
  return ticks;
}

const esc = s => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function timeseries(p, series, w, h, start, end) {
  // the legend below the plot, in as many columns as keep it to half the panel
  const maxRows = Math.max(1, Math.floor(h / 2 / 14));
  const cols = Math.max(3, Math.ceil(series.length / maxRows)), rows = Math.ceil(series.length / cols);
  const lh = cols > 3 ? 14 : 16;
  const padL = 70, padR = 12, padT = 8, legendH = lh * rows + 6, padB = 22 + legendH;
  const pw = w - padL - padR, ph = h - padT - padB;
  const vals = series.flatMap(s => s.points.map(q => q[1]));
  let lo = Math.min(0, ...vals), hi = Math.max(...vals, 0);
  if (!vals.length || hi === lo) hi = lo + 1;
  const ticks = niceTicks(lo, hi, Math.max(2, Math.min(5, Math.floor(ph / 25)))); // labels ~25 px apart
  lo = Math.min(lo, ticks[0]);
  hi = Math.max(hi, ticks[ticks.length - 1]);
  const X = t => padL + ((t - start) / (end - start)) * pw, Y = v => padT + ph - ((v - lo) / (hi - lo)) * ph;
  let svg = '';
  for (const t of ticks) {
    svg += `<line x1="${padL}" x2="${padL + pw}" y1="${Y(t)}" y2="${Y(t)}" stroke="#2c3235"/>`;
    svg += `<text x="${padL - 6}" y="${Y(t) + 4}" text-anchor="end" class="ax">${esc(fmt(t, p.unit))}</text>`;
  }
  const span = end - start, tstep = [10, 15, 30, 60, 120, 300, 600, 900, 1800].find(s => span / s <= 8) || 3600;
  for (let t = Math.ceil(start / tstep) * tstep; t <= end; t += tstep) {
    const d = new Date(t * 1000);
    svg += `<line x1="${X(t)}" x2="${X(t)}" y1="${padT}" y2="${padT + ph}" stroke="#2c3235"/>`;
    svg += `<text x="${X(t)}" y="${padT + ph + 15}" text-anchor="middle" class="ax">${d.toISOString().slice(11, 19)}</text>`;
  }
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    // a gap in the data (no sample at a step) breaks the line, as Grafana does
    let d = '', prev = null;
    for (const [t, v] of s.points) {
      d += `${prev !== null && t - prev > s.step * 1.5 ? 'M' : d ? 'L' : 'M'}${X(t).toFixed(1)},${Y(v).toFixed(1)}`;
      prev = t;
    }
    svg += `<path d="${d}" fill="none" stroke="${c}" stroke-width="1.5"/>`;
    const lx = padL + (i % cols) * (pw / cols), ly = padT + ph + 36 + lh * Math.floor(i / cols);
    svg += `<rect x="${lx}" y="${ly - 9}" width="14" height="4" fill="${c}"/>`;
    svg += `<text x="${lx + 20}" y="${ly - 3}" class="${cols > 3 ? 'lg sm' : 'lg'}">${esc(s.name)}</text>`;
  });
  if (!series.length) svg += `<text x="${w / 2}" y="${h / 2}" text-anchor="middle" class="ax">No data</text>`;
  return `<svg width="${w}" height="${h}">${svg}</svg>`;
}

function stat(p, series, w, h) {
  const cw = w / Math.max(series.length, 1);
  return `<div class="stat" style="height:${h}px">${series.map((s, i) => {
    const last = s.points.length ? s.points[s.points.length - 1][1] : NaN;
    return `<div style="width:${cw - 8}px;background:${COLORS[i % COLORS.length]}"><div class="big">` +
      `${esc(fmt(last, p.unit))}</div><div>${esc(s.name)}</div></div>`;
  }).join('')}</div>`;
}

async function main() {
  const dash = readDashboard(opt('dashboard', DASHBOARD));
  const end = Math.floor(Date.now() / 1000), start = end - RANGE, step = Math.max(1, Math.round(RANGE / 300));
  const colW = WIDTH / 24;
  let html = '', bottom = 0;
  for (const p of panels(dash, { rateInterval: opt('rate-interval', '15s') })) {
    const series = [];
    for (const t of p.targets)
      for (const r of await queryRange(t.expr, start, end, step))
        series.push({ name: legend(t.legendFormat, r.metric), step, points: r.values.map(([ts, v]) => [ts, Number(v)]) });
    series.sort((a, b) => a.name.localeCompare(b.name));
    const g = p.gridPos, x = g.x * colW, y = g.y * ROW, w = g.w * colW - GAP, h = g.h * ROW - GAP;
    bottom = Math.max(bottom, y + h + GAP);
    const bodyH = h - 30;
    const body = p.type === 'stat' ? stat(p, series, w - 16, bodyH - 8) : timeseries(p, series, w - 16, bodyH - 8, start, end);
    html += `<div class="panel" style="left:${x}px;top:${y}px;width:${w}px;height:${h}px">` +
      `<div class="title">${esc(p.title)}</div>${body}</div>`;
    process.stderr.write(`${p.title}: ${series.length} series\n`);
  }
  const title = `${esc(dash.title)} — last ${Math.round(RANGE / 60)} min, rendered from the dashboard's own queries ` +
    `(tools/dashboard/render.js, not Grafana), ${new Date(end * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  const page = `<!doctype html><meta charset="utf-8"><style>
body{margin:0;background:#111217;font-family:Inter,Helvetica,Arial,sans-serif;color:#ccccdc}
.top{height:40px;line-height:40px;padding:0 12px;font-size:15px;border-bottom:1px solid #22252b}
.grid{position:relative;margin:8px}
.panel{position:absolute;background:#181b1f;border:1px solid #24272e;border-radius:2px;box-sizing:border-box;padding:0 8px}
.title{height:30px;line-height:30px;font-size:13px;font-weight:500}
.ax{fill:#8e8e99;font-size:11px}.lg{fill:#ccccdc;font-size:12px}.sm{font-size:10.5px}
.stat{display:flex;gap:8px}.stat>div{border-radius:2px;color:#fff;padding:8px;box-sizing:border-box;font-size:13px}
.big{font-size:44px;font-weight:500}
</style><div class="top">${title}</div><div class="grid" style="height:${bottom}px">${html}</div>`;
  const htmlFile = opt('html', path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bullc-dash-')), 'dashboard.html'));
  fs.writeFileSync(htmlFile, page);
  const height = bottom + 40 + 16;
  const chromium = opt('chromium', 'chromium');
  const r = spawnSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
    `--window-size=${WIDTH + 16},${height}`, `--screenshot=${OUT}`, `file://${htmlFile}`], { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0 || !fs.existsSync(OUT)) throw new Error(`${chromium} failed (${r.status}): ${r.stderr}`);
  process.stderr.write(`written: ${OUT} (${WIDTH + 16}x${height})\n`);
}

main().catch(e => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});

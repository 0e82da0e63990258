// SPDX-License-Identifier: MIT
// The Grafana dashboard's queries as Prometheus runs them: Grafana's own
// variables replaced ($queue and $job by "All", $__rate_interval by a
// window). Shared by render.js, which draws them, and compat_observability,
// which requires series from every one, so the test checks what the picture
// shows.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const DASHBOARD = path.join(__dirname, '../../docs/grafana/bullc-dashboard.json');

function readDashboard(file = DASHBOARD) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

// PromQL with Grafana's variables replaced: "All" is ".*" (the dashboard's
// allValue), the rate window is `rateInterval`.
function expand(expr, rateInterval) {
  return expr.replace(/\$__rate_interval/g, rateInterval).replace(/\$queue|\$job/g, '.*');
}

// Every panel that shows data, with its targets' expanded queries.
function panels(dash, { rateInterval = '1m' } = {}) {
  return dash.panels.filter(p => p.type !== 'row').map(p => ({
    title: p.title,
    type: p.type,
    gridPos: p.gridPos,
    unit: (p.fieldConfig && p.fieldConfig.defaults && p.fieldConfig.defaults.unit) || 'short',
    targets: (p.targets || []).map(t => ({ expr: expand(t.expr, rateInterval), legendFormat: t.legendFormat || '' })),
  }));
}

module.exports = { DASHBOARD, readDashboard, expand, panels };

// SPDX-License-Identifier: MIT
// Generated cron cases for the differential test (test/cron-diff.test.js):
// expressions from cron-parser's grammar (lists, ranges, steps, names, L, nL,
// n#k, H forms, @ aliases) with mutations that make many of them invalid,
// zones with half-hour and 45-minute offsets and southern-hemisphere DST, and
// start instants spread over 1990-2040 and clustered around DST changes.
'use strict';

// mulberry32: a small seeded generator, so a seed names a whole run.
function rng(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (a, b) => a + Math.floor(next() * (b - a + 1));
  const pick = arr => arr[int(0, arr.length - 1)];
  return { next, int, pick, chance: p => next() < p };
}

const ZONES = [
  'America/New_York', 'Europe/London', 'Europe/Berlin', 'Europe/Dublin', 'Australia/Sydney',
  'Australia/Adelaide', 'Australia/Lord_Howe', 'Asia/Kolkata', 'Asia/Kathmandu', 'Pacific/Chatham',
  'America/St_Johns', 'America/Santiago', 'America/Sao_Paulo', 'Asia/Tehran', 'Pacific/Auckland',
  'America/Havana', 'UTC', 'Asia/Tokyo', 'America/Los_Angeles', 'Africa/Cairo',
];
// Other spellings Node accepts (case, links, ICU's own aliases, fixed offsets), and some it refuses.
const ZONE_NAMES = [
  'america/new_york', 'EUROPE/PARIS', 'US/Eastern', 'Asia/Calcutta', 'PST', 'IST', 'Etc/GMT+5', 'etc/gmt-14',
  'UTC+5:30', 'utc-3', 'GMT', 'Zulu', 'SystemV/EST5', 'Factory', 'Mars/Olympus', 'GMT+5', '', 'posix/UTC',
  'America/New_York ', 'localtime',
];
const MIN_MS = Date.UTC(1990, 0, 1);
const MAX_MS = Date.UTC(2040, 0, 1);

const F = [
  { min: 0, max: 59 }, { min: 0, max: 59 }, { min: 0, max: 23 },
  { min: 1, max: 31, dom: true }, { min: 1, max: 12, month: true }, { min: 0, max: 7, dow: true },
];
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

function value(r, f) {
  if (f.month && r.chance(0.15)) return r.pick(MONTHS)[r.chance(0.5) ? 'toUpperCase' : 'toString']();
  if (f.dow && r.chance(0.15)) return r.pick(DAYS);
  return String(r.int(f.min, f.max));
}

function atom(r, f) {
  const x = r.next();
  if (x < 0.3) return value(r, f);
  if (x < 0.45) {
    let a = r.int(f.min, f.max), b = r.int(f.min, f.max);
    if (a > b && r.chance(0.9)) [a, b] = [b, a];
    return `${a}-${b}`;
  }
  if (x < 0.6) return `*/${r.int(1, Math.min(f.max, 30))}`;
  if (x < 0.68) return `${value(r, f)}/${r.int(1, 20)}`;
  if (x < 0.75) {
    const a = r.int(f.min, f.max);
    return `${a}-${r.int(a, f.max)}/${r.int(1, 10)}`;
  }
  if (x < 0.8) {
    const a = r.int(f.min, f.max);
    return r.pick(['H', `H/${r.int(1, 30)}`, `H(${a}-${r.int(a, f.max)})`, `H(${a}-${r.int(a, f.max)})/${r.int(1, 10)}`]);
  }
  if (f.dom && x < 0.9) return r.pick(['L', `${r.int(1, 9)}L`]);
  if (f.dow && x < 0.9) return r.pick([`${r.int(0, 7)}L`, `${r.int(0, 7)}#${r.int(1, 5)}`]);
  return value(r, f);
}

function field(r, i) {
  const f = F[i];
  const x = r.next();
  if (x < (i >= 3 ? 0.45 : 0.25)) return r.chance(0.9) ? '*' : '?';
  if (x < 0.75) return atom(r, f);
  const n = r.int(2, 4);
  if (r.chance(0.75)) {
    // distinct values (cron-parser refuses a value listed twice)
    const vals = new Set();
    while (vals.size < n) vals.add(r.int(f.min, f.max));
    return [...vals].map(v => (f.dow && v === 7 && vals.has(0) ? 6 : v)).join(',');
  }
  return Array.from({ length: n }, () => atom(r, f)).join(',');
}

// Mutations that push the expression into cron-parser's error paths.
function mutate(r, s) {
  const x = r.next();
  if (x < 0.12) return s.replace(/\d+/, String(r.int(60, 99)));
  if (x < 0.22) return s.replace(/,/, ',,');
  if (x < 0.3) return `${s} ${r.int(0, 5)}`;
  if (x < 0.38) return s.replace(/\*/, r.pick(['**', '*/0', '*/', 'x', '1-', '-1', '5/0', '/5']));
  if (x < 0.46) return s.replace(/ /, r.pick(['  ', '\t', ' L ', ' # ']));
  if (x < 0.54) return `${s.split(' ').slice(0, 5).join(' ')} ${r.pick(['1#6', '1#0', '1-2#3', '1#2#3', 'L', '8', '0,7', '7L', '1#', 'sun-sat'])}`;
  if (x < 0.62) return s.replace(/\d+/, 'H(5-3)');
  if (x < 0.7) return r.pick(['0 0 31 2 *', '0 0 30 2 *', '0 0 31 4 *', '0 0 31 4 mon', '0 0 29 2 *', '0 0 L 2 *', '', '   ', '@daily', '@weekly', '@yearly', '@hourly', '@weekdays', '@weekends', '@DAILY', '@reboot', '0 0 31 4,6 *', '* * * * * * *']);
  if (x < 0.78) return s.replace(/\d+/, m => `${m}-${r.int(0, 70)}`);
  if (x < 0.86) return s.replace(/\d/, r.pick(['1,1', '5-5', '07', '1-5-7', '60', '24', '0']));
  return s.toUpperCase();
}

function expression(r) {
  const six = r.chance(0.5);
  const parts = [];
  for (let i = six ? 0 : 1; i < 6; i++) parts.push(field(r, i));
  let s = parts.join(' ');
  if (r.chance(0.25)) s = mutate(r, s);
  return s;
}

// Instants where the zone's offset changes, found by sampling daily and bisecting to the second.
function transitions(offsetAt, from = MIN_MS, to = MAX_MS) {
  const out = [];
  let prev = offsetAt(from);
  for (let t = from + 86400000; t <= to; t += 86400000) {
    const o = offsetAt(t);
    if (o !== prev) {
      let lo = t - 86400000, hi = t; // offset(lo) = prev, offset(hi) = o
      while (hi - lo > 1000) {
        const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
        if (offsetAt(mid) === prev) lo = mid; else hi = mid;
      }
      out.push(hi);
      prev = o;
    }
  }
  return out;
}

function startInstant(r, changes) {
  const x = r.next();
  let t;
  if (changes.length && x < 0.5) {
    // within three days of a DST change, often on the hour or minute
    t = r.pick(changes) + r.int(-3 * 86400, 3 * 86400) * 1000;
    if (r.chance(0.3)) t -= t % 3600000;
    else if (r.chance(0.3)) t -= t % 60000;
  } else {
    t = MIN_MS + Math.floor(r.next() * (MAX_MS - MIN_MS));
    if (r.chance(0.4)) t -= t % 60000;
  }
  if (r.chance(0.3)) t += r.int(0, 999);
  return t;
}

module.exports = { rng, expression, transitions, startInstant, ZONES, ZONE_NAMES, MIN_MS, MAX_MS };

// SPDX-License-Identifier: MIT
// Flows added by bullc (`bullc flow add`, the library's FlowProducer and the
// `parent` job option) against Node BullMQ of the major BULLC_COMPAT_BULLMQ
// names (6.7.0, or 5.81.5 as compat5_flow with bullc told 5): Node workers
// process them children first and their parents see the children's results;
// the keys and jobs bullc writes are the ones Node's FlowProducer writes;
// Node's trees run on bullc-worker; a tree added beside Node's pause waits
// in that major's paused layout and loses nothing when Node resumes; a bad
// tree writes nothing.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');
const { finished, killAll, script, startReady, tmpDir } = require('../lib/worker-proc');

const { FlowProducer } = h.nodeBullmq(); // the Node peer's major (BULLC_COMPAT_BULLMQ)

test.after(killAll);

const flowAdd = (prefix, tree, args = []) =>
  h.bullc(['flow', 'add', '-', ...args], { prefix, input: JSON.stringify(tree) });

async function keysUnder(prefix) {
  const r = h.redis();
  try {
    return (await r.keys(`${prefix}:*`)).sort();
  } finally {
    await r.quit();
  }
}

// node: "[flows] should process children before the parent"
test('a tree added by bullc runs on Node workers: grandchildren, then children, then the parent', async () => {
  const prefix = h.uniquePrefix('flow');
  const order = [];
  const workers = [];
  let parentValues;
  const done = new Promise(resolve => {
    workers.push(
      h.newWorker('parents', prefix, async job => {
        order.push(job.name);
        parentValues = await job.getChildrenValues();
        resolve();
        return 'root done';
      }),
      h.newWorker('children', prefix, async job => {
        order.push(job.name);
        const values = await job.getChildrenValues();
        return { child: job.name, grandchildren: Object.values(values) };
      }),
      h.newWorker('grandchildren', prefix, async job => {
        order.push(job.name);
        return job.data.n * 10;
      }),
    );
  });
  try {
    const tree = {
      name: 'root',
      queueName: 'parents',
      data: { r: 1 },
      children: [
        { name: 'c1', queueName: 'children', children: [{ name: 'g1', queueName: 'grandchildren', data: { n: 1 } }] },
        { name: 'c2', queueName: 'children', children: [{ name: 'g2', queueName: 'grandchildren', data: { n: 2 } }] },
      ],
    };
    const r = flowAdd(prefix, tree, ['--json']);
    assert.equal(r.status, 0, r.stderr);
    const created = JSON.parse(r.stdout);
    assert.equal(created.job.name, 'root');
    assert.equal(created.job.queueName, 'parents');
    assert.match(created.job.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      created.children.map(c => [c.job.name, c.children.map(g => g.job.name)]),
      [
        ['c1', ['g1']],
        ['c2', ['g2']],
      ],
    );
    await h.withTimeout(done, 20000, 'the root to run');
    assert.deepEqual(order.slice(0, 2).sort(), ['g1', 'g2']);
    assert.deepEqual(order.slice(2, 4).sort(), ['c1', 'c2']);
    assert.equal(order[4], 'root');
    const c1 = created.children[0].job.id;
    const c2 = created.children[1].job.id;
    assert.deepEqual(parentValues, {
      [`${prefix}:children:${c1}`]: { child: 'c1', grandchildren: [10] },
      [`${prefix}:children:${c2}`]: { child: 'c2', grandchildren: [20] },
    });
  } finally {
    await h.closeAll(workers);
  }
});

// The trees Node's FlowProducer wrote under nodePrefix and bullc under
// bullcPrefix (queues pq and cq, root 'root-id'): the same job hashes, keys,
// events, dependencies and lists
async function sameAsNode(r, nodePrefix, bullcPrefix, jobs) {
  const norm = (p, v) => JSON.parse(JSON.stringify(v).split(p).join('P'));
  for (const [q, id] of jobs) {
    const n = norm(nodePrefix, await h.jobHash(r, nodePrefix, q, id));
    const c = norm(bullcPrefix, await h.jobHash(r, bullcPrefix, q, id));
    assert.deepEqual(c, n, `${q}:${id}`);
    if (n.parent) assert.deepEqual(JSON.parse(c.parent), JSON.parse(n.parent));
  }
  const deps = async p => (await r.smembers(`${p}:pq:root-id:dependencies`)).map(k => k.replace(p, 'P')).sort();
  // the same keys, each of the same type
  const keys = async p => Promise.all((await keysUnder(p)).map(async k => [k.replace(p, 'P'), await r.type(k)]));
  assert.deepEqual(await keys(bullcPrefix), await keys(nodePrefix));
  // the same events, in the same order (each stream entry's fields)
  const events = async (p, q) => (await r.xrange(`${p}:${q}:events`, '-', '+')).map(([, f]) => norm(p, f));
  for (const q of ['pq', 'cq']) assert.deepEqual(await events(bullcPrefix, q), await events(nodePrefix, q), `${q} events`);
  assert.deepEqual(await deps(bullcPrefix), await deps(nodePrefix));
  for (const s of ['waiting-children', 'delayed', 'prioritized', 'wait']) {
    for (const q of ['pq', 'cq']) {
      const key = p => `${p}:${q}:${s}`;
      const type = await r.type(key(nodePrefix));
      const read = p =>
        type === 'zset' ? r.zrange(key(p), 0, -1, 'WITHSCORES') : type === 'list' ? r.lrange(key(p), 0, -1) : [];
      assert.deepEqual(await read(bullcPrefix), await read(nodePrefix), key('P'));
    }
  }
}

// Node's FlowProducer and bullc, the same tree with the same ids: the same hashes
// node: "[flows] should allow passing custom jobId in options"
test("bullc writes the jobs Node's FlowProducer writes", async () => {
  const nodePrefix = h.uniquePrefix('flown');
  const bullcPrefix = h.uniquePrefix('flowc');
  const tree = {
    name: 'root',
    queueName: 'pq',
    data: { a: [1, 2] },
    opts: { jobId: 'root-id', attempts: 3, timestamp: 1700000000000 },
    children: [
      { name: 'k1', queueName: 'cq', opts: { jobId: 'k1', failParentOnFailure: true, timestamp: 1700000000000 } },
      { name: 'k2', queueName: 'cq', opts: { jobId: 'k2', ignoreDependencyOnFailure: true, timestamp: 1700000000000 } },
      { name: 'k3', queueName: 'pq', opts: { jobId: 'k3', continueParentOnFailure: true, delay: 60000, timestamp: 1700000000000 } },
      { name: 'k4', queueName: 'cq', opts: { jobId: 'k4', removeDependencyOnFailure: true, priority: 4, timestamp: 1700000000000 } },
    ],
  };
  const fp = new FlowProducer({ connection: h.connection(), prefix: nodePrefix });
  const r = h.redis();
  try {
    await fp.add(tree);
    const out = flowAdd(bullcPrefix, tree);
    assert.equal(out.status, 0, out.stderr);
    assert.equal(out.stdout, 'root-id\n');
    await sameAsNode(r, nodePrefix, bullcPrefix, [
      ['pq', 'root-id'],
      ['cq', 'k1'],
      ['cq', 'k2'],
      ['pq', 'k3'],
      ['cq', 'k4'],
    ]);
  } finally {
    await h.closeAll(fp, r);
  }
});

// In auto, a tree's nodes are checked and packed by the rules of the major
// its queues' meta.version settles: on 5.x queues `debounce` is 5.x's name of
// deduplication (6.x refuses it), packed as `de`, as Node 5's FlowProducer
// does; on 6.x queues Node 6's refusal, nothing written.
// compat_flow runs both majors here (compat5_flow's environment tells bullc 5)
for (const major of h.bullmqMajor() === 6 ? [5, 6] : [])
  test(`a tree added in auto to BullMQ ${major} queues is what Node ${h.bullmqVersionString(major)}'s FlowProducer writes`, async () => {
    const nodePrefix = h.uniquePrefix(`flowan${major}`);
    const bullcPrefix = h.uniquePrefix(`flowac${major}`);
    const { FlowProducer: FP } = h.nodeBullmq(major);
    const queues = [];
    for (const prefix of [nodePrefix, bullcPrefix])
      for (const name of ['pq', 'cq']) queues.push(h.newQueue(name, prefix, { bullmqMajor: major }));
    const ts = 1700000000000;
    const tree = {
      name: 'root',
      queueName: 'pq',
      data: { d: 1 },
      opts: { jobId: 'root-id', timestamp: ts, debounce: { id: 'deb-1', ttl: 60000 } },
      children: [
        { name: 'k1', queueName: 'cq', opts: { jobId: 'k1', timestamp: ts } },
        { name: 'k2', queueName: 'pq', opts: { jobId: 'k2', timestamp: ts, delay: 5000 }, children: [{ name: 'g', queueName: 'cq', opts: { jobId: 'g', timestamp: ts } }] },
      ],
    };
    const fp = new FP({ connection: h.connection(), prefix: nodePrefix });
    const r = h.redis();
    try {
      // a Node Queue writes its meta.version with its first add: one each side
      await Promise.all(queues.map(q => q.add('seed', null, { jobId: 'seed' })));
      if (major === 6) {
        await assert.rejects(fp.add(tree), /Debounce option has been removed/);
        const before = await keysUnder(bullcPrefix);
        const out = flowAdd(bullcPrefix, tree, ['--bullmq-version', 'auto']);
        assert.equal(out.status, 2, out.stderr);
        assert.match(out.stderr, /flow node root .*Debounce option has been removed/);
        assert.deepEqual(await keysUnder(bullcPrefix), before, 'nothing written');
        return;
      }
      await fp.add(tree);
      const out = flowAdd(bullcPrefix, tree, ['--bullmq-version', 'auto']);
      assert.equal(out.status, 0, out.stderr);
      await sameAsNode(r, nodePrefix, bullcPrefix, [['pq', 'root-id'], ['cq', 'k1'], ['pq', 'k2'], ['cq', 'g']]);
      const root = await r.hgetall(`${bullcPrefix}:pq:root-id`);
      assert.equal(JSON.parse(root.opts).de.id, 'deb-1', 'debounce packed as de');
      assert.equal(root.deid, 'deb-1');
      assert.equal(await r.get(`${bullcPrefix}:pq:de:deb-1`), 'root-id');
      // generated ids survive the second preparation: the child's parent is its parent
      const gen = { name: 'r2', queueName: 'pq', opts: { debounce: { id: 'deb-2' } }, children: [{ name: 'c2', queueName: 'cq' }] };
      const made = JSON.parse(h.bullcOk(['flow', 'add', '-', '--bullmq-version', 'auto', '--json'], { prefix: bullcPrefix, input: JSON.stringify(gen) }));
      const child = await r.hgetall(`${bullcPrefix}:cq:${made.children[0].job.id}`);
      assert.equal(child.parentKey, `${bullcPrefix}:pq:${made.job.id}`);
      assert.equal(await r.get(`${bullcPrefix}:pq:de:deb-2`), made.job.id);
      assert.equal(await r.zscore(`${bullcPrefix}:pq:waiting-children`, made.job.id) !== null, true);
    } finally {
      await h.closeAll(fp, r, ...queues);
    }
  });

// node: "[.addBulk] should process jobs"
test('an array is added as addBulk: every root printed, every tree processed', async () => {
  const prefix = h.uniquePrefix('flowb');
  const w = h.newWorker('bq', prefix, async job => job.name);
  try {
    const flows = [1, 2, 3].map(i => ({
      name: `root${i}`,
      queueName: 'bq',
      opts: { jobId: `r${i}` },
      children: [{ name: `kid${i}`, queueName: 'bq' }],
    }));
    const completed = h.collect(w, 'completed', 6);
    const r = flowAdd(prefix, flows);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'r1\nr2\nr3\n');
    const seen = (await h.withTimeout(completed, 20000, 'six jobs')).map(([job]) => job.name);
    for (let i = 1; i <= 3; i++) assert.ok(seen.indexOf(`kid${i}`) < seen.indexOf(`root${i}`), seen.join());
  } finally {
    await h.closeAll(w);
  }
});

test('an invalid node anywhere in the tree exits 2 naming it, and nothing is written', async () => {
  const prefix = h.uniquePrefix('flowx');
  const cases = [
    [{ name: 'x', queueName: 'q', children: [{ name: 'a', queueName: 'q' }, { name: 'b' }] }, /children\[1\].*'b'.*queueName/],
    [
      { name: 'x', queueName: 'q', children: [{ name: 'a', queueName: 'q', opts: { priority: 1.5 } }] },
      /children\[0\] \('a' in queue 'q'\): Priority should not be float/,
    ],
    [
      {
        name: 'x',
        queueName: 'q',
        children: [{ name: 'a', queueName: 'q', opts: { deduplication: { id: 'd' } }, children: [{ name: 'z', queueName: 'q' }] }],
      },
      /Deduplication options cannot be used on flow nodes with children/,
    ],
    [
      { name: 'x', queueName: 'q', children: [{ name: 'a', queueName: 'q', opts: { deduplication: { id: 'd' } } }] },
      /Deduplication and parent options cannot be used together/,
    ],
  ];
  for (const [tree, message] of cases) {
    const r = flowAdd(prefix, tree);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, message);
  }
  const bad = h.bullc(['flow', 'add', '-'], { prefix, input: '{"name":' });
  assert.equal(bad.status, 2);
  assert.deepEqual(await keysUnder(prefix), []);
});

// node: "[flows] throws an error instead of silently dropping the job"
test('a root whose parent is missing exits 4 with Node\'s message, and nothing is written', async () => {
  const prefix = h.uniquePrefix('flowm');
  const r = flowAdd(prefix, {
    name: 'orphan',
    queueName: 'q',
    opts: { parent: { id: 'nope', queue: `${prefix}:parents` } },
    children: [{ name: 'kid', queueName: 'q' }],
  });
  assert.equal(r.status, 4, r.stderr);
  assert.match(r.stderr, new RegExp(`Missing key for parent job ${prefix}:parents:nope. addJob`));
  assert.deepEqual(
    (await keysUnder(prefix)).filter(k => !/:(events|meta|id)$/.test(k)),
    [],
  );
});

// node: "[flows] should allow parent opts on the root job"
test("a root with opts.parent joins an existing parent's dependencies; a single add's parent option too", async () => {
  const prefix = h.uniquePrefix('flowp');
  const fp = new FlowProducer({ connection: h.connection(), prefix });
  const q = h.newQueue('up', prefix);
  const down = h.newQueue('down', prefix);
  try {
    const top = await fp.add({ name: 'top', queueName: 'up', opts: { jobId: 'top' }, children: [{ name: 'first', queueName: 'up' }] });
    const parent = { id: 'top', queue: `${prefix}:up` };
    const r = flowAdd(prefix, { name: 'sub', queueName: 'down', opts: { parent }, children: [{ name: 'leaf', queueName: 'down' }] });
    assert.equal(r.status, 0, r.stderr);
    const subId = r.stdout.trim();
    const single = h.bullcAdd(prefix, 'down', 'single', { s: 1 }, { parent, failParentOnFailure: true });
    const job = await q.getJob('top');
    assert.equal(await job.getState(), 'waiting-children');
    const deps = await job.getDependencies();
    assert.deepEqual(
      deps.unprocessed.sort(),
      [`${prefix}:up:${top.children[0].job.id}`, `${prefix}:down:${subId}`, `${prefix}:down:${single}`].sort(),
    );
    const child = await h.Job.fromId(down, single);
    assert.equal(child.parentKey, `${prefix}:up:top`);
    assert.deepEqual(child.parent, { id: 'top', queueKey: `${prefix}:up`, fpof: true });
  } finally {
    await h.closeAll(fp, q, down);
  }
});

// A tree made by Node, partly processed: processed (with results), unprocessed
// and ignored children; bullc's flow get and deps against Node's answers.
async function nodeTree(prefix) {
  const fp = new FlowProducer({ connection: h.connection(), prefix });
  const q = h.newQueue('top', prefix);
  const kids = h.newQueue('kids', prefix);
  const closers = [fp, q, kids];
  try {
    await fp.add({
      name: 'top',
      queueName: 'top',
      opts: { jobId: 'top' },
      children: [
        { name: 'done1', queueName: 'kids', data: { v: 1 }, opts: { jobId: 'done1' } },
        { name: 'done2', queueName: 'kids', data: { v: 2 }, opts: { jobId: 'done2' } },
        { name: 'bad', queueName: 'kids', opts: { jobId: 'bad', ignoreDependencyOnFailure: true } },
        {
          name: 'mid',
          queueName: 'top',
          opts: { jobId: 'mid', delay: 600000 },
          children: [{ name: 'leaf', queueName: 'kids', opts: { jobId: 'leaf', delay: 600000 } }],
        },
      ],
    });
    // process done1, done2 and bad (the delayed ones stay)
    const w = h.newWorker('kids', prefix, async job => {
      if (job.name === 'bad') throw new Error('ignored failure');
      return { twice: job.data.v * 2 };
    });
    closers.unshift(w);
    await h.eventually(async () => (await q.getJob('top')).getDependenciesCount().then(c => c.processed === 2 && c.ignored === 1), 15000, 'children done');
    return { q, closers };
  } catch (e) {
    await h.closeAll(closers);
    throw e;
  }
}

// node: "[flows] should get a flow tree"
test("bullc flow get and deps agree with Node's getFlow and getDependencies", async () => {
  const prefix = h.uniquePrefix('flowg');
  const { q, closers } = await nodeTree(prefix);
  const fp = new FlowProducer({ connection: h.connection(), prefix });
  closers.push(fp);
  try {
    const top = await q.getJob('top');
    const deps = JSON.parse(h.bullcOk(['--json', 'deps', 'top', 'top'], { prefix }));
    assert.deepEqual(deps, JSON.parse(JSON.stringify(await top.getDependencies())));
    assert.deepEqual(deps.processed, {
      [`${prefix}:kids:done1`]: { twice: 2 },
      [`${prefix}:kids:done2`]: { twice: 4 },
    });
    assert.deepEqual(Object.keys(deps.ignored), [`${prefix}:kids:bad`]);

    // the shape of a tree: ids in Node's order, each job as `bullc --json get` prints it
    const shape = n => (n ? { id: n.job.id, name: n.job.name, ...(n.children ? { children: n.children.map(shape) } : {}) } : null);
    for (const [args, opts] of [
      [[], {}],
      [['--depth', '1'], { depth: 1 }],
      [['--max-children', '1'], { maxChildren: 1 }],
    ]) {
      const ours = JSON.parse(h.bullcOk(['--json', 'flow', 'get', 'top', 'top', ...args], { prefix }));
      const theirs = await fp.getFlow({ id: 'top', queueName: 'top', ...opts });
      assert.deepEqual(shape(ours), shape(theirs), args.join(' '));
      const walk = async (n, queue) => {
        const got = JSON.parse(h.bullcOk(['--json', 'get', queue, n.job.id], { prefix }));
        assert.deepEqual(n.job, got);
        for (const c of n.children || []) await walk(c, c.job.name === 'mid' ? 'top' : 'kids');
      };
      await walk(ours, 'top');
    }
    const text = h.bullcOk(['flow', 'get', 'top', 'top', '--depth', '2'], { prefix });
    assert.match(text, /^top top\n( {2}\S+ \S+\n){4}$/);
  } finally {
    await h.closeAll(closers);
  }
});

test('flow get and deps of a missing job exit 4', () => {
  const prefix = h.uniquePrefix('flowz');
  assert.equal(h.bullc(['flow', 'get', 'q', 'nope'], { prefix }).status, 4);
  assert.equal(h.bullc(['deps', 'q', 'nope'], { prefix }).status, 4);
});

// node: "[.remove] should remove all children when removing a parent"
// node: "[when removeChildren option is provided as false] does not remove any children when removing a parent"
test('removing a bullc-made parent removes its children unless kept', async () => {
  const prefix = h.uniquePrefix('flowr');
  const q = h.newQueue('kids', prefix);
  try {
    for (const keep of [false, true]) {
      const tree = {
        name: 'root',
        queueName: 'top',
        opts: { jobId: `root-${keep}` },
        children: [
          { name: 'a', queueName: 'kids', opts: { jobId: `a-${keep}` } },
          { name: 'b', queueName: 'kids', opts: { jobId: `b-${keep}` }, children: [{ name: 'g', queueName: 'kids', opts: { jobId: `g-${keep}` } }] },
        ],
      };
      const r = flowAdd(prefix, tree);
      assert.equal(r.status, 0, r.stderr);
      h.bullcOk(['--yes', 'remove', 'top', `root-${keep}`, ...(keep ? ['--keep-children'] : [])], { prefix });
      for (const id of ['a', 'b', 'g']) {
        const job = await q.getJob(`${id}-${keep}`);
        assert.equal(Boolean(job), keep, `${id} with keep=${keep}`);
      }
    }
  } finally {
    await h.closeAll(q);
  }
});

// The same tree twice under one prefix, made by Node's FlowProducer of
// `major`: Node changes one (job.removeChildDependency(),
// job.removeUnprocessedChildren()), bullc the other (remove-child-dependency,
// remove-unprocessed-children), and both end the same, step by step. The
// queues' meta.version is the major's (a Queue of it wrote it), so bullc
// speaks that major's scripts.
// compat_flow runs both majors here; compat5_flow (bullc told 5 by the
// environment) would contradict the 6.x queues, so it leaves this to compat_flow
for (const major of h.bullmqMajor() === 6 ? [6, 5] : [])
  test(`remove-child-dependency and remove-unprocessed-children do what Node ${h.bullmqVersionString(major)}'s Job methods do`, async () => {
    const prefix = h.uniquePrefix(`flowd${major}`);
    const { FlowProducer: FP } = h.nodeBullmq(major);
    const top = h.newQueue('top', prefix, { bullmqMajor: major });
    const kids = h.newQueue('kids', prefix, { bullmqMajor: major });
    const flow = new FP({ connection: h.connection(), prefix });
    try {
      await top.waitUntilReady();
      await kids.waitUntilReady();
      const tree = side => ({
        name: 'root',
        queueName: 'top',
        opts: { jobId: `${side}-root` },
        children: [
          { name: 'a', queueName: 'kids', opts: { jobId: `${side}-a` } },
          { name: 'b', queueName: 'kids', opts: { jobId: `${side}-b` }, children: [{ name: 'g', queueName: 'kids', opts: { jobId: `${side}-g` } }] },
          { name: 'c', queueName: 'kids', opts: { jobId: `${side}-c` } },
        ],
      });
      const node = await flow.add(tree('node'));
      await flow.add(tree('bullc'));
      // what each side's jobs look like: state, parent fields, pending children
      const r = h.redis();
      const picture = async side => {
        const out = {};
        for (const [q, id] of [[top, 'root'], [kids, 'a'], [kids, 'b'], [kids, 'g'], [kids, 'c']]) {
          const job = await q.getJob(`${side}-${id}`);
          out[id] = {
            state: await q.getJobState(`${side}-${id}`),
            parent: job && job.parent ? job.parent.id.replace(side, 'S') : null,
            parentKey: job && job.parentKey ? job.parentKey.replace(side, 'S') : null,
            pending: (await r.smembers(`${prefix}:${q.name}:${side}-${id}:dependencies`)).map(k => k.replace(side, 'S')).sort(),
          };
        }
        return out;
      };
      try {
        const stale = await kids.getJob('node-a'); // still holds its parentKey after the cut
        assert.equal(await node.children[0].job.removeChildDependency(), true);
        const cut = JSON.parse(h.bullcOk(['--json', 'remove-child-dependency', 'kids', 'bullc-a'], { prefix }));
        assert.deepEqual(cut, { id: 'bullc-a', removed: true });
        assert.deepEqual(await picture('bullc'), await picture('node'));
        assert.equal((await picture('node')).a.parentKey, null);
        // nothing left to cut: Node's false, with the parent named or not
        assert.equal(await stale.removeChildDependency(), false);
        for (const parent of [['--parent', `${prefix}:top:bullc-root`], []])
          assert.deepEqual(
            JSON.parse(h.bullcOk(['--json', 'remove-child-dependency', 'kids', 'bullc-a', ...parent], { prefix })),
            { id: 'bullc-a', removed: false },
          );

        await node.job.removeUnprocessedChildren();
        h.bullcOk(['--yes', 'remove-unprocessed-children', 'top', 'bullc-root'], { prefix });
        const after = await picture('node');
        assert.deepEqual(await picture('bullc'), after);
        assert.equal(after.a.state, 'waiting', 'the child cut loose stays');
        for (const id of ['b', 'g', 'c']) assert.equal(after[id].state, 'unknown', id);

        // Node's messages for a missing child and a missing parent, exit 4
        const missing = h.bullc(['remove-child-dependency', 'kids', 'nope'], { prefix });
        assert.equal(missing.status, 4);
        assert.match(missing.stderr, /Missing key for job nope\. removeChildDependency/);
        const orphan = h.bullc(['remove-child-dependency', 'kids', 'bullc-a', '--parent', `${prefix}:top:gone`], { prefix });
        assert.equal(orphan.status, 4);
        assert.match(orphan.stderr, new RegExp(`Missing key for parent job ${prefix}:top:gone\\. removeChildDependency`));
        assert.equal(h.bullc(['--yes', 'remove-unprocessed-children', 'top', 'nope'], { prefix }).status, 4);
        assert.equal(h.bullc(['remove-unprocessed-children', 'top', 'bullc-root'], { prefix }).status, 2, 'destructive: needs --yes');
        // bullc wrote nothing of another major: the meta is still the peer's
        assert.equal(await r.hget(`${prefix}:top:meta`, 'version'), h.bullmqVersionString(major));
      } finally {
        await r.quit();
      }
    } finally {
      await h.closeAll(flow, top, kids);
    }
  });

// Node's FlowProducer adds, bullc-worker processes: leaves first, each parent
// with its children's results.
test("a tree Node's FlowProducer added runs on bullc-worker: children first, parents read their results", async () => {
  const prefix = h.uniquePrefix('flowbw');
  const fp = new FlowProducer({ connection: h.connection(), prefix });
  const parents = h.newQueue('parents', prefix);
  const kids = h.newQueue('kids', prefix);
  const exec = script(tmpDir('flow-bw'), 'proc.sh', `cat >/dev/null\nprintf '{"id":"%s"}' "$BULLC_JOB_ID"`);
  const procs = [];
  try {
    await fp.add({
      name: 'root',
      queueName: 'parents',
      opts: { jobId: 'root' },
      children: [
        { name: 'k1', queueName: 'kids', opts: { jobId: 'k1' } },
        { name: 'k2', queueName: 'kids', opts: { jobId: 'k2' }, children: [{ name: 'g', queueName: 'kids', opts: { jobId: 'g' } }] },
      ],
    });
    for (const q of ['kids', 'parents'])
      procs.push(await startReady(['--queue', q, '--exec', exec, '--drain-delay', '1'], { prefix }));
    const root = await finished(parents, 'root');
    assert.equal(await root.getState(), 'completed', root.failedReason);
    assert.deepEqual(root.returnvalue, { id: 'root' });
    assert.deepEqual(await root.getChildrenValues(), {
      [`${prefix}:kids:k1`]: { id: 'k1' },
      [`${prefix}:kids:k2`]: { id: 'k2' },
    });
    const [k1, k2, g] = await Promise.all(['k1', 'k2', 'g'].map(id => h.Job.fromId(kids, id)));
    assert.deepEqual(await k2.getChildrenValues(), { [`${prefix}:kids:g`]: { id: 'g' } });
    assert.ok(g.finishedOn <= k2.processedOn, 'the grandchild before its parent');
    for (const k of [k1, k2]) {
      assert.equal(await k.getState(), 'completed');
      assert.ok(k.finishedOn <= root.processedOn, `${k.id} before the root`);
    }
    for (const w of procs) assert.equal((await w.stop()).code, 0);
  } finally {
    for (const w of procs) await w.stop();
    await h.closeAll(fp, parents, kids);
  }
});

// Job hashes of `queue` under `prefix` in none of its state lists and sets.
async function orphans(client, prefix, queue) {
  const base = `${prefix}:${queue}:`;
  const lost = [];
  for (const k of await client.keys(`${base}*`)) {
    const id = k.slice(base.length);
    if (id.includes(':') || id === 'meta' || (await client.type(k)) !== 'hash') continue;
    let found = false;
    for (const l of ['wait', 'paused', 'active']) found = found || (await client.lpos(base + l, id)) !== null;
    for (const z of ['delayed', 'prioritized', 'completed', 'failed', 'waiting-children'])
      found = found || (await client.zscore(base + z, id)) !== null;
    if (!found) lost.push(id);
  }
  return lost;
}

// node: "[flows] should not process parent until queue is unpaused"
test('a tree bullc adds while Node has its queues paused waits in that layout, and runs whole once Node resumes', async () => {
  const prefix = h.uniquePrefix('flowpz');
  const pq = h.newQueue('pp', prefix);
  const kq = h.newQueue('pk', prefix);
  const client = h.redis();
  const workers = [];
  const runs = new Map();
  const processor = async job => {
    runs.set(job.id, (runs.get(job.id) || 0) + 1);
    return job.name;
  };
  try {
    await pq.pause();
    await kq.pause();
    const tree = {
      name: 'root',
      queueName: 'pp',
      opts: { jobId: 'root' },
      children: [
        { name: 'a', queueName: 'pk', opts: { jobId: 'a' } },
        { name: 'b', queueName: 'pk', opts: { jobId: 'b' } },
        { name: 'c', queueName: 'pk', opts: { jobId: 'c', priority: 2 } },
        { name: 'd', queueName: 'pp', opts: { jobId: 'd' } },
      ],
    };
    // auto: the major of the meta.version both Node Queues wrote
    const r = flowAdd(prefix, tree, ['--bullmq-version', 'auto']);
    assert.equal(r.status, 0, r.stderr);
    // 5.x keeps a paused queue's jobs in `paused`, 6.x in `wait` with meta's flag
    const [held, empty] = h.bullmqMajor() === 5 ? ['paused', 'wait'] : ['wait', 'paused'];
    const list = (q, l) => client.lrange(`${prefix}:${q}:${l}`, 0, -1);
    assert.deepEqual((await list('pk', held)).sort(), ['a', 'b']);
    assert.deepEqual(await list('pk', empty), []);
    assert.notEqual(await client.zscore(`${prefix}:pk:prioritized`, 'c'), null);
    assert.deepEqual(await list('pp', held), ['d']);
    assert.deepEqual(await list('pp', empty), []);
    assert.equal(await client.zscore(`${prefix}:pp:waiting-children`, 'root') !== null, true);

    workers.push(h.newWorker('pk', prefix, processor, { drainDelay: 1 }), h.newWorker('pp', prefix, processor, { drainDelay: 1 }));
    await Promise.all(workers.map(w => w.waitUntilReady()));
    await h.sleep(300);
    assert.equal(runs.size, 0, 'nothing runs on paused queues');

    await kq.resume();
    await h.eventually(async () => (await client.zcard(`${prefix}:pk:completed`)) === 3, 15000, 'the 3 children in pk');
    await h.sleep(300);
    assert.equal(runs.has('root') || runs.has('d'), false, 'the parent queue stays paused');
    assert.notEqual(await client.zscore(`${prefix}:pp:waiting-children`, 'root'), null, 'd is pending: root waits');

    await pq.resume();
    const root = await finished(pq, 'root');
    assert.equal(await root.getState(), 'completed', root.failedReason);
    assert.deepEqual(Object.keys(await root.getChildrenValues()).sort(), [
      `${prefix}:pk:a`, `${prefix}:pk:b`, `${prefix}:pk:c`, `${prefix}:pp:d`,
    ]);
    for (const id of ['root', 'a', 'b', 'c', 'd']) assert.equal(runs.get(id), 1, `${id} ran once`);
    for (const q of ['pp', 'pk']) {
      assert.deepEqual(await orphans(client, prefix, q), [], `${q}: job hashes in no list`);
      assert.deepEqual([await list(q, 'wait'), await list(q, 'paused')], [[], []]);
    }
  } finally {
    await h.closeAll(workers, pq, kq, client);
  }
});

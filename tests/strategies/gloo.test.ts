import { mkdtemp, readdir, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../core/errors.js';
import { findFreePort } from '../../strategies/ddp/launcher.js';
import { collectiveTag, glooStatus } from '../../strategies/ddp/gloo.js';
import { JOINED_KEY, StoreClient, StoreServer, type Notice } from '../../strategies/ddp/store.js';
import { buildForWorkers } from './fixtures/build.js';
import { runWorkers, testBackends, waitGone, type WorkerResult } from './helpers.js';

const BACKENDS = await testBackends();
const GLOO = glooStatus();
if (!GLOO.available) console.log(`[skip] Gloo process-group tests: ${GLOO.reason}`);

let build = '';
beforeAll(async () => {
  build = await buildForWorkers();
});

const byRank = (rs: WorkerResult[], key: string): WorkerResult[] => rs.filter((r) => key in r).sort((a, b) => a.rank - b.rank);
const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the TCP store (in process, 127.0.0.1)', () => {
  let server: StoreServer;
  let port: number;
  const clients: StoreClient[] = [];
  beforeAll(async () => {
    port = await findFreePort();
    server = await StoreServer.listen('127.0.0.1', port, 3);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server.close(0);
  });
  const client = async (): Promise<StoreClient> => {
    const c = (await StoreClient.connect('127.0.0.1', port, Date.now() + 2000))!;
    clients.push(c);
    return c;
  };

  it('get blocks until the key is set, and times out with null', async () => {
    const a = await client();
    const b = await client();
    const pending = a.get('k', 2000);
    await tick(100);
    await b.set('k', Buffer.from('value'));
    expect((await pending)?.toString()).toBe('value');
    const t0 = Date.now();
    expect(await a.get('never', 200)).toBeNull();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
  });

  it('membership: refuses a wrong world size or a duplicate rank; joined once all said hello; DEAD when a connection drops, LEFT after bye', async () => {
    const [c0, c1, c2, bad] = [await client(), await client(), await client(), await client()];
    const notices: Notice[] = [];
    c0.onNotice = (n) => notices.push(n);
    expect(await bad.hello(1, 4)).toMatch(/rank 1 has WORLD_SIZE=4 but rank 0 has WORLD_SIZE=3/);
    expect(await c0.hello(0, 3)).toBeNull();
    expect(await c1.hello(1, 3)).toBeNull();
    expect(await bad.hello(1, 3)).toMatch(/two processes claim RANK=1/);
    expect(await c0.get(JOINED_KEY, 100)).toBeNull();
    expect((await c0.status(1000))!.joined).toEqual([0, 1]);
    expect(await c2.hello(2, 3)).toBeNull();
    expect((await c0.get(JOINED_KEY, 1000))?.toString()).toBe('1');
    // Consistency: rank 1 and rank 2 disagree on collective #5's length.
    c1.enter({ seq: 5, op: 'allReduce', size: 10 });
    c2.enter({ seq: 5, op: 'allReduce', size: 11 });
    await c1.bye(4);
    c2.close(); // no bye: a crash
    await tick(300);
    expect(notices).toContainEqual({ kind: 'mismatch', seq: 5, a: { seq: 5, op: 'allReduce', size: 10, rank: 1 }, b: { seq: 5, op: 'allReduce', size: 11, rank: 2 } });
    expect(notices).toContainEqual({ kind: 'left', rank: 1, completed: 4 });
    expect(notices).toContainEqual({ kind: 'dead', rank: 2 });
    expect(notices.filter((n) => n.kind === 'dead')).toHaveLength(1);
  });

  it('a second server on the same port is a clear error naming MASTER_PORT', async () => {
    await expect(StoreServer.listen('127.0.0.1', port, 2, 200)).rejects.toThrow(/MASTER_PORT=\d+.*pick another MASTER_PORT/);
  });
});

describe('collective tags', () => {
  it('differ when the operation or the length differs', () => {
    expect(collectiveTag(3, 'allReduce', 1000)).not.toBe(collectiveTag(3, 'allReduce', 1001));
    expect(collectiveTag(3, 'allReduce', 0)).not.toBe(collectiveTag(3, 'barrier', 0));
    expect(collectiveTag(3, 'allReduce', 10)).toBe(collectiveTag(3, 'allReduce', 10));
    expect(collectiveTag(3, 'allReduce', 10)).toBeLessThanOrEqual(0xffffffff);
  });
});

describe.each(BACKENDS.filter((b) => b !== 'mpi'))('rendezvous timeout (%s)', (backend) => {
  it('a rank that never arrives: the others fail naming it, within the timeout plus a little', async () => {
    const t0 = Date.now();
    const out = await runWorkers(build, 'pgWorker.mjs', 'once', { devices: 3, env: { LIGHTCLIP_DDP_BACKEND: backend, LIGHTCLIP_DDP_TIMEOUT: '2', LC_ABSENT: '2' } });
    expect(out.result.exitCode).not.toBe(0);
    const errs = byRank(out.results, 'connectError');
    expect(errs.length, out.stderr).toBeGreaterThanOrEqual(1);
    // Rank 0 (the store) knows who is missing. The first rank to fail ends the launch, so
    // rank 0 may be stopped before it reports; whichever ranks report, one names rank 2, and
    // rank 0, when it reports, blames rank 2 alone.
    expect(errs.some((e) => /rank 2 never (connected|joined)/.test(String(e.connectError))), JSON.stringify(errs)).toBe(true);
    const r0 = errs.find((e) => e.rank === 0);
    if (r0) expect(r0.ranks).toEqual([2]);
    // Bounded (spawning and loading 3 workers takes seconds on a loaded machine): far below any default timeout.
    expect(Date.now() - t0).toBeLessThan(2000 + 20_000);
    expect(await waitGone(out.pids, 3000)).toEqual([]);
  });
});

describe.skipIf(!GLOO.available)('Gloo specifics', () => {
  const env = { LIGHTCLIP_DDP_BACKEND: 'gloo' };

  it.each([2, 3])('reduce-scatter with uneven blocks (%i processes)', async (devices) => {
    const out = await runWorkers(build, 'pgWorker.mjs', 'reducescatter', { devices, env });
    expect(out.result.exitCode, out.stderr).toBe(0);
    const rs = byRank(out.results, 'length');
    expect(rs.map((r) => r.length)).toEqual(Array.from({ length: devices }, (_, r) => 1000 + 37 * r));
    for (const r of rs) expect(r.bad).toBeNull();
  });

  it('GLOO_SOCKET_IFNAME=lo picks the interface; an unknown interface is a clear error', async () => {
    const ok = await runWorkers(build, 'pgWorker.mjs', 'once', { devices: 2, env: { ...env, GLOO_SOCKET_IFNAME: 'lo' } });
    expect(ok.result.exitCode, ok.stderr).toBe(0);
    for (const r of byRank(ok.results, 'sum0')) expect(r.description).toMatch(/^gloo [\d.]+ \(tcp 127\.0\.0\.1 on lo, store 127\.0\.0\.1:\d+\)$/);
    const bad = await runWorkers(build, 'pgWorker.mjs', 'once', { devices: 2, env: { ...env, GLOO_SOCKET_IFNAME: 'nosuch0' } });
    expect(bad.result.exitCode).not.toBe(0);
    for (const r of byRank(bad.results, 'connectError')) expect(r.connectError).toMatch(/GLOO_SOCKET_IFNAME=nosuch0.*no interface nosuch0/);
  });

  it('an unresolvable LIGHTCLIP_DDP_HOST is reported before Gloo sees it', async () => {
    const out = await runWorkers(build, 'pgWorker.mjs', 'once', { devices: 2, env: { ...env, LIGHTCLIP_DDP_HOST: 'no-such-host.invalid' } });
    expect(out.result.exitCode).not.toBe(0);
    const errs = byRank(out.results, 'connectError');
    expect(errs.length).toBeGreaterThan(0);
    for (const e of errs) expect(e.connectError).toMatch(/LIGHTCLIP_DDP_HOST=no-such-host\.invalid.*does not resolve/);
  });

  it('--ddp_init file://: meets through a shared directory and removes its files afterwards', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lc-filestore-'));
    try {
      const out = await runWorkers(build, 'pgWorker.mjs', 'once', { devices: 3, env: { ...env, LIGHTCLIP_DDP_INIT: pathToFileURL(dir).href } });
      expect(out.result.exitCode, out.stderr).toBe(0);
      const rs = byRank(out.results, 'sum0');
      expect(rs.map((r) => r.sum0)).toEqual([3, 3, 3]);
      for (const r of rs) expect(r.description).toContain(`file store ${dir}`);
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a bad --ddp_init is a MisconfigurationError naming the flag', async () => {
    const { GlooProcessGroup } = await import('../../strategies/ddp/gloo.js');
    await expect(GlooProcessGroup.connect({ rank: 0, worldSize: 2, masterAddr: '127.0.0.1', masterPort: 1, initMethod: 'tcp://x:1' })).rejects.toThrow(MisconfigurationError);
    await expect(GlooProcessGroup.connect({ rank: 0, worldSize: 2, masterAddr: '127.0.0.1', masterPort: 1, initMethod: 'tcp://x:1' })).rejects.toThrow(/--ddp_init/);
  });
});

import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildForWorkers } from './fixtures/build.js';
import { FIXTURES, parseResults, spawnNode, testBackends, waitGone, type Spawned } from './helpers.js';

// Two "nodes" on one machine: two network namespaces joined by a veth pair, with addresses of
// the test's own (192.168.77.1/2) that exist only inside those namespaces. Each runs a launcher
// with --num_nodes 2 --node_rank i --master_addr 192.168.77.1. Needs root (ip netns).
const BACKENDS = (await testBackends()).filter((b) => b !== 'mpi');
const tag = `lc${process.pid % 100000}`;
const NS = [`${tag}a`, `${tag}b`];
const ADDR = ['192.168.77.1', '192.168.77.2'];

function ip(...args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr ?? '') + (r.error?.message ?? '') };
}

function setUp(): string | null {
  const probe = ip('netns', 'add', NS[0]!);
  if (!probe.ok) return `ip netns is not permitted here (${probe.err.trim()})`;
  const steps: string[][] = [
    ['netns', 'add', NS[1]!],
    ['link', 'add', `${tag}x`, 'type', 'veth', 'peer', 'name', `${tag}y`],
    ['link', 'set', `${tag}x`, 'netns', NS[0]!],
    ['link', 'set', `${tag}y`, 'netns', NS[1]!],
    ['-n', NS[0]!, 'addr', 'add', `${ADDR[0]}/24`, 'dev', `${tag}x`],
    ['-n', NS[1]!, 'addr', 'add', `${ADDR[1]}/24`, 'dev', `${tag}y`],
    ['-n', NS[0]!, 'link', 'set', `${tag}x`, 'up'],
    ['-n', NS[1]!, 'link', 'set', `${tag}y`, 'up'],
    ['-n', NS[0]!, 'link', 'set', 'lo', 'up'],
    ['-n', NS[1]!, 'link', 'set', 'lo', 'up'],
  ];
  for (const s of steps) {
    const r = ip(...s);
    if (!r.ok) return `could not set up the veth pair (ip ${s.join(' ')}: ${r.err.trim()})`;
  }
  return null;
}

const skipReason = process.platform !== 'linux' ? 'not Linux' : setUp();
if (skipReason) console.log(`[skip] multi-node over network namespaces: ${skipReason}`);

let build = '';
beforeAll(async () => {
  if (!skipReason) build = await buildForWorkers();
});
afterAll(() => {
  for (const ns of NS) ip('netns', 'del', ns); // deletes the veth pair with it
});

function node(i: number, backend: string, scenario: string, port: number): Spawned {
  // `ip netns exec NS node run.js ...`: spawnNode runs process.execPath, so run `ip` through it.
  const script = `require('child_process').spawnSync('ip', ['netns', 'exec', ${JSON.stringify(NS[i])}, process.execPath, ...process.argv.slice(1)], { stdio: 'inherit' }).status`;
  return spawnNode(
    ['-e', `process.exitCode = ${script}`, path.join(build, 'strategies/ddp/run.js'), '--ddp_backend', backend, '--devices', '1', '--num_nodes', '2', '--node_rank', String(i), '--master_addr', ADDR[0]!, '--master_port', String(port), path.join(FIXTURES, 'pgWorker.mjs'), scenario],
    { LC_BUILD: build, LIGHTCLIP_DDP_TIMEOUT: '30' },
  );
}

(skipReason ? describe.skip : describe).each(BACKENDS)('two nodes in network namespaces (%s backend)', (backend) => {
  it('all-reduces exactly across the veth pair; each rank binds its own namespace address', async () => {
    const port = 29400 + (process.pid % 500);
    const nodes = [node(1, backend, 'allreduce', port), node(0, backend, 'allreduce', port)];
    const exits = await Promise.all(nodes.map((n) => n.exit));
    expect(exits.map((e) => e.code), nodes.map((n) => n.err()).join('\n')).toEqual([0, 0]);
    const rs = nodes.flatMap((n) => parseResults(n.out()));
    const sizes = rs.filter((r) => 'n' in r);
    expect(sizes).toHaveLength(10);
    for (const r of sizes) {
      expect(r.bad, `rank ${r.rank} n=${r.n as number}`).toBeNull();
      expect(r.badMean).toBeNull();
    }
    const connected = rs.filter((r) => r.connected).sort((a, b) => a.rank - b.rank);
    expect(connected.map((r) => r.rank)).toEqual([0, 1]);
    if (backend === 'gloo') {
      expect(connected[0]!.description).toMatch(new RegExp(`tcp 192\\.168\\.77\\.1 on ${tag}x, store 192\\.168\\.77\\.1:${port}`));
      expect(connected[1]!.description).toMatch(new RegExp(`tcp 192\\.168\\.77\\.2 on ${tag}y, store 192\\.168\\.77\\.1:${port}`));
    }
    expect(await waitGone(rs.filter((r) => r.connected).map((r) => r.pid as number), 3000)).toEqual([]);
  });
});

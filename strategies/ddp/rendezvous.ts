import * as dgram from 'node:dgram';
import * as dns from 'node:dns/promises';
import * as net from 'node:net';
import * as zmq from 'zeromq';
import { MisconfigurationError } from '../../core/errors.js';
import { DistributedError, describeRanks } from './errors.js';
import { tcpEndpoint } from './wire.js';

/** Options of {@link rendezvous}. */
export interface RendezvousOptions {
  rank: number;
  worldSize: number;
  /** IP address of rank 0 (already resolved). */
  masterIp: string;
  masterPort: number;
  /** This rank's peer endpoint, sent to everyone. */
  myAddress: string;
  timeoutMs: number;
}

interface Hello {
  rank: number;
  worldSize: number;
  address: string;
}

/** Resolves a host name to an IP address, IPv4 first (what the other ranks most likely reach). */
export async function resolveHost(name: string, envVar = 'MASTER_ADDR'): Promise<string> {
  if (net.isIP(name)) return name;
  try {
    return (await dns.lookup(name, { family: 4 })).address;
  } catch {
    try {
      return (await dns.lookup(name)).address;
    } catch (err) {
      throw new MisconfigurationError(`\`${envVar}=${name}\` does not resolve to an address (${(err as Error).message}); give a host name or IP address of rank 0's machine.`);
    }
  }
}

/**
 * The address of this machine's interface that routes to `ip`: connecting a UDP socket
 * sends no packet, it only picks the route, so this is the address the master's network
 * sees this machine under (127.0.0.1 when the master is on loopback).
 */
export function routeAddress(ip: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(ip) ? 'udp6' : 'udp4');
    sock.on('error', (err) => {
      sock.close();
      reject(new MisconfigurationError(`No route from this machine to MASTER_ADDR ${ip} (${err.message}); set LIGHTCLIP_DDP_HOST to this machine's address.`));
    });
    sock.connect(9, ip, () => {
      const { address } = sock.address();
      sock.close();
      resolve(address);
    });
  });
}

/**
 * Exchanges peer addresses (torch's TCPStore rendezvous, reduced to what a mesh needs):
 * rank 0 binds a ROUTER at MASTER_ADDR:MASTER_PORT; every other rank connects a DEALER and
 * sends `{rank, worldSize, address}`; once all have arrived rank 0 replies with the whole
 * table. World sizes must agree and ranks must be distinct. Returns `addresses[rank]`.
 *
 * @throws DistributedError naming the ranks that never showed up within the timeout.
 * @throws MisconfigurationError for inconsistent RANK/WORLD_SIZE or an unusable MASTER_PORT.
 */
export async function rendezvous(o: RendezvousOptions): Promise<string[]> {
  return o.rank === 0 ? serve(o) : join(o);
}

async function serve(o: RendezvousOptions): Promise<string[]> {
  const endpoint = tcpEndpoint(o.masterIp, o.masterPort);
  const router = new zmq.Router({ linger: 2000 });
  try {
    await bindWithRetry(router, endpoint, o.masterPort, Math.min(o.timeoutMs, 10_000));
    const table: string[] = new Array<string>(o.worldSize).fill('');
    table[0] = o.myAddress;
    const ids = new Map<number, Buffer>();
    const deadline = Date.now() + o.timeoutMs;
    const refuse = async (id: Buffer, message: string): Promise<never> => {
      await router.send([id, JSON.stringify({ error: message })]);
      for (const other of ids.values()) await router.send([other, JSON.stringify({ error: `rank 0 stopped the rendezvous: ${message}` })]);
      throw new MisconfigurationError(message);
    };
    while (ids.size < o.worldSize - 1) {
      router.receiveTimeout = Math.max(1, deadline - Date.now());
      let frames: Buffer[];
      try {
        frames = await router.receive();
      } catch (err) {
        if ((err as { code?: string }).code !== 'EAGAIN') throw err;
        const missing = Array.from({ length: o.worldSize - 1 }, (_, i) => i + 1).filter((r) => !ids.has(r));
        for (const id of ids.values()) await router.send([id, JSON.stringify({ error: `${describeRanks(missing)} never joined` })]);
        throw new DistributedError(
          `Rendezvous timed out after ${o.timeoutMs / 1000} s: ${describeRanks(missing)} never connected to rank 0 at ${endpoint} (MASTER_ADDR:MASTER_PORT). Are they running, started with the same MASTER_ADDR/MASTER_PORT and WORLD_SIZE=${o.worldSize}?`,
          missing,
        );
      }
      const [id, body] = frames as [Buffer, Buffer | undefined];
      const hello = parseHello(body);
      if (!hello) await refuse(id, `a process sent a malformed rendezvous message to ${endpoint}; is MASTER_PORT=${o.masterPort} used by another program?`);
      const h = hello!;
      if (h.worldSize !== o.worldSize) {
        await refuse(id, `rank ${h.rank} has WORLD_SIZE=${h.worldSize} but rank 0 has WORLD_SIZE=${o.worldSize}: start every process with the same --devices × --num_nodes.`);
      }
      if (!Number.isInteger(h.rank) || h.rank < 1 || h.rank >= o.worldSize || ids.has(h.rank)) {
        await refuse(id, `two processes claim RANK=${h.rank} (or it is outside [1, ${o.worldSize - 1}]): check --node_rank/NODE_RANK and RANK on every node.`);
      }
      ids.set(h.rank, id);
      table[h.rank] = h.address;
    }
    for (const id of ids.values()) await router.send([id, JSON.stringify({ addresses: table })]);
    return table;
  } finally {
    router.close();
  }
}

async function join(o: RendezvousOptions): Promise<string[]> {
  const endpoint = tcpEndpoint(o.masterIp, o.masterPort);
  // zeromq reconnects on its own, so rank 0 may bind after this rank connects. This rank
  // waits a grace period past the timeout: rank 0 may have started later, and when a rank is
  // missing it is rank 0's answer ("rank 2 never joined") that names it, not this timer.
  const dealer = new zmq.Dealer({ linger: 0, receiveTimeout: o.timeoutMs + Math.min(5000, o.timeoutMs) });
  try {
    dealer.connect(endpoint);
    await dealer.send(JSON.stringify({ rank: o.rank, worldSize: o.worldSize, address: o.myAddress } satisfies Hello));
    let reply: Buffer;
    try {
      [reply] = (await dealer.receive()) as [Buffer];
    } catch (err) {
      if ((err as { code?: string }).code !== 'EAGAIN') throw err;
      throw new DistributedError(
        `Rendezvous timed out after ${o.timeoutMs / 1000} s: rank ${o.rank} got no answer from rank 0 at ${endpoint}. Is rank 0 running, are MASTER_ADDR/MASTER_PORT the same on every node, and did every rank start?`,
        [0],
      );
    }
    const answer = JSON.parse(reply.toString('utf8')) as { addresses?: unknown; error?: string };
    if (typeof answer.error === 'string') throw new MisconfigurationError(`Rendezvous refused by rank 0: ${answer.error}`);
    const addresses = answer.addresses;
    if (!Array.isArray(addresses) || addresses.length !== o.worldSize || !addresses.every((a) => typeof a === 'string' && a.length > 0)) {
      throw new DistributedError(`Rendezvous with rank 0 at ${endpoint} returned a malformed address table.`, [0]);
    }
    return addresses as string[];
  } finally {
    dealer.close();
  }
}

async function bindWithRetry(router: zmq.Router, endpoint: string, port: number, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await router.bind(endpoint);
      return;
    } catch (err) {
      const code = (err as { code?: string }).code;
      // The previous run (fit before test) may still be releasing the port.
      if (code === 'EADDRINUSE' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const hint = code === 'EADDRINUSE' ? 'it is in use: pick another MASTER_PORT (--master_port)' : 'rank 0 must run on the machine MASTER_ADDR names';
      throw new MisconfigurationError(`Rank 0 could not listen on ${endpoint} (\`MASTER_PORT=${port}\`): ${(err as Error).message}; ${hint}.`);
    }
  }
}

function parseHello(body: Buffer | undefined): Hello | null {
  if (!body) return null;
  try {
    const h = JSON.parse(body.toString('utf8')) as Partial<Hello>;
    if (typeof h.rank === 'number' && typeof h.worldSize === 'number' && typeof h.address === 'string') return h as Hello;
  } catch {
    // fall through
  }
  return null;
}

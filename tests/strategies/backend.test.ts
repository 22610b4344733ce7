import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../core/errors.js';
import { chooseBackend } from '../../strategies/ddp/backend.js';

const yes = (): { available: true; version: string } => ({ available: true, version: 'x' });
const no = (reason: string) => (): { available: false; reason: string } => ({ available: false, reason });

describe('--ddp_backend', () => {
  const both = { gloo: yes, mpi: yes };
  const none = { gloo: no('built without Gloo'), mpi: no('libmpi.so.40 not found') };

  it('auto: mpi under mpirun or srun --mpi=pmix, else gloo when built, else zmq', () => {
    expect(chooseBackend('auto', { OMPI_COMM_WORLD_RANK: '0' }, 1, both).backend).toBe('mpi');
    expect(chooseBackend('auto', { PMIX_RANK: '1' }, 1, both).backend).toBe('mpi');
    expect(chooseBackend('auto', {}, 1, both).backend).toBe('gloo');
    expect(chooseBackend(undefined, {}, 1, both).backend).toBe('gloo');
    // mpirun, but Open MPI is not loadable here: Gloo still
    expect(chooseBackend('auto', { OMPI_COMM_WORLD_RANK: '0' }, 1, { gloo: yes, mpi: no('x') }).backend).toBe('gloo');
    const z = chooseBackend('auto', {}, 1, none);
    expect(z.backend).toBe('zmq');
    expect(z.warning).toBeNull();
  });

  it('auto falls back to zmq with a warning on several nodes', () => {
    const z = chooseBackend('auto', {}, 2, none);
    expect(z.backend).toBe('zmq');
    expect(z.warning).toMatch(/2 nodes over the zeromq layer \(built without Gloo\).*libgloo-dev/);
  });

  it('LIGHTCLIP_DDP_BACKEND is the default; the flag wins', () => {
    expect(chooseBackend(undefined, { LIGHTCLIP_DDP_BACKEND: 'zmq' }, 1, both).backend).toBe('zmq');
    expect(chooseBackend('gloo', { LIGHTCLIP_DDP_BACKEND: 'zmq' }, 1, both).backend).toBe('gloo');
  });

  it('an unknown or unavailable backend is a clear error', () => {
    expect(() => chooseBackend('nccl', {}, 1, both)).toThrow(/`--ddp_backend` must be auto, gloo, mpi, zmq; got "nccl"/);
    expect(() => chooseBackend('gloo', {}, 1, none)).toThrow(MisconfigurationError);
    expect(() => chooseBackend('gloo', {}, 1, none)).toThrow(/Gloo is not available: built without Gloo/);
    expect(() => chooseBackend('mpi', {}, 1, none)).toThrow(/Open MPI is not available: libmpi.so.40 not found/);
    expect(() => chooseBackend('mpi', {}, 1, both)).toThrow(/started by `mpirun` or `srun --mpi=pmix`/);
  });
});

describe('the mpirun environment', () => {
  it('reads OMPI_COMM_WORLD_* (no MASTER_PORT needed)', async () => {
    const { detectClusterEnvironment } = await import('../../strategies/ddp/environment.js');
    const ce = detectClusterEnvironment({ OMPI_COMM_WORLD_RANK: '3', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_RANK: '1', OMPI_COMM_WORLD_NODE_RANK: '1' });
    expect([ce.name, ce.globalRank, ce.worldSize, ce.localRank, ce.nodeRank, ce.mainPort, ce.createsProcessesExternally]).toEqual(['mpi', 3, 4, 1, 1, null, true]);
    expect(() => detectClusterEnvironment({ OMPI_COMM_WORLD_RANK: '4', OMPI_COMM_WORLD_SIZE: '4' })).toThrow(/OMPI_COMM_WORLD_RANK=4.*OMPI_COMM_WORLD_SIZE=4/);
  });
});

import { MisconfigurationError } from '../../core/errors.js';
import type { Env } from './environment.js';
import { glooStatus, GlooProcessGroup } from './gloo.js';
import { BACKEND_ENV, BACKENDS, checkGroupOptions, type BackendName, type GroupOptions, type ProcessGroupLike } from './group.js';
import { mpiLaunched, mpiStatus, MpiProcessGroup } from './mpi.js';
import { ProcessGroup } from './processGroup.js';

/** What {@link chooseBackend} decided, and why (for the start-up line and warnings). */
export interface BackendChoice {
  backend: BackendName;
  /** Why this backend (`auto` only), e.g. 'started by mpirun'. */
  reason: string;
  /** Printed once by rank 0 when not empty (zmq across nodes). */
  warning: string | null;
}

/**
 * Resolves `--ddp_backend` (Lightning's `process_group_backend`): `auto` = `mpi` when the
 * process was started by mpirun / `srun --mpi=pmix` (OMPI_COMM_WORLD_* / PMIX_RANK set), else
 * `gloo` when the addon was built with it, else `zmq` (with a warning when several nodes
 * take part: the zeromq layer is several times slower than Gloo).
 * @throws MisconfigurationError for an unknown name, or a backend that is not available here.
 */
export function chooseBackend(
  requested: string | undefined,
  env: Env = process.env,
  numNodes = 1,
  probe: { gloo: () => ReturnType<typeof glooStatus>; mpi: () => ReturnType<typeof mpiStatus> } = { gloo: glooStatus, mpi: mpiStatus },
): BackendChoice {
  const name = (requested ?? env[BACKEND_ENV] ?? 'auto').toLowerCase();
  if (name !== 'auto' && !(BACKENDS as readonly string[]).includes(name)) {
    throw new MisconfigurationError(`\`--ddp_backend\` must be auto, ${BACKENDS.join(', ')}; got ${JSON.stringify(requested ?? env[BACKEND_ENV])}.`);
  }
  if (name === 'gloo') {
    const s = probe.gloo();
    if (!s.available) throw new MisconfigurationError(`\`--ddp_backend gloo\`: Gloo is not available: ${s.reason}. Use --ddp_backend zmq or auto.`);
    return { backend: 'gloo', reason: 'requested', warning: null };
  }
  if (name === 'mpi') {
    const s = probe.mpi();
    if (!s.available) throw new MisconfigurationError(`\`--ddp_backend mpi\`: Open MPI is not available: ${s.reason}.`);
    if (!mpiLaunched(env)) throw new MisconfigurationError('`--ddp_backend mpi` needs the processes to be started by `mpirun` or `srun --mpi=pmix` (no OMPI_COMM_WORLD_RANK or PMIX_RANK in the environment).');
    return { backend: 'mpi', reason: 'requested', warning: null };
  }
  if (name === 'zmq') return { backend: 'zmq', reason: 'requested', warning: null };
  if (mpiLaunched(env)) {
    const s = probe.mpi();
    if (s.available) return { backend: 'mpi', reason: 'started by mpirun/srun --mpi=pmix', warning: null };
  }
  const why = probe.gloo();
  if (why.available) return { backend: 'gloo', reason: 'Gloo is built', warning: null };
  const reason = why.available ? '' : why.reason;
  return {
    backend: 'zmq',
    reason: `Gloo unavailable: ${reason}`,
    warning: numNodes > 1 ? `lightclip-ddp: warning: training on ${numNodes} nodes over the zeromq layer (${reason}); Gloo's all-reduce is several times faster: apt-get install libgloo-dev && npm run build:native.` : null,
  };
}

/** Connects a process group of `backend`. */
export async function connectProcessGroup(backend: BackendName, o: GroupOptions): Promise<ProcessGroupLike> {
  if (backend === 'mpi') return MpiProcessGroup.connect(o); // MPI wires the ranks: no MASTER_PORT
  checkGroupOptions(o);
  if (o.initMethod && backend !== 'gloo') throw new MisconfigurationError(`\`--ddp_init ${o.initMethod}\` is only supported by the gloo backend (this run uses ${backend}).`);
  if (backend === 'gloo') return GlooProcessGroup.connect(o);
  return ProcessGroup.connect(o);
}

import type { Env } from './environment.js';
import type { GroupOptions, ProcessGroupLike } from './group.js';

/** True when mpirun / `srun --mpi=pmix` started this process (Open MPI's or PMIx's rank variables). */
export function mpiLaunched(env: Env = process.env): boolean {
  return env.OMPI_COMM_WORLD_RANK !== undefined || env.PMIX_RANK !== undefined;
}

/** Open MPI is not wired in yet. */
export function mpiStatus(): { available: true } | { available: false; reason: string } {
  return { available: false, reason: 'not implemented yet' };
}

export const MpiProcessGroup = {
  connect(_o: GroupOptions): Promise<ProcessGroupLike> {
    return Promise.reject(new Error('the mpi backend is not implemented yet'));
  },
};

/** DDP: cluster environments, the process groups (Gloo, Open MPI, zeromq), the launcher and the strategy ('ddp'). */
export { chooseBackend, connectProcessGroup, type BackendChoice } from './backend.js';
export { GLOO_ALGORITHM_ENV, GLOO_IFNAME_ENV, GlooProcessGroup, glooStatus } from './gloo.js';
export { BACKEND_ENV, BACKENDS, type BackendName, type GroupOptions, type ProcessGroupLike } from './group.js';
export { MPI_LIBRARY_ENV, MpiProcessGroup, mpiLaunched, mpiStatus } from './mpi.js';
export { StoreClient, StoreServer } from './store.js';
export { DDPStrategy, type DDPStrategyOptions } from './ddpStrategy.js';
export {
  detectClusterEnvironment,
  expandSlurmNodelist,
  kubeflowEnvironment,
  lightningEnvironment,
  slurmEnvironment,
  mpiEnvironment,
  slurmRootHost,
  torchElasticEnvironment,
  LAUNCHER_ENV,
  type ClusterEnvironment,
  type Env,
} from './environment.js';
export { DistributedError } from './errors.js';
export {
  findFreePort,
  launchDdp,
  planDdpLaunch,
  validateLaunchOptions,
  watchLauncher,
  type DdpFlags,
  type LaunchOptions,
  type LaunchPlan,
  type LaunchResult,
  type WorkerExit,
} from './launcher.js';
export { DEFAULT_BUCKET_CAP_MB, DEFAULT_TIMEOUT_SECONDS, ProcessGroup, TIMEOUT_ENV, timeoutFromEnv, type ProcessGroupOptions, type ReduceOp } from './processGroup.js';
